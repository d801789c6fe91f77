/* `jetbridge stats`: per subscription and type, what was delivered, failed, retried,
 * dead-lettered, is pending or in flight, and the last error; plus publisher totals.
 *
 * Two sources. JetStream is authoritative and cluster-wide: consumer info gives
 * pending and in-flight counts, the dead-letter stream gives dead letters and the
 * last error. Counters that only the processes know (delivered, failed, retried,
 * publisher requests) come from their Prometheus endpoints (--metrics URL, by
 * default this host's METRICS_ADDR); several URLs are summed. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/jb_cli.h"
#include "common/jb_common.h"
#include "common/jb_text.h"
#include "config/jb_cfg.h"
#include "subscription/jb_sub.h"

#define MAX_METRICS_URLS 16
#define MAX_SCRAPE_BYTES (8 * 1024 * 1024)
#define MAX_ERR_TS_S     1e12 /* seconds; year 33658, so milliseconds fit int64_t */

typedef struct scrape {
    char *buf;
    size_t len;
    bool ok;
} scrape;

typedef struct stats_opts {
    const char *urls[MAX_METRICS_URLS];
    size_t nurls;
    bool watch;
    bool json;
    int interval_s;
} stats_opts;

static void stats_usage(FILE *f)
{
    fprintf(f, "Usage: jetbridge stats [--watch] [--interval S] [--metrics URL]... [-o json]\n\n"
               "Per subscription and type: delivered, failed, retried, dead-lettered, pending\n"
               "in the stream, in flight, and the last error and when; plus publisher\n"
               "totals. Pending, in flight and dead letters come from JetStream (all\n"
               "processes); delivered, failed, retried and publisher totals from the\n"
               "Prometheus endpoints given with --metrics (default: this host's METRICS_ADDR),\n"
               "summed; \"-\" when no endpoint answered.\n\n"
               "Examples:\n  jetbridge stats\n  jetbridge stats --watch\n"
               "  jetbridge stats --metrics http://10.0.0.5:9090/metrics --metrics "
               "http://10.0.0.6:9090/metrics\n");
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    scrape *s = ud;
    size_t n = size * nmemb;
    if (s->len + n > MAX_SCRAPE_BYTES)
        return 0; /* aborts the transfer: a metrics page this large is not ours */
    char *nb = realloc(s->buf, s->len + n + 1);
    if (nb == NULL)
        return 0;
    memcpy(nb + s->len, ptr, n);
    s->buf = nb;
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

static void fetch_metrics(const char *url, scrape *s)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK &&
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
        s->ok = true;
    curl_easy_cleanup(c);
}

static bool name_is(const jb_prom_sample *smp, const char *name)
{
    return smp->name_len == strlen(name) && memcmp(smp->name, name, smp->name_len) == 0;
}

/* Sums samples of metric `name` whose response code class matches `klass` ('2'
 * for 2xx, '!' for not 2xx, 0 for any; read from label code_label). */
static double sum_metric(const scrape *s, size_t ns, const char *name, const char *code_label,
                         char klass)
{
    double total = 0;
    for (size_t k = 0; k < ns; k++) {
        jb_prom_sample smp;
        size_t pos = 0;
        while (s[k].ok && jb_prom_next(s[k].buf, s[k].len, &pos, &smp)) {
            if (!name_is(&smp, name))
                continue;
            char v[256];
            if (klass != 0 && code_label != NULL) {
                bool is2 = jb_prom_label(&smp, code_label, v, sizeof(v)) && v[0] == '2';
                if ((klass == '2') != is2)
                    continue;
            }
            total += smp.value;
        }
    }
    return total;
}

/* One row: a (subscription, type) consumer. */
typedef struct row {
    char sub[300];
    char type[256];
    char consumer[33];
    double delivered, failed, retried;
    uint64_t dead;
    int64_t pending, in_flight; /* -1: consumer not found */
    int last_code;              /* last dead letter's errorcode, -1 when none */
    int64_t last_ms;            /* its time */
    int err_code;               /* last failed delivery's status (metrics), -1 when none */
    int64_t err_ms;             /* its time */
} row;

typedef struct dlq_counts {
    jsStreamInfo *si; /* State.Subjects: subject -> count */
} dlq_counts;

static uint64_t dlq_count(const dlq_counts *d, const char *subject)
{
    if (d->si == NULL || d->si->State.Subjects == NULL)
        return 0;
    for (int i = 0; i < d->si->State.Subjects->Count; i++)
        if (strcmp(d->si->State.Subjects->List[i].Subject, subject) == 0)
            return d->si->State.Subjects->List[i].Msgs;
    return 0;
}

static void fill_row(const jb_cfg *cfg, jsCtx *js, const dlq_counts *dlq, const jb_sub_consumer *c,
                     row *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->sub, sizeof(r->sub), "%s/%s", c->ns, c->name);
    snprintf(r->type, sizeof(r->type), "%s", c->type);
    memcpy(r->consumer, c->consumer, sizeof(r->consumer));
    r->err_code = -1;
    r->pending = r->in_flight = -1;
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, js, cfg->stream_name, c->consumer, NULL, NULL) == NATS_OK) {
        r->pending = (int64_t)ci->NumPending;
        r->in_flight = ci->NumAckPending;
        jsConsumerInfo_Destroy(ci);
    }
    char subject[64];
    snprintf(subject, sizeof(subject), "kyma-dlq.%s", c->consumer);
    r->dead = dlq_count(dlq, subject);
    r->last_code = -1;
    natsMsg *m = NULL;
    if (r->dead > 0 &&
        js_GetLastMsg(&m, js, cfg->dlq_stream_name, subject, NULL, NULL) == NATS_OK) {
        const char *code = NULL;
        if (natsMsgHeader_Get(m, "ce-errorcode", &code) == NATS_OK && code != NULL)
            r->last_code = (int)strtol(code, NULL, 10);
        r->last_ms = natsMsg_GetTime(m) / 1000000;
        natsMsg_Destroy(m);
    }
}

static int cmp_row_ptr(const void *a, const void *b)
{
    return strcmp((*(row *const *)a)->consumer, (*(row *const *)b)->consumer);
}

static int cmp_key_row(const void *key, const void *elem)
{
    return strcmp(key, (*(row *const *)elem)->consumer);
}

/* Adds one sample of an endpoint to its consumer's row (index: rows sorted by
 * consumer name). Counters are summed over endpoints; the endpoint's last-error
 * gauges go to err_ts/err_code, indexed like index, whatever their order. */
static void apply_sample(row **index, size_t n, const jb_prom_sample *smp, double *err_ts,
                         double *err_code)
{
    int which = name_is(smp, "eventing_ec_nats_delivery_per_subscription_total")    ? 1
                : name_is(smp, "jetbridge_dispatcher_retries_total")                ? 2
                : name_is(smp, "jetbridge_dispatcher_last_error_timestamp_seconds") ? 3
                : name_is(smp, "jetbridge_dispatcher_last_error_code")              ? 4
                                                                                    : 0;
    char consumer[64], code[16];
    if (which == 0 || !jb_prom_label(smp, "consumer_name", consumer, sizeof(consumer)))
        return;
    row **hit = bsearch(consumer, index, n, sizeof(*index), cmp_key_row);
    if (hit == NULL)
        return;
    row *r = *hit;
    double v = smp->value;
    size_t i = (size_t)(hit - index);
    if (which == 1) {
        bool ok = jb_prom_label(smp, "response_code", code, sizeof(code)) && code[0] == '2';
        *(ok ? &r->delivered : &r->failed) += v;
    } else if (which == 2) {
        r->retried += v;
    } else {
        (which == 3 ? err_ts : err_code)[i] = v;
    }
}

/* Reads every scraped endpoint once and adds what it says to the rows. */
static jb_status apply_metrics(row *rows, size_t n, const scrape *sc, size_t nsc)
{
    row **index = malloc((n ? n : 1) * sizeof(*index));
    double *err_ts = malloc((n ? n : 1) * sizeof(*err_ts));
    double *err_code = malloc((n ? n : 1) * sizeof(*err_code));
    if (index == NULL || err_ts == NULL || err_code == NULL) {
        free(index);
        free(err_ts);
        free(err_code);
        return JB_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        index[i] = &rows[i];
    qsort(index, n, sizeof(*index), cmp_row_ptr);
    for (size_t k = 0; k < nsc; k++) {
        if (!sc[k].ok)
            continue;
        memset(err_ts, 0, n * sizeof(*err_ts));
        memset(err_code, 0, n * sizeof(*err_code));
        jb_prom_sample smp;
        size_t pos = 0;
        while (jb_prom_next(sc[k].buf, sc[k].len, &pos, &smp))
            apply_sample(index, n, &smp, err_ts, err_code);
        /* The newest last error over the endpoints. A timestamp or code out of range
         * (or NaN) is not one we wrote: it is ignored rather than converted, which
         * would be undefined. */
        for (size_t i = 0; i < n; i++) {
            if (!(err_ts[i] > 0 && err_ts[i] < MAX_ERR_TS_S))
                continue;
            int64_t ms = (int64_t)(err_ts[i] * 1000);
            if (ms > index[i]->err_ms) {
                index[i]->err_ms = ms;
                index[i]->err_code = err_code[i] >= 0 && err_code[i] < 1000 ? (int)err_code[i] : -1;
            }
        }
    }
    free(index);
    free(err_ts);
    free(err_code);
    return JB_OK;
}

/* Every consumer row of every valid subscription; *rows malloc'd. */
static jb_status collect(const jb_cfg *cfg, jsCtx *js, const stats_opts *o, scrape *sc, row **rows,
                         size_t *nrows, jb_err *err)
{
    jb_status rc;
    jb_sub_store *st = NULL;
    jb_sub_vec subs = {0};
    dlq_counts dlq = {0};
    row *out = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < o->nurls; i++)
        fetch_metrics(o->urls[i], &sc[i]);
    if ((rc = jb_sub_store_open(cfg, js, &st, err)) != JB_OK ||
        (rc = jb_sub_store_list(st, NULL, &subs, err)) != JB_OK)
        goto out;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = "kyma-dlq.>";
    (void)js_GetStreamInfo(&dlq.si, js, cfg->dlq_stream_name, &jo, NULL);
    for (size_t i = 0; i < subs.n; i++) {
        jb_sub_consumer_list cl = {0};
        if (jb_sub_consumers(subs.items[i], cfg, &cl, NULL) != JB_OK)
            continue; /* invalid: `jetbridge sub get` shows why */
        for (size_t k = 0; k < cl.n; k++) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                row *nr = realloc(out, ncap * sizeof(*nr));
                if (nr == NULL) {
                    jb_sub_consumer_list_free(&cl);
                    rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
                    goto out;
                }
                out = nr;
                cap = ncap;
            }
            fill_row(cfg, js, &dlq, &cl.items[k], &out[n++]);
        }
        jb_sub_consumer_list_free(&cl);
    }
    if (apply_metrics(out, n, sc, o->nurls) != JB_OK) {
        rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    *rows = out;
    *nrows = n;
    out = NULL;
out:
    free(out);
    if (dlq.si != NULL)
        jsStreamInfo_Destroy(dlq.si);
    jb_sub_vec_clear(&subs);
    jb_sub_store_close(st);
    return rc;
}

static bool any_ok(const scrape *sc, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sc[i].ok)
            return true;
    return false;
}

static void fmt_count(char *out, size_t cap, double v, bool known)
{
    if (!known)
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.0f", v);
}

/* "503, 12s ago": the last failed delivery the processes report, else the last
 * dead letter's error. */
static void fmt_last(char *out, size_t cap, const row *r)
{
    int code = r->err_code >= 0 ? r->err_code : r->last_code;
    int64_t when = r->err_code >= 0 ? r->err_ms : r->last_ms;
    if (code < 0) {
        snprintf(out, cap, "-");
        return;
    }
    int64_t ago = (jb_now_wall_ms() - when) / 1000;
    if (ago < 0)
        ago = 0;
    if (code == 0)
        snprintf(out, cap, "transport error or timeout, %llds ago", (long long)ago);
    else
        snprintf(out, cap, "HTTP %d, %llds ago", code, (long long)ago);
}

static void print_table(const row *rows, size_t n, const scrape *sc, size_t nsc)
{
    bool known = any_ok(sc, nsc);
    int wsub = (int)strlen("SUBSCRIPTION"), wtype = (int)strlen("TYPE");
    for (size_t i = 0; i < n; i++) {
        int a = (int)strlen(rows[i].sub), b = (int)strlen(rows[i].type);
        wsub = a > wsub ? a : wsub;
        wtype = b > wtype ? b : wtype;
    }
    printf("%-*s %-*s %9s %7s %7s %6s %8s %9s  %s\n", wsub, "SUBSCRIPTION", wtype, "TYPE",
           "DELIVERED", "FAILED", "RETRIED", "DEAD", "PENDING", "IN-FLIGHT", "LAST ERROR");
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        char d[32], f[32], t[32], p[32], fl[32], last[64];
        fmt_count(d, sizeof(d), r->delivered, known);
        fmt_count(f, sizeof(f), r->failed, known);
        fmt_count(t, sizeof(t), r->retried, known);
        fmt_count(p, sizeof(p), (double)r->pending, r->pending >= 0);
        fmt_count(fl, sizeof(fl), (double)r->in_flight, r->in_flight >= 0);
        fmt_last(last, sizeof(last), r);
        printf("%-*s %-*s %9s %7s %7s %6llu %8s %9s  %s\n", wsub, r->sub, wtype, r->type, d, f, t,
               (unsigned long long)r->dead, p, fl, last);
    }
    if (n == 0)
        printf("(no valid subscriptions)\n");
    if (known) {
        const char *m = "eventing_epp_requests_total";
        printf("\npublisher: %.0f requests, %.0f stored (2xx), %.0f refused; %.0f rejected for "
               "overload\n",
               sum_metric(sc, nsc, m, "code", 0), sum_metric(sc, nsc, m, "code", '2'),
               sum_metric(sc, nsc, m, "code", '!'),
               sum_metric(sc, nsc, "jetbridge_publisher_rejected_total", NULL, 0));
    } else {
        printf("\n(no metrics endpoint answered: delivered, failed, retried and publisher totals "
               "unknown)\n");
    }
}

static void print_json(const row *rows, size_t n, const scrape *sc, size_t nsc)
{
    bool known = any_ok(sc, nsc);
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "consumers");
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "subscription", r->sub);
        cJSON_AddStringToObject(o, "type", r->type);
        cJSON_AddStringToObject(o, "consumer", r->consumer);
        if (known) {
            cJSON_AddNumberToObject(o, "delivered", r->delivered);
            cJSON_AddNumberToObject(o, "failed", r->failed);
            cJSON_AddNumberToObject(o, "retried", r->retried);
        }
        cJSON_AddNumberToObject(o, "deadLettered", (double)r->dead);
        if (r->pending >= 0) {
            cJSON_AddNumberToObject(o, "pending", (double)r->pending);
            cJSON_AddNumberToObject(o, "inFlight", (double)r->in_flight);
        }
        if (r->err_code >= 0 || r->last_code >= 0) {
            bool m = r->err_code >= 0;
            cJSON_AddNumberToObject(o, "lastErrorCode", m ? r->err_code : r->last_code);
            cJSON_AddNumberToObject(o, "lastErrorTimeMs", (double)(m ? r->err_ms : r->last_ms));
        }
        cJSON_AddItemToArray(arr, o);
    }
    if (known) {
        cJSON *p = cJSON_AddObjectToObject(doc, "publisher");
        const char *m = "eventing_epp_requests_total";
        cJSON_AddNumberToObject(p, "requests", sum_metric(sc, nsc, m, "code", 0));
        cJSON_AddNumberToObject(p, "stored", sum_metric(sc, nsc, m, "code", '2'));
        cJSON_AddNumberToObject(p, "refused", sum_metric(sc, nsc, m, "code", '!'));
    }
    char *s = cJSON_PrintUnformatted(doc);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(doc);
}

static int parse_args(int argc, char **argv, const jb_cfg *cfg, stats_opts *o, char *defurl,
                      size_t defcap)
{
    o->interval_s = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            stats_usage(stdout);
            return 0;
        } else if (strcmp(a, "--watch") == 0 || strcmp(a, "-w") == 0) {
            o->watch = true;
        } else if (strcmp(a, "-o") == 0 && i + 1 < argc && strcmp(argv[i + 1], "json") == 0) {
            o->json = true;
            i++;
        } else if (strcmp(a, "--metrics") == 0 && i + 1 < argc && o->nurls < MAX_METRICS_URLS) {
            o->urls[o->nurls++] = argv[++i];
        } else if (strcmp(a, "--interval") == 0 && i + 1 < argc) {
            int64_t v;
            if (!jb_parse_int(argv[i + 1], strlen(argv[i + 1]), 1, 3600, &v)) {
                fprintf(stderr, "jetbridge stats: --interval: want seconds 1..3600\n");
                return 2;
            }
            o->interval_s = (int)v;
            i++;
        } else {
            fprintf(stderr,
                    "jetbridge stats: unknown argument \"%s\"; see `jetbridge stats --help`\n", a);
            return 2;
        }
    }
    if (o->nurls == 0) {
        const char *colon = strrchr(cfg->metrics_addr, ':');
        const char *host = "127.0.0.1";
        char hbuf[256] = "";
        if (colon != NULL && colon != cfg->metrics_addr) {
            size_t hl = (size_t)(colon - cfg->metrics_addr);
            if (hl < sizeof(hbuf) && strncmp(cfg->metrics_addr, "0.0.0.0", hl) != 0) {
                memcpy(hbuf, cfg->metrics_addr, hl);
                hbuf[hl] = '\0';
                host = hbuf;
            }
        }
        snprintf(defurl, defcap, "http://%s:%s/metrics", host, colon ? colon + 1 : "9090");
        o->urls[o->nurls++] = defurl;
    }
    return -1;
}

int jb_cli_stats(const jb_cfg *cfg, int argc, char **argv)
{
    stats_opts o = {0};
    char defurl[512];
    int prc = parse_args(argc, argv, cfg, &o, defurl, sizeof(defurl));
    if (prc >= 0)
        return prc;
    jb_cfg local = *cfg; /* main settled NATS_URL and METRICS_ADDR (jb_cfg_resolve_client) */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    if (jb_cfg_nats_connect(&local, NULL, "jetbridge-stats", false, &nc, &js, &err) != JB_OK) {
        fprintf(stderr, "jetbridge stats: %s\n", err.msg);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 0;
    do {
        scrape sc[MAX_METRICS_URLS] = {{0}};
        row *rows = NULL;
        size_t n = 0;
        if (collect(&local, js, &o, sc, &rows, &n, &err) != JB_OK) {
            fprintf(stderr, "jetbridge stats: %s\n", err.msg);
            rc = 1;
        } else {
            if (o.watch)
                printf("\033[H\033[2J");
            if (o.json)
                print_json(rows, n, sc, o.nurls);
            else
                print_table(rows, n, sc, o.nurls);
            fflush(stdout);
        }
        free(rows);
        for (size_t i = 0; i < o.nurls; i++)
            free(sc[i].buf);
        if (o.watch && rc == 0)
            sleep((unsigned)o.interval_s);
    } while (o.watch && rc == 0);
    curl_global_cleanup();
    jb_nats_close(nc, js);
    return rc;
}
