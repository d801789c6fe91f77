/* Subscription manifests: documents from common/'s manifest reader, checked and
 * turned into immutable jb_sub objects; accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_manifest.h"
#include "common/jb_vec.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define API_VERSION "eventing.kyma-project.io/v1alpha2"

/* ------------------------------------------------------------- the vector */

JB_VEC_DEFINE(jb_sub_vec, jb_sub, jb_sub_destroy, jb_sub_vec_push, jb_sub_vec_clear,
              sub_vec_truncate)

/* ------------------------------------------------------ field checks */

/* Optional string: absent or null gives def. */
static jb_status get_str(const cJSON *obj, const char *key, const char *path, const char *field,
                         const char *def, char **out, jb_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s = def;
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v))
            return jb_field_err(err, path, field, "must be a string");
        s = v->valuestring;
    }
    if (s == NULL) {
        *out = NULL;
        return JB_OK;
    }
    *out = strdup(s);
    return *out ? JB_OK : JB_ERR_NOMEM;
}

/* A string map (labels, annotations, spec.config): numbers and booleans written
 * in JSON become their text, as Kubernetes' string maps accept nothing else. */
static jb_status norm_string_map(cJSON *m, const char *path, const char *field, jb_err *err)
{
    if (m == NULL || cJSON_IsNull(m))
        return JB_OK;
    if (!cJSON_IsObject(m))
        return jb_field_err(err, path, field, "must be a map of strings");
    for (cJSON *it = m->child; it != NULL; it = it->next) {
        if (cJSON_IsString(it))
            continue;
        char buf[64];
        if (cJSON_IsNumber(it))
            snprintf(buf, sizeof(buf), "%.17g", it->valuedouble);
        else if (cJSON_IsBool(it))
            snprintf(buf, sizeof(buf), "%s", cJSON_IsTrue(it) ? "true" : "false");
        else
            return jb_err_set(err, JB_ERR_INVALID, "%s: %s.%s: must be a string", path, field,
                              it->string);
        cJSON *s = cJSON_CreateString(buf);
        if (s == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(m, it->string, s)) {
            cJSON_Delete(s);
            return JB_ERR_NOMEM;
        }
        it = s;
    }
    return JB_OK;
}

/* Checks apiVersion, kind and metadata; builds the canonical metadata object. */
static jb_status check_head(const cJSON *obj, const char *path, const char *default_ns,
                            cJSON **meta_out, jb_err *err)
{
    const cJSON *m = NULL;
    jb_status hst = jb_manifest_head(obj, path, API_VERSION, "Subscription", &m, err);
    if (hst != JB_OK)
        return hst;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(m, "namespace");
    const char *nsv = default_ns ? default_ns : "default";
    if (ns != NULL && !cJSON_IsNull(ns)) {
        if (!cJSON_IsString(ns))
            return jb_field_err(err, path, "metadata.namespace", "must be a string");
        nsv = ns->valuestring;
    }
    if (!jb_dns_name(nsv, 63, false))
        return jb_field_err(err, path, "metadata.namespace",
                            "must be a lower-case DNS-1123 label (a-z, 0-9, '-'; at most 63 "
                            "characters)");
    cJSON *meta = cJSON_CreateObject();
    if (meta == NULL || !cJSON_AddStringToObject(meta, "name", name->valuestring) ||
        !cJSON_AddStringToObject(meta, "namespace", nsv))
        goto nomem;
    static const char *const keep[] = {"labels", "annotations", "creationTimestamp"};
    if (!jb_json_copy_keys(m, meta, keep, 3))
        goto nomem;
    jb_status st = norm_string_map(cJSON_GetObjectItemCaseSensitive(meta, "labels"), path,
                                   "metadata.labels", err);
    if (st == JB_OK)
        st = norm_string_map(cJSON_GetObjectItemCaseSensitive(meta, "annotations"), path,
                             "metadata.annotations", err);
    if (st != JB_OK) {
        cJSON_Delete(meta);
        return st;
    }
    *meta_out = meta;
    return JB_OK;
nomem:
    cJSON_Delete(meta);
    return JB_ERR_NOMEM;
}

static const char *const spec_fields[] = {"id",           "sink",  "source",
                                          "typeMatching", "types", "config"};

/* Checks the shapes of spec and returns its canonical copy. */
static jb_status check_spec(const cJSON *obj, const char *path, cJSON **spec_out, jb_err *err)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (!cJSON_IsObject(spec))
        return jb_field_err(err, path, "spec", "missing or not a map");
    for (const cJSON *it = spec->child; it != NULL; it = it->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof(spec_fields) / sizeof(spec_fields[0]); i++)
            known = known || strcmp(it->string, spec_fields[i]) == 0;
        if (!known)
            return jb_err_set(err, JB_ERR_INVALID, "%s: spec.%s: unknown field", path, it->string);
    }
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(spec, "types");
    if (types != NULL && !cJSON_IsNull(types)) {
        if (!cJSON_IsArray(types))
            return jb_field_err(err, path, "spec.types", "must be a list of strings");
        int i = 0;
        for (const cJSON *t = types->child; t != NULL; t = t->next, i++)
            if (!cJSON_IsString(t))
                return jb_err_set(err, JB_ERR_INVALID, "%s: spec.types[%d]: must be a string", path,
                                  i);
    }
    cJSON *copy = cJSON_Duplicate(spec, 1);
    if (copy == NULL)
        return JB_ERR_NOMEM;
    jb_status st =
        norm_string_map(cJSON_GetObjectItemCaseSensitive(copy, "config"), path, "spec.config", err);
    if (st != JB_OK) {
        cJSON_Delete(copy);
        return st;
    }
    *spec_out = copy;
    return JB_OK;
}

/* Fills the typed fields of s from its canonical document. */
static jb_status fill_fields(jb_sub *s, const char *path, jb_err *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(s->doc, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(s->doc, "spec");
    s->ns = strdup(cJSON_GetObjectItemCaseSensitive(meta, "namespace")->valuestring);
    s->name = strdup(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring);
    if (s->ns == NULL || s->name == NULL)
        return JB_ERR_NOMEM;
    size_t klen = strlen(s->ns) + strlen(s->name) + 2;
    if ((s->key = malloc(klen)) == NULL)
        return JB_ERR_NOMEM;
    snprintf(s->key, klen, "%s.%s", s->ns, s->name);
    jb_status st;
    if ((st = get_str(spec, "sink", path, "spec.sink", "", &s->sink, err)) != JB_OK ||
        (st = get_str(spec, "source", path, "spec.source", "", &s->source, err)) != JB_OK ||
        (st = get_str(spec, "typeMatching", path, "spec.typeMatching", NULL, &s->tm_raw, err)) !=
            JB_OK)
        return st;
    if (s->tm_raw == NULL || strcmp(s->tm_raw, "standard") == 0)
        s->tm = JB_SUB_MATCH_STANDARD;
    else if (strcmp(s->tm_raw, "exact") == 0)
        s->tm = JB_SUB_MATCH_EXACT;
    else
        s->tm = JB_SUB_MATCH_INVALID;
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(spec, "types");
    int n = cJSON_IsArray(types) ? cJSON_GetArraySize(types) : 0;
    if (n > 0 && (s->types = calloc((size_t)n, sizeof(char *))) == NULL)
        return JB_ERR_NOMEM;
    for (const cJSON *t = n > 0 ? types->child : NULL; t != NULL; t = t->next) {
        if ((s->types[s->ntypes++] = strdup(t->valuestring)) == NULL)
            return JB_ERR_NOMEM;
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(meta, "creationTimestamp");
    if (cJSON_IsString(ct) && !jb_k8s_time_parse(ct->valuestring, &s->created_ms))
        return jb_field_err(err, path, "metadata.creationTimestamp", "must be RFC 3339 UTC");
    if ((s->json = cJSON_PrintUnformatted(s->doc)) == NULL)
        return JB_ERR_NOMEM;
    return JB_OK;
}

jb_status sub_from_cjson(const cJSON *obj, const char *path, const char *default_ns, jb_sub **out,
                         jb_err *err)
{
    if (!cJSON_IsObject(obj))
        return jb_err_set(err, JB_ERR_INVALID, "%s: not a map", path);
    cJSON *meta = NULL, *spec = NULL;
    jb_sub *s = calloc(1, sizeof(*s));
    jb_status st = JB_ERR_NOMEM;
    if (s == NULL)
        goto done;
    if ((st = check_head(obj, path, default_ns, &meta, err)) != JB_OK ||
        (st = check_spec(obj, path, &spec, err)) != JB_OK)
        goto done;
    st = JB_ERR_NOMEM;
    if ((s->doc = cJSON_CreateObject()) == NULL ||
        !cJSON_AddStringToObject(s->doc, "apiVersion", API_VERSION) ||
        !cJSON_AddStringToObject(s->doc, "kind", "Subscription"))
        goto done;
    cJSON_AddItemToObject(s->doc, "metadata", meta);
    cJSON_AddItemToObject(s->doc, "spec", spec);
    meta = spec = NULL;
    if ((st = fill_fields(s, path, err)) != JB_OK)
        goto done;
    *out = s;
    s = NULL;
done:
    if (st == JB_ERR_NOMEM)
        jb_err_set(err, st, "%s: out of memory", path);
    cJSON_Delete(meta);
    cJSON_Delete(spec);
    jb_sub_destroy(s);
    return st;
}

/* ------------------------------------------------------------ parsing */

JB_VEC_DEFINE_READER(read_subs, jb_sub_vec, jb_sub, sub_from_cjson, jb_sub_vec_push,
                     sub_vec_truncate)

jb_status jb_sub_parse(const char *buf, size_t len, const char *origin, const char *default_ns,
                       jb_sub_vec *out, jb_err *err)
{
    return read_subs(false, buf, len, origin, default_ns, out, err);
}

jb_status jb_sub_parse_path(const char *path, const char *default_ns, jb_sub_vec *out, jb_err *err)
{
    return read_subs(true, NULL, 0, path, default_ns, out, err);
}

jb_status jb_sub_from_json(const char *json, size_t len, jb_sub **out, jb_err *err)
{
    return jb_manifest_from_json(json, len, read_subs_one, out, err);
}

/* ------------------------------------------------------------ objects */

void jb_sub_destroy(jb_sub *s)
{
    if (s == NULL)
        return;
    free(s->ns);
    free(s->name);
    free(s->key);
    free(s->sink);
    free(s->source);
    free(s->tm_raw);
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i]);
    free(s->types);
    cJSON_Delete(s->doc);
    free(s->json);
    free(s);
}

jb_sub *jb_sub_dup(const jb_sub *s)
{
    jb_sub *d = NULL;
    jb_err err;
    if (sub_from_cjson(s->doc, "copy", NULL, &d, &err) != JB_OK)
        return NULL;
    return d;
}

jb_sub *sub_with_meta(const jb_sub *s, int64_t created_ms, const char *ann_key,
                      const char *ann_value)
{
    cJSON *doc = cJSON_Duplicate(s->doc, 1);
    jb_sub *d = NULL;
    if (doc == NULL)
        return NULL;
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "creationTimestamp");
    if (created_ms > 0) {
        char ts[32];
        jb_k8s_time_format(created_ms, ts);
        if (!cJSON_AddStringToObject(meta, "creationTimestamp", ts))
            goto done;
    }
    if (ann_key != NULL) {
        cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        if (ann == NULL && ann_value != NULL)
            ann = cJSON_AddObjectToObject(meta, "annotations");
        if (ann != NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(ann, ann_key);
        if (ann_value != NULL && (ann == NULL || !cJSON_AddStringToObject(ann, ann_key, ann_value)))
            goto done;
        if (ann != NULL && ann->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
    }
    jb_err err;
    (void)sub_from_cjson(doc, "copy", NULL, &d, &err);
done:
    cJSON_Delete(doc);
    return d;
}

bool sub_equal_spec(const jb_sub *a, const jb_sub *b)
{
    jb_sub *x = sub_with_meta(a, 0, NULL, NULL);
    jb_sub *y = sub_with_meta(b, 0, NULL, NULL);
    bool eq = x != NULL && y != NULL && cJSON_Compare(x->doc, y->doc, 1);
    jb_sub_destroy(x);
    jb_sub_destroy(y);
    return eq;
}

const char *jb_sub_json(const jb_sub *s)
{
    return s->json;
}
const cJSON *jb_sub_doc(const jb_sub *s)
{
    return s->doc;
}
const char *jb_sub_namespace(const jb_sub *s)
{
    return s->ns;
}
const char *jb_sub_name(const jb_sub *s)
{
    return s->name;
}
const char *jb_sub_key(const jb_sub *s)
{
    return s->key;
}
const char *jb_sub_sink(const jb_sub *s)
{
    return s->sink;
}
const char *jb_sub_source(const jb_sub *s)
{
    return s->source;
}
jb_sub_matching jb_sub_type_matching(const jb_sub *s)
{
    return s->tm;
}
const char *jb_sub_type_matching_raw(const jb_sub *s)
{
    return s->tm_raw;
}
size_t jb_sub_ntypes(const jb_sub *s)
{
    return s->ntypes;
}
int64_t jb_sub_created_ms(const jb_sub *s)
{
    return s->created_ms;
}

const char *jb_sub_type(const jb_sub *s, size_t i)
{
    return i < s->ntypes ? s->types[i] : NULL;
}

static const char *map_value(const cJSON *parent, const char *map, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(parent, map);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *jb_sub_config_value(const jb_sub *s, const char *key)
{
    return map_value(cJSON_GetObjectItemCaseSensitive(s->doc, "spec"), "config", key);
}

const char *jb_sub_annotation(const jb_sub *s, const char *key)
{
    return map_value(cJSON_GetObjectItemCaseSensitive(s->doc, "metadata"), "annotations", key);
}

bool jb_sub_kubernetes_owned(const jb_sub *s)
{
    const char *v = jb_sub_annotation(s, JB_SUB_ANNOTATION_MANAGED_BY);
    return v != NULL && strcmp(v, "kubernetes") == 0;
}
