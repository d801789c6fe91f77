/* Subscription manifests: YAML (libyaml) or JSON (cJSON) to jb_sub, accessors. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "common/jb_text.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define API_VERSION "eventing.kyma-project.io/v1alpha2"
#define MAX_DEPTH   64
/* Aliases can make a small YAML document expand into a huge tree ("billion
 * laughs"); the conversion stops at this many nodes. */
#define MAX_NODES 200000

/* ------------------------------------------------------------- the vector */

jb_status sub_vec_push(jb_sub_vec *v, jb_sub *s)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 8;
        jb_sub **items = realloc(v->items, ncap * sizeof(*items));
        if (items == NULL) {
            jb_sub_destroy(s);
            return JB_ERR_NOMEM;
        }
        v->items = items;
        v->cap = ncap;
    }
    v->items[v->n++] = s;
    return JB_OK;
}

void jb_sub_vec_clear(jb_sub_vec *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++)
        jb_sub_destroy(v->items[i]);
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

/* -------------------------------------------------------- YAML to cJSON */

typedef struct yconv {
    yaml_document_t *doc;
    size_t nodes;
} yconv;

static bool yaml_plain_null(const yaml_node_t *n)
{
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && v[0] == '~') ||
           (len == 4 &&
            (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 || memcmp(v, "NULL", 4) == 0));
}

/* Scalars become strings (Kubernetes' string fields take `10` as "10"), except
 * the plain null forms. */
static cJSON *yaml_to_cjson(yconv *c, yaml_node_t *n, int depth)
{
    if (n == NULL || depth > MAX_DEPTH || ++c->nodes > MAX_NODES)
        return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        if (yaml_plain_null(n))
            return cJSON_CreateNull();
        char *s = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
        if (s == NULL)
            return NULL;
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    case YAML_SEQUENCE_NODE: {
        cJSON *arr = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             arr != NULL && it < n->data.sequence.items.top; it++) {
            cJSON *item = yaml_to_cjson(c, yaml_document_get_node(c->doc, *it), depth + 1);
            if (item == NULL) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, item);
        }
        return arr;
    }
    case YAML_MAPPING_NODE: {
        cJSON *obj = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             obj != NULL && p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            cJSON *v = yaml_to_cjson(c, yaml_document_get_node(c->doc, p->value), depth + 1);
            char *key = NULL;
            if (k != NULL && k->type == YAML_SCALAR_NODE)
                key = strndup((const char *)k->data.scalar.value, k->data.scalar.length);
            if (v == NULL || key == NULL) {
                free(key);
                cJSON_Delete(v);
                cJSON_Delete(obj);
                return NULL;
            }
            /* Last key wins, as in Go's YAML decoders used by kubectl. */
            cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
            cJSON_AddItemToObject(obj, key, v);
            free(key);
        }
        return obj;
    }
    case YAML_NO_NODE:
        break;
    }
    return NULL;
}

/* ------------------------------------------------------ field checks */

bool sub_dns_name(const char *s, size_t max, bool dots)
{
    size_t len = strlen(s);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-' && !(dots && ch == '.'))
            return false;
        if ((i == 0 || i == len - 1) && !alnum)
            return false;
        if (dots && ch == '.' && i > 0 && s[i - 1] == '.')
            return false;
    }
    return true;
}

static jb_status field_err(jb_err *err, const char *path, const char *field, const char *what)
{
    return jb_err_set(err, JB_ERR_INVALID, "%s: %s: %s", path, field, what);
}

/* Optional string: absent or null gives def. */
static jb_status get_str(const cJSON *obj, const char *key, const char *path, const char *field,
                         const char *def, char **out, jb_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s = def;
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v))
            return field_err(err, path, field, "must be a string");
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
        return field_err(err, path, field, "must be a map of strings");
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
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    if (!cJSON_IsString(av) || strcmp(av->valuestring, API_VERSION) != 0)
        return field_err(err, path, "apiVersion", "must be " API_VERSION);
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "Subscription") != 0)
        return field_err(err, path, "kind", "must be Subscription");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(m))
        return field_err(err, path, "metadata", "missing or not a map");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (name == NULL || cJSON_IsNull(name))
        return field_err(err, path, "metadata.name", "missing");
    if (!cJSON_IsString(name) || !sub_dns_name(name->valuestring, 253, true))
        return field_err(err, path, "metadata.name",
                         "must be a lower-case DNS-1123 subdomain (a-z, 0-9, '-', '.'; at "
                         "most 253 characters)");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(m, "namespace");
    const char *nsv = default_ns ? default_ns : "default";
    if (ns != NULL && !cJSON_IsNull(ns)) {
        if (!cJSON_IsString(ns))
            return field_err(err, path, "metadata.namespace", "must be a string");
        nsv = ns->valuestring;
    }
    if (!sub_dns_name(nsv, 63, false))
        return field_err(err, path, "metadata.namespace",
                         "must be a lower-case DNS-1123 label (a-z, 0-9, '-'; at most 63 "
                         "characters)");
    cJSON *meta = cJSON_CreateObject();
    if (meta == NULL || !cJSON_AddStringToObject(meta, "name", name->valuestring) ||
        !cJSON_AddStringToObject(meta, "namespace", nsv))
        goto nomem;
    static const char *const keep[] = {"labels", "annotations", "creationTimestamp"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keep[i]);
        if (v == NULL || cJSON_IsNull(v))
            continue;
        cJSON *d = cJSON_Duplicate(v, 1);
        if (d == NULL)
            goto nomem;
        cJSON_AddItemToObject(meta, keep[i], d);
        if (i < 2) {
            char field[32];
            snprintf(field, sizeof(field), "metadata.%s", keep[i]);
            jb_status st = norm_string_map(d, path, field, err);
            if (st != JB_OK) {
                cJSON_Delete(meta);
                return st;
            }
        }
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
        return field_err(err, path, "spec", "missing or not a map");
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
            return field_err(err, path, "spec.types", "must be a list of strings");
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
    if (cJSON_IsString(ct) && !sub_parse_time(ct->valuestring, &s->created_ms))
        return field_err(err, path, "metadata.creationTimestamp", "must be RFC 3339 UTC");
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

/* Where the documents go: jb_sub_parse collects Subscriptions, other modules
 * (application/) pass their own callback through jb_sub_manifest_each. */
typedef struct doc_sink {
    jb_sub_doc_fn fn;
    void *ud;
} doc_sink;

static jb_status add_doc(const cJSON *obj, const char *origin, int idx, const doc_sink *k,
                         jb_err *err)
{
    char path[320];
    snprintf(path, sizeof(path), "%s: document %d", origin, idx);
    return k->fn(obj, path, k->ud, err);
}

/* A JSON document or a kind: List holds manifests in items. */
static jb_status add_json_value(const cJSON *root, const char *origin, int *idx, const doc_sink *k,
                                jb_err *err)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *items = NULL;
    if (cJSON_IsArray(root))
        items = root;
    else if (cJSON_IsObject(root) && cJSON_IsString(kind) && strcmp(kind->valuestring, "List") == 0)
        items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (items == NULL)
        return add_doc(root, origin, ++*idx, k, err);
    if (!cJSON_IsArray(items))
        return jb_err_set(err, JB_ERR_INVALID, "%s: document %d: items: must be a list", origin,
                          *idx + 1);
    for (const cJSON *it = items->child; it != NULL; it = it->next) {
        jb_status st = add_doc(it, origin, ++*idx, k, err);
        if (st != JB_OK)
            return st;
    }
    return JB_OK;
}

static jb_status parse_json(const char *buf, size_t len, const char *origin, const doc_sink *k,
                            jb_err *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL) {
        size_t off = end ? (size_t)(end - buf) : 0;
        return jb_err_set(err, JB_ERR_INVALID, "%s: document 1: invalid JSON near byte %zu", origin,
                          off);
    }
    int idx = 0;
    jb_status st = add_json_value(root, origin, &idx, k, err);
    cJSON_Delete(root);
    return st;
}

static jb_status parse_yaml(const char *buf, size_t len, const char *origin, const doc_sink *k,
                            jb_err *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return jb_err_set(err, JB_ERR_NOMEM, "%s: out of memory", origin);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    jb_status st = JB_OK;
    int idx = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&p, &doc)) {
            st = jb_err_set(err, JB_ERR_INVALID, "%s: document %d: line %zu column %zu: %s", origin,
                            idx + 1, p.problem_mark.line + 1, p.problem_mark.column + 1,
                            p.problem ? p.problem : "invalid YAML");
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) { /* end of the stream */
            yaml_document_delete(&doc);
            break;
        }
        idx++;
        bool empty = root->type == YAML_SCALAR_NODE && yaml_plain_null(root);
        yconv c = {&doc, 0};
        cJSON *j = empty ? NULL : yaml_to_cjson(&c, root, 0);
        yaml_document_delete(&doc);
        if (empty)
            continue;
        if (j == NULL) {
            st = jb_err_set(err, JB_ERR_INVALID,
                            "%s: document %d: too deeply nested or too large (aliases?)", origin,
                            idx);
            break;
        }
        idx--; /* add_json_value numbers the documents itself */
        st = add_json_value(j, origin, &idx, k, err);
        cJSON_Delete(j);
        if (st != JB_OK)
            break;
    }
    yaml_parser_delete(&p);
    return st;
}

jb_status jb_sub_manifest_each(const char *buf, size_t len, const char *origin, jb_sub_doc_fn fn,
                               void *ud, jb_err *err)
{
    if (origin == NULL)
        origin = "-";
    if (len > JB_SUB_MAX_MANIFEST_BYTES)
        return jb_err_set(err, JB_ERR_TOO_LARGE, "%s: larger than %d bytes", origin,
                          JB_SUB_MAX_MANIFEST_BYTES);
    size_t i = 0;
    while (i < len && isspace((unsigned char)buf[i]))
        i++;
    doc_sink k = {fn, ud};
    if (i < len && (buf[i] == '{' || buf[i] == '['))
        return parse_json(buf, len, origin, &k, err);
    return parse_yaml(buf, len, origin, &k, err);
}

/* jb_sub_parse's callback: documents become Subscriptions in a temporary vector. */
typedef struct sub_collect {
    const char *default_ns;
    jb_sub_vec *tmp;
} sub_collect;

static jb_status collect_sub(const cJSON *doc, const char *path, void *ud, jb_err *err)
{
    sub_collect *c = ud;
    jb_sub *s = NULL;
    jb_status st = sub_from_cjson(doc, path, c->default_ns, &s, err);
    if (st != JB_OK)
        return st;
    if (sub_vec_push(c->tmp, s) != JB_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "%s: out of memory", path);
    return JB_OK;
}

/* Moves tmp's items to out when st is JB_OK (out is unchanged on failure); frees tmp. */
static jb_status commit_subs(jb_status st, jb_sub_vec *tmp, jb_sub_vec *out, const char *origin,
                             jb_err *err)
{
    for (size_t k = 0; st == JB_OK && k < tmp->n; k++) {
        st = sub_vec_push(out, tmp->items[k]);
        tmp->items[k] = NULL;
        if (st != JB_OK) {
            /* Roll back what this call added: out is unchanged on failure. */
            for (size_t r = 0; r < k; r++)
                jb_sub_destroy(out->items[--out->n]);
            jb_err_set(err, st, "%s: out of memory", origin);
        }
    }
    jb_sub_vec_clear(tmp);
    return st;
}

jb_status jb_sub_parse(const char *buf, size_t len, const char *origin, const char *default_ns,
                       jb_sub_vec *out, jb_err *err)
{
    jb_sub_vec tmp = {0};
    sub_collect c = {default_ns, &tmp};
    jb_status st = jb_sub_manifest_each(buf, len, origin, collect_sub, &c, err);
    return commit_subs(st, &tmp, out, origin ? origin : "-", err);
}

/* ------------------------------------------------------------ files */

static jb_status read_all(FILE *f, const char *path, char **buf, size_t *len, jb_err *err)
{
    size_t cap = 8192, n = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "%s: out of memory", path);
    for (;;) {
        if (n == cap) {
            if (cap > JB_SUB_MAX_MANIFEST_BYTES) {
                free(b);
                return jb_err_set(err, JB_ERR_TOO_LARGE, "%s: larger than %d bytes", path,
                                  JB_SUB_MAX_MANIFEST_BYTES);
            }
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return jb_err_set(err, JB_ERR_NOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        free(b);
        return jb_err_set(err, JB_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    }
    *buf = b;
    *len = n;
    return JB_OK;
}

static jb_status parse_file(const char *path, const doc_sink *k, jb_err *err)
{
    bool in = strcmp(path, "-") == 0;
    FILE *f = in ? stdin : fopen(path, "rb");
    if (f == NULL)
        return jb_err_set(err, errno == ENOENT ? JB_ERR_NOT_FOUND : JB_ERR_IO, "%s: %s", path,
                          strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    jb_status st = read_all(f, path, &buf, &len, err);
    if (!in)
        fclose(f);
    if (st == JB_OK)
        st = jb_sub_manifest_each(buf, len, path, k->fn, k->ud, err);
    free(buf);
    return st;
}

static bool manifest_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.')
        return false;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
           (l > 4 && strcmp(n + l - 4, ".yml") == 0) || (l > 5 && strcmp(n + l - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static jb_status parse_dir(const char *dir, const doc_sink *k, jb_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, NULL);
    if (n < 0)
        return jb_err_set(err, JB_ERR_IO, "%s: %s", dir, strerror(errno));
    char **names = calloc((size_t)n + 1, sizeof(char *));
    size_t nn = 0;
    jb_status st = names ? JB_OK : JB_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        if (st == JB_OK && manifest_name(list[i]->d_name)) {
            size_t l = strlen(dir) + strlen(list[i]->d_name) + 2;
            if ((names[nn] = malloc(l)) == NULL)
                st = JB_ERR_NOMEM;
            else
                snprintf(names[nn++], l, "%s/%s", dir, list[i]->d_name);
        }
        free(list[i]);
    }
    free(list);
    if (st == JB_OK)
        qsort(names, nn, sizeof(char *), cmp_str);
    else
        jb_err_set(err, st, "%s: out of memory", dir);
    for (size_t i = 0; st == JB_OK && i < nn; i++)
        st = parse_file(names[i], k, err);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    return st;
}

jb_status jb_sub_manifest_each_path(const char *path, jb_sub_doc_fn fn, void *ud, jb_err *err)
{
    doc_sink k = {fn, ud};
    struct stat sb;
    if (strcmp(path, "-") != 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return parse_dir(path, &k, err);
    return parse_file(path, &k, err);
}

jb_status jb_sub_parse_path(const char *path, const char *default_ns, jb_sub_vec *out, jb_err *err)
{
    jb_sub_vec tmp = {0};
    sub_collect c = {default_ns, &tmp};
    jb_status st = jb_sub_manifest_each_path(path, collect_sub, &c, err);
    return commit_subs(st, &tmp, out, path, err);
}

jb_status jb_sub_from_json(const char *json, size_t len, jb_sub **out, jb_err *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "store: invalid JSON");
    jb_status st = sub_from_cjson(root, "store", NULL, out, err);
    cJSON_Delete(root);
    return st;
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
        sub_format_time(created_ms, ts);
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

/* ------------------------------------------------------------ time */

/* Kubernetes' creationTimestamp form, 2006-01-02T15:04:05Z (whole seconds, UTC). */
void sub_format_time(int64_t ms, char out[32])
{
    jb_rfc3339_format(ms / 1000, 0, out);
}

/* Any RFC 3339 time (Kubernetes writes the form above), to Unix milliseconds. */
bool sub_parse_time(const char *s, int64_t *out_ms)
{
    int64_t secs;
    int32_t ns;
    if (!jb_rfc3339_parse(s, strlen(s), &secs, &ns))
        return false;
    *out_ms = secs * 1000 + ns / 1000000;
    return true;
}

void jb_sub_format_time(int64_t ms, char out[32])
{
    sub_format_time(ms, out);
}

bool jb_sub_parse_time(const char *s, int64_t *out_ms)
{
    return sub_parse_time(s, out_ms);
}

/* ------------------------------------------------------- configuration */

const char *sub_cfg_prefix(const jb_cfg *cfg)
{
    return cfg && cfg->stream_subject_prefix && cfg->stream_subject_prefix[0]
               ? cfg->stream_subject_prefix
               : "kyma";
}

const char *sub_cfg_type_prefix(const jb_cfg *cfg)
{
    return cfg && cfg->event_type_prefix && cfg->event_type_prefix[0] ? cfg->event_type_prefix
                                                                      : "sap.kyma.custom";
}

const char *sub_cfg_stream(const jb_cfg *cfg)
{
    return cfg && cfg->stream_name && cfg->stream_name[0] ? cfg->stream_name : "sap";
}

bool jb_sub_kubernetes_owned(const jb_sub *s)
{
    const char *v = jb_sub_annotation(s, JB_SUB_ANNOTATION_MANAGED_BY);
    return v != NULL && strcmp(v, "kubernetes") == 0;
}
