/* API access: a kubeconfig's current context, or the pod's service account. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "proto/jb_ce.h"
#include "kube/kube_internal.h"

void jb_kube_config_destroy(jb_kube_config *c)
{
    if (c == NULL)
        return;
    free(c->server);
    free(c->ca_file);
    free(c->ca_data);
    if (c->token != NULL) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    free(c->token_file);
    free(c->cert_file);
    free(c->cert_data);
    free(c->key_file);
    if (c->key_data != NULL) {
        explicit_bzero(c->key_data, c->key_len);
        free(c->key_data);
    }
    free(c);
}

const char *jb_kube_config_server(const jb_kube_config *c)
{
    return c->server;
}

/* ------------------------------------------------------ YAML navigation */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* A scalar's text, or NULL (absent, or not a scalar, or holding a NUL). */
static const char *scalar(yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL)
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* The entry of list `section` whose "name" is name; returns its `inner` map. */
static yaml_node_t *named(yaml_document_t *d, yaml_node_t *root, const char *section,
                          const char *name, const char *inner)
{
    yaml_node_t *list = map_get(d, root, section);
    if (list == NULL || list->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(d, *i);
        const char *n = scalar(map_get(d, e, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return map_get(d, e, inner);
    }
    return NULL;
}

/* ------------------------------------------------------------ values */

/* Standard base64 (whitespace ignored, padding optional), as kubectl reads it. */
static bool b64decode(const char *s, unsigned char **out, size_t *outlen)
{
    return jb_base64_decode_ex(s, strlen(s), JB_B64_LENIENT, out, outlen) == JB_OK;
}

/* dir + "/" + name unless name is absolute. */
static char *resolve(const char *dir, const char *name)
{
    if (name[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

typedef struct field_ctx {
    yaml_document_t *d;
    yaml_node_t *map;
    const char *where; /* "clusters[x].cluster" */
    const char *dir;
    jb_err *err;
} field_ctx;

/* A file-name field: false only on out-of-memory. */
static bool path_field(field_ctx *f, const char *key, char **out)
{
    const char *v = scalar(map_get(f->d, f->map, key));
    if (v == NULL || v[0] == '\0')
        return true;
    *out = resolve(f->dir, v);
    return *out != NULL;
}

/* A base64 field: the error names the field, never its value. */
static jb_status data_field(field_ctx *f, const char *key, unsigned char **out, size_t *len)
{
    const char *v = scalar(map_get(f->d, f->map, key));
    if (v == NULL || v[0] == '\0')
        return JB_OK;
    if (!b64decode(v, out, len))
        return jb_err_set(f->err, JB_ERR_CONFIG, "kubeconfig: %s.%s: not valid base64", f->where,
                          key);
    return JB_OK;
}

static jb_status read_cluster(field_ctx *f, jb_kube_config *c)
{
    const char *server = scalar(map_get(f->d, f->map, "server"));
    size_t scheme = server == NULL                        ? 0
                    : strncmp(server, "https://", 8) == 0 ? 8
                    : strncmp(server, "http://", 7) == 0  ? 7
                                                          : 0;
    /* A host must follow the scheme ("https://" alone names no server). */
    if (scheme == 0 || server[scheme] == '\0' || server[scheme] == '/')
        return jb_err_set(f->err, JB_ERR_CONFIG,
                          "kubeconfig: %s.server: missing or not an http(s) URL", f->where);
    c->server = strdup(server);
    if (c->server == NULL)
        return JB_ERR_NOMEM;
    size_t n = strlen(c->server);
    while (n > 0 && c->server[n - 1] == '/')
        c->server[--n] = '\0';
    const char *insecure = scalar(map_get(f->d, f->map, "insecure-skip-tls-verify"));
    c->insecure = insecure != NULL && strcmp(insecure, "true") == 0;
    if (!path_field(f, "certificate-authority", &c->ca_file))
        return JB_ERR_NOMEM;
    return data_field(f, "certificate-authority-data", &c->ca_data, &c->ca_len);
}

static jb_status read_user(field_ctx *f, jb_kube_config *c)
{
    if (map_get(f->d, f->map, "exec") != NULL || map_get(f->d, f->map, "auth-provider") != NULL)
        return jb_err_set(f->err, JB_ERR_CONFIG,
                          "kubeconfig: %s: exec and auth-provider are not supported (use a token, "
                          "tokenFile or a client certificate)",
                          f->where);
    const char *tok = scalar(map_get(f->d, f->map, "token"));
    if (tok != NULL && tok[0] != '\0' && (c->token = strdup(tok)) == NULL)
        return JB_ERR_NOMEM;
    if (!path_field(f, "tokenFile", &c->token_file) ||
        !path_field(f, "client-certificate", &c->cert_file) ||
        !path_field(f, "client-key", &c->key_file))
        return JB_ERR_NOMEM;
    jb_status st = data_field(f, "client-certificate-data", &c->cert_data, &c->cert_len);
    if (st == JB_OK)
        st = data_field(f, "client-key-data", &c->key_data, &c->key_len);
    return st;
}

static jb_status parse_doc(yaml_document_t *d, const char *dir, jb_kube_config *c, jb_err *err)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        return jb_err_set(err, JB_ERR_CONFIG, "kubeconfig: not a mapping");
    const char *cur = scalar(map_get(d, root, "current-context"));
    if (cur == NULL || cur[0] == '\0')
        return jb_err_set(err, JB_ERR_CONFIG, "kubeconfig: current-context: missing");
    yaml_node_t *ctx = named(d, root, "contexts", cur, "context");
    if (ctx == NULL)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "kubeconfig: contexts: no context named by "
                          "current-context");
    const char *cl = scalar(map_get(d, ctx, "cluster"));
    const char *us = scalar(map_get(d, ctx, "user"));
    yaml_node_t *cluster = cl ? named(d, root, "clusters", cl, "cluster") : NULL;
    if (cluster == NULL)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "kubeconfig: clusters: the current context's "
                          "cluster is missing");
    field_ctx f = {d, cluster, "clusters[].cluster", dir, err};
    jb_status st = read_cluster(&f, c);
    if (st != JB_OK)
        return st;
    yaml_node_t *user = us ? named(d, root, "users", us, "user") : NULL;
    if (user == NULL)
        return JB_OK; /* anonymous */
    f.map = user;
    f.where = "users[].user";
    return read_user(&f, c);
}

jb_status jb_kube_config_parse(const char *buf, size_t len, const char *dir, jb_kube_config **out,
                               jb_err *err)
{
    if (len > JB_KUBE_MAX_CONFIG_BYTES)
        return jb_err_set(err, JB_ERR_TOO_LARGE, "kubeconfig: larger than %d bytes",
                          JB_KUBE_MAX_CONFIG_BYTES);
    jb_kube_config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return JB_ERR_NOMEM;
    yaml_parser_t p;
    yaml_document_t d;
    bool have_doc = false;
    jb_status st = JB_ERR_NOMEM;
    if (!yaml_parser_initialize(&p))
        goto out_noparser;
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &d)) {
        st = jb_err_set(err, JB_ERR_CONFIG, "kubeconfig: line %zu: %s", p.problem_mark.line + 1,
                        p.problem ? p.problem : "not YAML");
        goto out;
    }
    have_doc = true;
    st = parse_doc(&d, dir, c, err);
out:
    if (have_doc)
        yaml_document_delete(&d);
    yaml_parser_delete(&p);
out_noparser:
    if (st != JB_OK) {
        jb_kube_config_destroy(c);
        return st;
    }
    *out = c;
    return JB_OK;
}

static jb_status read_file(const char *path, char **buf, size_t *len, jb_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return jb_err_set(err, JB_ERR_CONFIG, "KUBECONFIG: cannot open \"%s\"", path);
    char *b = malloc(JB_KUBE_MAX_CONFIG_BYTES + 1);
    size_t n = b ? fread(b, 1, JB_KUBE_MAX_CONFIG_BYTES + 1, f) : 0;
    fclose(f);
    if (b == NULL)
        return JB_ERR_NOMEM;
    if (n > JB_KUBE_MAX_CONFIG_BYTES) {
        free(b);
        return jb_err_set(err, JB_ERR_CONFIG, "KUBECONFIG: \"%s\" is larger than %d bytes", path,
                          JB_KUBE_MAX_CONFIG_BYTES);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return JB_OK;
}

static jb_status in_cluster(jb_kube_config **out, jb_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
        return jb_err_set(err, JB_ERR_CONFIG,
                          "KUBECONFIG: not set, and not in a cluster (KUBERNETES_SERVICE_HOST/"
                          "KUBERNETES_SERVICE_PORT are unset)");
    jb_kube_config *c = calloc(1, sizeof(*c));
    size_t n = strlen(host) + strlen(port) + 16;
    char *server = malloc(n);
    if (c == NULL || server == NULL) {
        free(c);
        free(server);
        return JB_ERR_NOMEM;
    }
    /* An IPv6 service address needs brackets in a URL. */
    snprintf(server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    c->server = server;
    /* KUBE_SERVICE_ACCOUNT_DIR moves the mount (tests, unusual pod layouts); the
     * files in it are the same. */
    const char *dir = getenv("KUBE_SERVICE_ACCOUNT_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = KUBE_SA_DIR;
    c->ca_file = resolve(dir, "ca.crt");
    c->token_file = resolve(dir, "token");
    if (c->ca_file == NULL || c->token_file == NULL) {
        jb_kube_config_destroy(c);
        return JB_ERR_NOMEM;
    }
    *out = c;
    return JB_OK;
}

jb_status jb_kube_config_load(const jb_cfg *cfg, jb_kube_config **out, jb_err *err)
{
    if (cfg->kubeconfig[0] == '\0')
        return in_cluster(out, err);
    char *path = strdup(cfg->kubeconfig);
    if (path == NULL)
        return JB_ERR_NOMEM;
    char *colon = strchr(path, ':');
    if (colon != NULL)
        *colon = '\0'; /* the first file of a list holds the current context here */
    char *buf = NULL;
    size_t len = 0;
    jb_status st = read_file(path, &buf, &len, err);
    if (st == JB_OK) {
        char *slash = strrchr(path, '/');
        if (slash != NULL)
            *slash = '\0';
        st = jb_kube_config_parse(buf, len, slash ? path : NULL, out, err);
        free(buf);
    }
    free(path);
    return st;
}
