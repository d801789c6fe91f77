/*
 * A small Prometheus registry. Each family keeps its series in an open-addressing
 * hash table keyed by the label values, behind the family's own mutex, so that
 * updates to different families never contend and an update costs one hash, one
 * probe and one short critical section. The number of series per family is
 * capped: label values can come from users (event types, sinks), and an
 * unbounded label set is a memory denial of service. Updates past the cap count
 * into the family's one `other` series (every label value "other") and in
 * jetbridge_metrics_series_dropped_total.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

/* Label values longer than this are cut: a value is a label, not a payload. */
#define LABEL_VALUE_MAX 512
#define TABLE_MIN       16
#define DROPPED_NAME    "jetbridge_metrics_series_dropped_total"
/* Past a family's cap, updates count into one series whose every label value is
 * this, so totals stay right while the label set stays bounded. */
#define OTHER_VALUE      "other"
#define OTHER_LABELS_MAX 16

typedef enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind;

typedef struct series {
    uint64_t hash;
    char **values;     /* nlabels strings, each NUL-terminated */
    double value;      /* counter, gauge */
    uint64_t *buckets; /* histogram: nbuckets + 1 non-cumulative counts (+Inf last) */
    double sum;
    uint64_t count;
} series;

struct jb_metric {
    jb_metrics *reg;
    kind kind;
    char *name;
    char *help;
    size_t nlabels;
    char **label_names;
    double *bounds;
    size_t nbounds;
    pthread_mutex_t mu;
    series **table; /* open addressing, cap a power of two, NULL = empty */
    size_t cap;
    size_t n;
};

struct jb_metrics {
    pthread_mutex_t mu; /* guards the family list */
    size_t max_series;
    jb_metric **fams; /* sorted by name, for deterministic output */
    size_t nfams;
    jb_metric *dropped;
};

/* -------------------------------------------------------------- series */

/* A word at a time: the hash runs twice per delivered event over six label values
 * (the delivery counter and its duration histogram). Only the first LABEL_VALUE_MAX
 * bytes count, as in same_values; the length closes each value, so ("ab","c") and
 * ("a","bc") differ. The table index takes the low bits, so the end mixes the high
 * bits down (a multiply only carries upwards). */
static uint64_t hash_values(const char *const *values, size_t n)
{
    const uint64_t k = 0x9E3779B97F4A7C15ULL;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        const char *p = values[i] ? values[i] : "";
        size_t len = strnlen(p, LABEL_VALUE_MAX), j = 0;
        for (; j + 8 <= len; j += 8) {
            uint64_t w;
            memcpy(&w, p + j, 8);
            h = (h ^ w) * k;
            h ^= h >> 29;
        }
        uint64_t tail = 0;
        memcpy(&tail, p + j, len - j);
        h = (h ^ tail ^ ((uint64_t)len << 56)) * k;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    h ^= h >> 32;
    return h;
}

/* Stored values are cut at LABEL_VALUE_MAX, so only that much is compared. */
static bool same_values(const series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(s->values[i], values && values[i] ? values[i] : "", LABEL_VALUE_MAX) != 0)
            return false;
    return true;
}

static void series_free(series *s, size_t nlabels)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s->values != NULL && i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s);
}

static series *series_new(const jb_metric *f, uint64_t h, const char *const *values)
{
    series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->hash = h;
    s->values = calloc(f->nlabels ? f->nlabels : 1, sizeof(char *));
    if (s->values == NULL)
        goto fail;
    for (size_t i = 0; i < f->nlabels; i++) {
        s->values[i] = strndup(values && values[i] ? values[i] : "", LABEL_VALUE_MAX);
        if (s->values[i] == NULL)
            goto fail;
    }
    if (f->kind == KIND_HISTOGRAM) {
        s->buckets = calloc(f->nbounds + 1, sizeof(uint64_t));
        if (s->buckets == NULL)
            goto fail;
    }
    return s;
fail:
    series_free(s, f->nlabels);
    return NULL;
}

/* Doubles the table; the caller holds f->mu. */
static bool grow(jb_metric *f)
{
    size_t cap = f->cap ? f->cap * 2 : TABLE_MIN;
    series **t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return false;
    for (size_t i = 0; i < f->cap; i++) {
        if (f->table[i] == NULL)
            continue;
        size_t j = f->table[i]->hash & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = f->table[i];
    }
    free(f->table);
    f->table = t;
    f->cap = cap;
    return true;
}

/* Inserts a new series for values; the caller holds f->mu and checked the cap. */
static series *insert(jb_metric *f, const char *const *values, uint64_t h)
{
    /* Keep the load factor at most 1/2 so probes stay short. */
    if ((f->n + 1) * 2 > f->cap && !grow(f))
        return NULL;
    series *s = series_new(f, h, values);
    if (s == NULL)
        return NULL;
    size_t j = h & (f->cap - 1);
    while (f->table[j] != NULL)
        j = (j + 1) & (f->cap - 1);
    f->table[j] = s;
    f->n++;
    return s;
}

static series *find(const jb_metric *f, const char *const *values, uint64_t h)
{
    if (f->cap == 0)
        return NULL;
    for (size_t j = h & (f->cap - 1); f->table[j] != NULL; j = (j + 1) & (f->cap - 1))
        if (f->table[j]->hash == h && same_values(f->table[j], values, f->nlabels))
            return f->table[j];
    return NULL;
}

/* The series for values, created when missing. Past the cap, the family's one
 * overflow series (every label value OTHER_VALUE, allowed beyond the cap) takes
 * the update instead and *overflow is set; NULL only when memory ran out. The
 * caller holds f->mu. */
static series *lookup(jb_metric *f, const char *const *values, uint64_t h, bool *overflow)
{
    series *s = find(f, values, h);
    if (s != NULL || f->n < f->reg->max_series)
        return s != NULL ? s : insert(f, values, h);
    *overflow = true;
    const char *other[OTHER_LABELS_MAX];
    if (f->nlabels > OTHER_LABELS_MAX)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        other[i] = OTHER_VALUE;
    uint64_t oh = hash_values(other, f->nlabels);
    s = find(f, other, oh);
    return s != NULL ? s : insert(f, other, oh);
}

typedef enum op { OP_ADD, OP_SET, OP_OBSERVE } op;

/* h: hash_values(values, f->nlabels). */
static void update_hashed(jb_metric *f, const char *const *values, uint64_t h, op o, double v)
{
    size_t bucket = 0;
    if (o == OP_OBSERVE) {
        /* Prometheus buckets are "less or equal": the first bound >= v. */
        while (bucket < f->nbounds && !(v <= f->bounds[bucket]))
            bucket++;
    }
    bool dropped = false;
    pthread_mutex_lock(&f->mu);
    series *s = lookup(f, values, h, &dropped);
    if (s != NULL) {
        if (o == OP_ADD)
            s->value += v;
        else if (o == OP_SET)
            s->value = v;
        else {
            s->buckets[bucket]++;
            s->sum += v;
            s->count++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (dropped && f != f->reg->dropped)
        update_hashed(f->reg->dropped, NULL, hash_values(NULL, 0), OP_ADD, 1);
}

static void update(jb_metric *f, const char *const *values, op o, double v)
{
    if (f == NULL || (f->nlabels > 0 && values == NULL))
        return;
    update_hashed(f, values, hash_values(values, f->nlabels), o, v);
}

/* A counter only goes up; a negative or NaN add would corrupt rate(). */
static bool add_ok(const jb_metric *f, double v)
{
    return f != NULL && f->kind != KIND_HISTOGRAM && (f->kind != KIND_COUNTER || v >= 0);
}

static bool observe_ok(const jb_metric *f, double v)
{
    return f != NULL && f->kind == KIND_HISTOGRAM && !isnan(v);
}

void jb_metric_add(jb_metric *f, const char *const *label_values, double v)
{
    if (add_ok(f, v))
        update(f, label_values, OP_ADD, v);
}

void jb_metric_set(jb_metric *f, const char *const *label_values, double v)
{
    if (f == NULL || f->kind != KIND_GAUGE)
        return;
    update(f, label_values, OP_SET, v);
}

void jb_metric_observe(jb_metric *f, const char *const *label_values, double v)
{
    if (observe_ok(f, v))
        update(f, label_values, OP_OBSERVE, v);
}

void jb_metric_add_observe(jb_metric *counter, jb_metric *hist, const char *const *label_values,
                           double add, double observe)
{
    if (counter == NULL || hist == NULL || counter->nlabels != hist->nlabels ||
        label_values == NULL) {
        jb_metric_add(counter, label_values, add);
        jb_metric_observe(hist, label_values, observe);
        return;
    }
    uint64_t h = hash_values(label_values, counter->nlabels);
    if (add_ok(counter, add))
        update_hashed(counter, label_values, h, OP_ADD, add);
    if (observe_ok(hist, observe))
        update_hashed(hist, label_values, h, OP_OBSERVE, observe);
}

void jb_metric_reset(jb_metric *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->cap; i++) {
        series_free(f->table[i], f->nlabels);
        f->table[i] = NULL;
    }
    f->n = 0;
    pthread_mutex_unlock(&f->mu);
    /* A family without labels always shows its one series, as zero. */
    if (f->nlabels == 0 && f->kind == KIND_GAUGE)
        update(f, NULL, OP_SET, 0);
}

/* ------------------------------------------------------------ families */

static bool valid_name(const char *s, bool colon_ok)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon_ok && c == ':')))
            return false;
    }
    return true;
}

static void family_free(jb_metric *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->cap; i++)
        series_free(f->table[i], f->nlabels);
    free(f->table);
    for (size_t i = 0; f->label_names != NULL && i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static jb_metric *family_new(jb_metrics *m, kind k, const char *name, const char *help,
                             size_t nlabels, const char *const *label_names, const double *bounds,
                             size_t nbounds)
{
    jb_metric *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->reg = m;
    f->kind = k;
    f->nlabels = nlabels;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->label_names = calloc(nlabels ? nlabels : 1, sizeof(char *));
    f->bounds = calloc(nbounds ? nbounds : 1, sizeof(double));
    if (f->name == NULL || f->help == NULL || f->label_names == NULL || f->bounds == NULL)
        goto fail;
    for (size_t i = 0; i < nlabels; i++)
        if ((f->label_names[i] = strdup(label_names[i])) == NULL)
            goto fail;
    if (nbounds > 0)
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
    f->nbounds = nbounds;
    return f;
fail:
    family_free(f);
    return NULL;
}

static bool valid_family(kind k, const char *name, size_t nlabels, const char *const *label_names,
                         const double *bounds, size_t nbounds)
{
    if (!valid_name(name, true))
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (!valid_name(label_names[i], false) || strncmp(label_names[i], "__", 2) == 0 ||
            (k == KIND_HISTOGRAM && strcmp(label_names[i], "le") == 0))
            return false;
    for (size_t i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return false;
    return true;
}

static jb_metric *reg_family(jb_metrics *m, kind k, const char *name, const char *help,
                             size_t nlabels, const char *const *label_names, const double *bounds,
                             size_t nbounds)
{
    if (m == NULL || !valid_family(k, name, nlabels, label_names, bounds, nbounds))
        return NULL;
    jb_metric *f = NULL;
    pthread_mutex_lock(&m->mu);
    size_t pos = 0;
    while (pos < m->nfams && strcmp(m->fams[pos]->name, name) < 0)
        pos++;
    if (pos < m->nfams && strcmp(m->fams[pos]->name, name) == 0) {
        f = m->fams[pos]->kind == k ? m->fams[pos] : NULL;
        goto done;
    }
    jb_metric **fams = realloc(m->fams, (m->nfams + 1) * sizeof(*fams));
    if (fams == NULL)
        goto done;
    m->fams = fams;
    f = family_new(m, k, name, help, nlabels, label_names, bounds, nbounds);
    if (f == NULL)
        goto done;
    memmove(fams + pos + 1, fams + pos, (m->nfams - pos) * sizeof(*fams));
    fams[pos] = f;
    m->nfams++;
done:
    pthread_mutex_unlock(&m->mu);
    /* A family without labels has its one series from the start, shown as 0. */
    if (f != NULL && nlabels == 0) {
        bool dropped = false;
        pthread_mutex_lock(&f->mu);
        (void)lookup(f, NULL, hash_values(NULL, 0), &dropped);
        pthread_mutex_unlock(&f->mu);
    }
    return f;
}

jb_metric *jb_metrics_counter(jb_metrics *m, const char *name, const char *help, size_t nlabels,
                              const char *const *label_names)
{
    return reg_family(m, KIND_COUNTER, name, help, nlabels, label_names, NULL, 0);
}

jb_metric *jb_metrics_gauge(jb_metrics *m, const char *name, const char *help, size_t nlabels,
                            const char *const *label_names)
{
    return reg_family(m, KIND_GAUGE, name, help, nlabels, label_names, NULL, 0);
}

jb_metric *jb_metrics_histogram(jb_metrics *m, const char *name, const char *help, size_t nlabels,
                                const char *const *label_names, const double *buckets,
                                size_t nbuckets)
{
    return reg_family(m, KIND_HISTOGRAM, name, help, nlabels, label_names, buckets, nbuckets);
}

jb_metrics *jb_metrics_create(size_t max_series)
{
    jb_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    /* Every family needs room for at least its one unlabelled series. */
    m->max_series = max_series > 0 ? max_series : 1;
    m->dropped = jb_metrics_counter(
        m, DROPPED_NAME,
        "Updates counted into a family's other series because it reached its series cap.", 0, NULL);
    if (m->dropped == NULL) {
        jb_metrics_destroy(m);
        return NULL;
    }
    return m;
}

void jb_metrics_destroy(jb_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfams; i++)
        family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ----------------------------------------------------------- rendering */

/* Spelled like Go's strconv.FormatFloat(v, 'g', -1, 64), which the Prometheus
 * client (and so Kyma) uses: the fewest digits that read back as the same double,
 * in exponent form when the decimal exponent is < -4 or >= 6 ("1e+06",
 * "1.5e-05"), else plain ("80000", "0.001"); and +Inf, -Inf, NaN. */
static void format_number(double v, char buf[40])
{
    if (isnan(v)) {
        snprintf(buf, 40, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, 40, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(buf, 40, "%.*e", digits - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, 40, "%.*e", digits - 1, v);
    const char *e = strchr(buf, 'e');
    int exp = e != NULL ? (int)strtol(e + 1, NULL, 10) : 0;
    if (exp < -4 || exp >= 6)
        return;
    int decimals = digits - 1 - exp;
    snprintf(buf, 40, "%.*f", decimals > 0 ? decimals : 0, v);
}

static void put_number(FILE *out, double v)
{
    char buf[40];
    format_number(v, buf);
    fputs(buf, out);
}

static void put_escaped(FILE *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (quote && *s == '"')
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

/* {a="x",b="y"} plus an optional le label; nothing when there are no labels. */
static void put_labels(FILE *out, const jb_metric *f, const series *s, const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return;
    fputc('{', out);
    for (size_t i = 0; i < f->nlabels; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        put_escaped(out, s->values[i], true);
        fputc('"', out);
    }
    if (le != NULL)
        fprintf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    fputc('}', out);
}

static void put_histogram(FILE *out, const jb_metric *f, const series *s)
{
    uint64_t cum = 0;
    char le[40];
    for (size_t b = 0; b <= f->nbounds; b++) {
        cum += s->buckets[b];
        if (b < f->nbounds)
            format_number(f->bounds[b], le);
        else
            snprintf(le, sizeof(le), "+Inf");
        fprintf(out, "%s_bucket", f->name);
        put_labels(out, f, s, le);
        fputc(' ', out);
        put_number(out, (double)cum);
        fputc('\n', out);
    }
    fprintf(out, "%s_sum", f->name);
    put_labels(out, f, s, NULL);
    fputc(' ', out);
    put_number(out, s->sum);
    fprintf(out, "\n%s_count", f->name);
    put_labels(out, f, s, NULL);
    fputc(' ', out);
    put_number(out, (double)s->count);
    fputc('\n', out);
}

static int cmp_series(const void *a, const void *b, void *nlabels)
{
    const series *x = *(series *const *)a, *y = *(series *const *)b;
    for (size_t i = 0; i < *(const size_t *)nlabels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* One family, series ordered by their label values. Caller holds f->mu. */
static bool put_family(FILE *out, jb_metric *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (f->n == 0)
        return true;
    series **list = malloc(f->n * sizeof(*list));
    if (list == NULL)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < f->cap; i++)
        if (f->table[i] != NULL)
            list[n++] = f->table[i];
    qsort_r(list, n, sizeof(*list), cmp_series, &f->nlabels);
    fprintf(out, "# HELP %s ", f->name);
    put_escaped(out, f->help, false);
    fprintf(out, "\n# TYPE %s %s\n", f->name, types[f->kind]);
    for (size_t i = 0; i < n; i++) {
        if (f->kind == KIND_HISTOGRAM) {
            put_histogram(out, f, list[i]);
            continue;
        }
        fputs(f->name, out);
        put_labels(out, f, list[i], NULL);
        fputc(' ', out);
        put_number(out, list[i]->value);
        fputc('\n', out);
    }
    free(list);
    return true;
}

jb_status jb_metrics_render(jb_metrics *m, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    bool ok = true;
    FILE *f = open_memstream(&buf, &n);
    if (f == NULL)
        return JB_ERR_NOMEM;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nfams && ok; i++) {
        pthread_mutex_lock(&m->fams[i]->mu);
        ok = put_family(f, m->fams[i]);
        pthread_mutex_unlock(&m->fams[i]->mu);
    }
    pthread_mutex_unlock(&m->mu);
    ok = !ferror(f) && ok;
    if (fclose(f) != 0 || !ok) {
        free(buf);
        return JB_ERR_NOMEM;
    }
    *out = buf;
    *len = n;
    return JB_OK;
}
