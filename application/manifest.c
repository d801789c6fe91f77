/* Application manifests: documents from subscription/'s manifest reader, checked and
 * turned into immutable, reference-counted jb_app objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "application/app_internal.h"
#include "common/jb_common.h"
#include "common/jb_manifest.h"
#include "common/jb_vec.h"

#define LABEL_MAX_LEN 63
#define ANN_PREFIX    "jetbridge.io/"

/* ------------------------------------------------------------- the vector */

JB_VEC_DEFINE(jb_app_vec, jb_app, jb_app_destroy, jb_app_vec_push, jb_app_vec_clear,
              app_vec_truncate)

/* ------------------------------------------------------------ field checks */

static bool is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* A Kubernetes label value: empty, or at most 63 of [A-Za-z0-9._-], alphanumeric at
 * both ends. */
static bool label_value(const char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return true;
    if (len > LABEL_MAX_LEN || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

static void strs_free(app_strs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static jb_status strs_add(app_strs *l, const char *s, size_t len)
{
    char *copy = strndup(s, len);
    char **items = copy ? realloc(l->items, (l->n + 1) * sizeof(char *)) : NULL;
    if (items == NULL) {
        free(copy);
        return JB_ERR_NOMEM;
    }
    l->items = items;
    l->items[l->n++] = copy;
    return JB_OK;
}

/* One entry of a list (a clientId or a comma-list item): non-empty, at most
 * JB_APP_MAX_ITEM_LEN bytes, no control bytes. */
static jb_status check_item(const char *s, size_t len, const char *path, const char *field,
                            size_t idx, jb_err *err)
{
    const char *what = NULL;
    if (len == 0)
        what = "must not be empty";
    else if (len > JB_APP_MAX_ITEM_LEN)
        what = "longer than 253 bytes";
    else if (has_control(s, len))
        what = "must not contain control characters";
    if (what == NULL)
        return JB_OK;
    return jb_err_set(err, JB_ERR_INVALID, "%s: %s[%zu]: %s", path, field, idx, what);
}

/* A comma list ("a, b,c"): entries trimmed of surrounding spaces and tabs. An empty
 * value is an empty list; an empty entry ("a,,b") is an error. */
static jb_status parse_comma_list(const char *value, const char *path, const char *field,
                                  app_strs *out, jb_err *err)
{
    const char *p = value;
    size_t idx = 0;
    if (value[strspn(value, " \t")] == '\0')
        return JB_OK;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (idx >= JB_APP_MAX_LIST_ITEMS)
            return jb_err_set(err, JB_ERR_INVALID, "%s: %s: more than %d entries", path, field,
                              JB_APP_MAX_LIST_ITEMS);
        jb_status st = check_item(p, (size_t)(e - p), path, field, idx, err);
        if (st != JB_OK)
            return st;
        if (strs_add(out, p, (size_t)(e - p)) != JB_OK)
            return jb_err_set(err, JB_ERR_NOMEM, "%s: out of memory", path);
        idx++;
        if (comma == NULL)
            return JB_OK;
        p = comma + 1;
    }
}

/* Digits with an optional fraction; *end is where parsing stopped. */
static bool parse_number(const char *s, const char **end, double *out)
{
    double v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9' && p - s < 12)
        v = v * 10 + (*p++ - '0');
    if (p == s || (*p >= '0' && *p <= '9'))
        return false;
    if (*p == '.') {
        double scale = 0.1;
        const char *f = ++p;
        while (*p >= '0' && *p <= '9' && p - f < 9) {
            v += (*p++ - '0') * scale;
            scale /= 10;
        }
        if (p == f || (*p >= '0' && *p <= '9'))
            return false;
    }
    *end = p;
    *out = v;
    return true;
}

static const char *skip_sp(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* "<N>/s" or "<N>/s,burst=<M>", spaces allowed around the parts. */
static jb_status parse_rate(const char *value, const char *path, jb_app *a, jb_err *err)
{
    static const char field[] = "metadata.annotations." JB_APP_ANN_RATE;
    const char *p = skip_sp(value);
    double rate = 0, burst = 0;
    bool ok = parse_number(p, &p, &rate) && strncmp(p = skip_sp(p), "/s", 2) == 0;
    if (ok) {
        p = skip_sp(p + 2);
        if (*p == ',') {
            p = skip_sp(p + 1);
            ok = strncmp(p, "burst", 5) == 0 && *(p = skip_sp(p + 5)) == '=' &&
                 parse_number(skip_sp(p + 1), &p, &burst) && burst == (double)(uint64_t)burst;
            p = skip_sp(p);
        } else {
            burst = rate < 1 ? 1 : (double)(uint64_t)(rate + 0.999999999);
        }
        ok = ok && *p == '\0';
    }
    if (!ok)
        return jb_field_err(err, path, field,
                            "must be \"<N>/s\" or \"<N>/s,burst=<M>\" (for example "
                            "\"200/s,burst=400\")");
    if (rate <= 0 || rate > JB_APP_MAX_RATE)
        return jb_field_err(err, path, field, "the rate must be above 0 and at most 1000000/s");
    if (burst < 1 || burst > JB_APP_MAX_BURST)
        return jb_field_err(err, path, field, "the burst must be between 1 and 10000000");
    a->has_rate = true;
    a->rate = rate;
    a->burst = (uint32_t)burst;
    return JB_OK;
}

/* ------------------------------------------------------------ the document */

/* labels and annotations: a map of strings, or absent/null. */
static jb_status check_string_map(const cJSON *m, const char *path, const char *field, jb_err *err)
{
    if (m == NULL || cJSON_IsNull(m))
        return JB_OK;
    if (!cJSON_IsObject(m))
        return jb_field_err(err, path, field, "must be a map of strings");
    for (const cJSON *it = m->child; it != NULL; it = it->next)
        if (!cJSON_IsString(it))
            return jb_err_set(err, JB_ERR_INVALID, "%s: %s.%s: must be a string", path, field,
                              it->string);
    return JB_OK;
}

static jb_status check_head(const cJSON *obj, const char *path, jb_err *err)
{
    /* The name is a DNS-1123 subdomain: what Kubernetes accepts as the name of a
     * cluster-scoped object, and safe as a KV key and as a URL path segment. */
    const cJSON *m = NULL;
    jb_status st = jb_manifest_head(obj, path, JB_APP_API_VERSION, JB_APP_KIND, &m, err);
    if (st == JB_OK)
        st = check_string_map(cJSON_GetObjectItemCaseSensitive(m, "labels"), path,
                              "metadata.labels", err);
    if (st == JB_OK)
        st = check_string_map(cJSON_GetObjectItemCaseSensitive(m, "annotations"), path,
                              "metadata.annotations", err);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(m, "creationTimestamp");
    if (st == JB_OK && ct != NULL && !cJSON_IsNull(ct) && !cJSON_IsString(ct))
        st = jb_field_err(err, path, "metadata.creationTimestamp", "must be a string");
    return st;
}

/* spec is free-form (Kyma's Application has many fields jetbridge does not use);
 * only clientIds is checked. */
static jb_status check_spec(const cJSON *obj, const char *path, jb_err *err)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (spec == NULL || cJSON_IsNull(spec))
        return JB_OK;
    if (!cJSON_IsObject(spec))
        return jb_field_err(err, path, "spec", "must be a map");
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(spec, "compassMetadata");
    if (cm == NULL || cJSON_IsNull(cm))
        return JB_OK;
    if (!cJSON_IsObject(cm))
        return jb_field_err(err, path, "spec.compassMetadata", "must be a map");
    const cJSON *au = cJSON_GetObjectItemCaseSensitive(cm, "authentication");
    if (au == NULL || cJSON_IsNull(au))
        return JB_OK;
    if (!cJSON_IsObject(au))
        return jb_field_err(err, path, "spec.compassMetadata.authentication", "must be a map");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(au, "clientIds");
    static const char field[] = "spec.compassMetadata.authentication.clientIds";
    if (ids == NULL || cJSON_IsNull(ids))
        return JB_OK;
    if (!cJSON_IsArray(ids))
        return jb_field_err(err, path, field, "must be a list of strings");
    if (cJSON_GetArraySize(ids) > JB_APP_MAX_LIST_ITEMS)
        return jb_err_set(err, JB_ERR_INVALID, "%s: %s: more than %d entries", path, field,
                          JB_APP_MAX_LIST_ITEMS);
    size_t i = 0;
    for (const cJSON *it = ids->child; it != NULL; it = it->next, i++) {
        if (!cJSON_IsString(it))
            return jb_err_set(err, JB_ERR_INVALID, "%s: %s[%zu]: must be a string", path, field, i);
        jb_status st = check_item(it->valuestring, strlen(it->valuestring), path, field, i, err);
        if (st != JB_OK)
            return st;
    }
    return JB_OK;
}

/* The canonical document: what the store keeps, nothing the API server adds. */
static cJSON *canonical(const cJSON *obj)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    cJSON *doc = cJSON_CreateObject();
    cJSON *meta = cJSON_CreateObject();
    if (doc == NULL || meta == NULL ||
        !cJSON_AddStringToObject(doc, "apiVersion", JB_APP_API_VERSION) ||
        !cJSON_AddStringToObject(doc, "kind", JB_APP_KIND))
        goto nomem;
    cJSON_AddItemToObject(doc, "metadata", meta);
    meta = NULL;
    cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    static const char *const keep[] = {"name", "labels", "annotations", "creationTimestamp"};
    if (!jb_json_copy_keys(m, md, keep, 4))
        goto nomem;
    cJSON *sd = cJSON_IsObject(spec) ? cJSON_Duplicate(spec, 1) : cJSON_CreateObject();
    if (sd == NULL)
        goto nomem;
    cJSON_AddItemToObject(doc, "spec", sd);
    return doc;
nomem:
    cJSON_Delete(meta);
    cJSON_Delete(doc);
    return NULL;
}

static jb_status fill_annotations(jb_app *a, const cJSON *ann, const char *path, jb_err *err)
{
    for (const cJSON *it = ann ? ann->child : NULL; it != NULL; it = it->next) {
        const char *k = it->string, *v = it->valuestring;
        jb_status st = JB_OK;
        if (strncmp(k, ANN_PREFIX, strlen(ANN_PREFIX)) != 0)
            continue;
        if (strcmp(k, JB_APP_ANN_SOURCES) == 0)
            st = parse_comma_list(v, path, "metadata.annotations." JB_APP_ANN_SOURCES, &a->sources,
                                  err);
        else if (strcmp(k, JB_APP_ANN_TYPES) == 0)
            st =
                parse_comma_list(v, path, "metadata.annotations." JB_APP_ANN_TYPES, &a->types, err);
        else if (strcmp(k, JB_APP_ANN_RATE) == 0)
            st = parse_rate(v, path, a, err);
        else if (strcmp(k, JB_APP_ANN_MANAGED_BY) == 0)
            a->k8s_owned = strcmp(v, JB_APP_MANAGED_KUBERNETES) == 0;
        else
            st = jb_err_set(err, JB_ERR_INVALID,
                            "%s: metadata.annotations.%s: unknown jetbridge.io annotation "
                            "(known: allowed-sources, allowed-types, rate-limit, managed-by)",
                            path, k);
        if (st != JB_OK)
            return st;
    }
    return JB_OK;
}

static jb_status fill_fields(jb_app *a, const char *path, jb_err *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(a->doc, "metadata");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    const char *label = "";
    for (const cJSON *it = cJSON_IsObject(labels) ? labels->child : NULL; it; it = it->next)
        if (strcasecmp(it->string, JB_APP_LABEL_TYPE) == 0)
            label = it->valuestring;
    if (!label_value(label))
        return jb_field_err(err, path, "metadata.labels." JB_APP_LABEL_TYPE,
                            "must be a label value (at most 63 of A-Z, a-z, 0-9, '-', '_', '.', "
                            "alphanumeric at both ends)");
    if ((a->name = strdup(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring)) == NULL ||
        (a->label = strdup(label)) == NULL)
        return JB_ERR_NOMEM;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a->doc, "spec"),
                                             "compassMetadata"),
            "authentication"),
        "clientIds");
    for (const cJSON *it = cJSON_IsArray(ids) ? ids->child : NULL; it; it = it->next)
        if (strs_add(&a->client_ids, it->valuestring, strlen(it->valuestring)) != JB_OK)
            return JB_ERR_NOMEM;
    jb_status st =
        fill_annotations(a, cJSON_GetObjectItemCaseSensitive(meta, "annotations"), path, err);
    if (st != JB_OK)
        return st;
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(meta, "creationTimestamp");
    if (cJSON_IsString(ct) && !jb_k8s_time_parse(ct->valuestring, &a->created_ms))
        return jb_field_err(err, path, "metadata.creationTimestamp",
                            "must be RFC 3339 UTC (2006-01-02T15:04:05Z)");
    if ((a->json = cJSON_PrintUnformatted(a->doc)) == NULL)
        return JB_ERR_NOMEM;
    return JB_OK;
}

jb_status jb_app_from_cjson(const cJSON *obj, const char *origin, jb_app **out, jb_err *err)
{
    const char *path = origin ? origin : "-";
    if (!cJSON_IsObject(obj))
        return jb_err_set(err, JB_ERR_INVALID, "%s: not a map", path);
    jb_status st = check_head(obj, path, err);
    if (st == JB_OK)
        st = check_spec(obj, path, err);
    if (st != JB_OK)
        return st;
    jb_app *a = calloc(1, sizeof(*a));
    st = JB_ERR_NOMEM;
    if (a == NULL)
        goto done;
    atomic_init(&a->refs, 1);
    if ((a->doc = canonical(obj)) == NULL)
        goto done;
    if ((st = fill_fields(a, path, err)) != JB_OK)
        goto done;
    *out = a;
    a = NULL;
done:
    if (st == JB_ERR_NOMEM)
        jb_err_set(err, st, "%s: out of memory", path);
    jb_app_destroy(a);
    return st;
}

/* --------------------------------------------------------------- parsing */

static jb_status app_make(const cJSON *doc, const char *path, const char *arg, jb_app **out,
                          jb_err *err)
{
    (void)arg;
    return jb_app_from_cjson(doc, path, out, err);
}

JB_VEC_DEFINE_READER(read_apps, jb_app_vec, jb_app, app_make, jb_app_vec_push, app_vec_truncate)

jb_status jb_app_parse(const char *buf, size_t len, const char *origin, jb_app_vec *out,
                       jb_err *err)
{
    return read_apps(false, buf, len, origin, NULL, out, err);
}

jb_status jb_app_parse_path(const char *path, jb_app_vec *out, jb_err *err)
{
    return read_apps(true, NULL, 0, path, NULL, out, err);
}

jb_status jb_app_from_json(const char *json, size_t len, jb_app **out, jb_err *err)
{
    return jb_manifest_from_json(json, len, read_apps_one, out, err);
}

/* ------------------------------------------------------------- objects */

void jb_app_release(const jb_app *ca)
{
    jb_app *a = (jb_app *)ca; /* the count is the one mutable part */
    if (a == NULL || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    free(a->name);
    free(a->label);
    strs_free(&a->client_ids);
    strs_free(&a->sources);
    strs_free(&a->types);
    cJSON_Delete(a->doc);
    free(a->json);
    free(a);
}

void jb_app_destroy(jb_app *a)
{
    jb_app_release(a);
}

jb_app *jb_app_dup(const jb_app *ca)
{
    jb_app *a = (jb_app *)ca;
    atomic_fetch_add(&a->refs, 1);
    return a;
}

jb_app *app_with_created(const jb_app *a, int64_t created_ms)
{
    cJSON *doc = cJSON_Duplicate(a->doc, 1);
    jb_app *d = NULL;
    if (doc == NULL)
        return NULL;
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "creationTimestamp");
    char ts[32];
    jb_k8s_time_format(created_ms, ts);
    if (created_ms <= 0 || cJSON_AddStringToObject(meta, "creationTimestamp", ts) != NULL) {
        jb_err err;
        (void)jb_app_from_cjson(doc, "copy", &d, &err);
    }
    cJSON_Delete(doc);
    return d;
}

bool jb_app_equal(const jb_app *a, const jb_app *b)
{
    cJSON *x = cJSON_Duplicate(a->doc, 1), *y = cJSON_Duplicate(b->doc, 1);
    bool eq = false;
    if (x != NULL && y != NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, "metadata"),
                                                "creationTimestamp");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(y, "metadata"),
                                                "creationTimestamp");
        eq = cJSON_Compare(x, y, 1);
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

/* ------------------------------------------------------------ accessors */

const char *jb_app_json(const jb_app *a)
{
    return a->json;
}
const cJSON *jb_app_doc(const jb_app *a)
{
    return a->doc;
}
const char *jb_app_name(const jb_app *a)
{
    return a->name;
}
const char *jb_app_type_label(const jb_app *a)
{
    return a->label;
}
const char *jb_app_clean_name(const jb_app *a)
{
    return a->label[0] ? a->label : a->name;
}
size_t jb_app_client_id_count(const jb_app *a)
{
    return a->client_ids.n;
}
const char *jb_app_client_id(const jb_app *a, size_t i)
{
    return i < a->client_ids.n ? a->client_ids.items[i] : NULL;
}
size_t jb_app_allowed_source_count(const jb_app *a)
{
    return a->sources.n;
}
const char *jb_app_allowed_source(const jb_app *a, size_t i)
{
    return i < a->sources.n ? a->sources.items[i] : NULL;
}
size_t jb_app_allowed_type_count(const jb_app *a)
{
    return a->types.n;
}
const char *jb_app_allowed_type(const jb_app *a, size_t i)
{
    return i < a->types.n ? a->types.items[i] : NULL;
}
bool jb_app_kubernetes_owned(const jb_app *a)
{
    return a->k8s_owned;
}
int64_t jb_app_created_ms(const jb_app *a)
{
    return a->created_ms;
}

bool jb_app_rate_limit(const jb_app *a, double *per_second, uint32_t *burst)
{
    if (!a->has_rate)
        return false;
    if (per_second != NULL)
        *per_second = a->rate;
    if (burst != NULL)
        *burst = a->burst;
    return true;
}
