/* Kubernetes-style manifests (see jb_manifest.h): one reader of YAML and JSON
 * documents for every kind jetbridge stores, the metadata checks they share, and
 * the time and age forms kubectl shows. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <yaml.h>

#include "common/jb_common.h"
#include "common/jb_manifest.h"
#include "common/jb_text.h"

#define MAX_DEPTH 64
/* Aliases can make a small YAML document expand into a huge tree ("billion
 * laughs"); the conversion stops at this many nodes. */
#define MAX_NODES 200000

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

bool jb_dns_name(const char *s, size_t max, bool dots)
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

jb_status jb_field_err(jb_err *err, const char *path, const char *field, const char *what)
{
    return jb_err_set(err, JB_ERR_INVALID, "%s: %s: %s", path, field, what);
}

jb_status jb_manifest_head(const cJSON *obj, const char *path, const char *api_version,
                           const char *kind, const cJSON **meta, jb_err *err)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    if (!cJSON_IsString(av) || strcmp(av->valuestring, api_version) != 0)
        return jb_err_set(err, JB_ERR_INVALID, "%s: apiVersion: must be %s", path, api_version);
    if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0)
        return jb_err_set(err, JB_ERR_INVALID, "%s: kind: must be %s", path, kind);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(m))
        return jb_field_err(err, path, "metadata", "missing or not a map");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (name == NULL || cJSON_IsNull(name))
        return jb_field_err(err, path, "metadata.name", "missing");
    if (!cJSON_IsString(name) || !jb_dns_name(name->valuestring, 253, true))
        return jb_field_err(err, path, "metadata.name",
                            "must be a lower-case DNS-1123 subdomain (a-z, 0-9, '-', '.'; at "
                            "most 253 characters)");
    *meta = m;
    return JB_OK;
}

bool jb_json_copy_keys(const cJSON *from, cJSON *to, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, keys[i]);
        if (v == NULL || cJSON_IsNull(v))
            continue;
        cJSON *d = cJSON_Duplicate(v, 1);
        if (d == NULL)
            return false;
        cJSON_AddItemToObject(to, keys[i], d);
    }
    return true;
}

/* ------------------------------------------------------------ parsing */

/* Where the documents go: each kind (Subscriptions, Applications) passes its own
 * callback. */
typedef struct doc_sink {
    jb_manifest_doc_fn fn;
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

jb_status jb_manifest_each(const char *buf, size_t len, const char *origin, jb_manifest_doc_fn fn,
                           void *ud, jb_err *err)
{
    if (origin == NULL)
        origin = "-";
    if (len > JB_MANIFEST_MAX_BYTES)
        return jb_err_set(err, JB_ERR_TOO_LARGE, "%s: larger than %d bytes", origin,
                          JB_MANIFEST_MAX_BYTES);
    size_t i = 0;
    while (i < len && isspace((unsigned char)buf[i]))
        i++;
    doc_sink k = {fn, ud};
    if (i < len && (buf[i] == '{' || buf[i] == '['))
        return parse_json(buf, len, origin, &k, err);
    return parse_yaml(buf, len, origin, &k, err);
}

jb_status jb_manifest_from_json(const char *json, size_t len, jb_manifest_doc_fn fn, void *ud,
                                jb_err *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "store: invalid JSON");
    jb_status st = fn(root, "store", ud, err);
    cJSON_Delete(root);
    return st;
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
            if (cap > JB_MANIFEST_MAX_BYTES) {
                free(b);
                return jb_err_set(err, JB_ERR_TOO_LARGE, "%s: larger than %d bytes", path,
                                  JB_MANIFEST_MAX_BYTES);
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
        st = jb_manifest_each(buf, len, path, k->fn, k->ud, err);
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

jb_status jb_manifest_each_path(const char *path, jb_manifest_doc_fn fn, void *ud, jb_err *err)
{
    doc_sink k = {fn, ud};
    struct stat sb;
    if (strcmp(path, "-") != 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return parse_dir(path, &k, err);
    return parse_file(path, &k, err);
}

/* ------------------------------------------------------------ time */

void jb_k8s_time_format(int64_t ms, char out[32])
{
    jb_rfc3339_format(ms / 1000, 0, out);
}

/* Any RFC 3339 time (Kubernetes writes whole seconds in UTC), to Unix milliseconds. */
bool jb_k8s_time_parse(const char *s, int64_t *out_ms)
{
    int64_t secs;
    int32_t ns;
    if (!jb_rfc3339_parse(s, strlen(s), &secs, &ns))
        return false;
    *out_ms = secs * 1000 + ns / 1000000;
    return true;
}

/* kubectl's short ages: 45s, 12m, 5h, 3d. */
void jb_k8s_age(int64_t created_ms, char *out, size_t cap)
{
    if (created_ms <= 0) {
        snprintf(out, cap, "<unknown>");
        return;
    }
    int64_t s = (jb_now_wall_ms() - created_ms) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, cap, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, cap, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, cap, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, cap, "%lldd", (long long)(s / 86400));
}
