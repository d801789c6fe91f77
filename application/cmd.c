/* `jetbridge app apply|get|describe|delete|token`: kubectl-like commands on the
 * application store. A token is printed once and never logged. */
#include <nats/nats.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/app_internal.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/jb_sub.h"

#define RESOURCE    "application.applicationconnector.kyma-project.io"
#define DEFAULT_URL "nats://127.0.0.1:4222"
#define MAX_FILES   64

typedef struct opts {
    const char *files[MAX_FILES];
    int nfiles;
    const char *output; /* NULL, "json", "yaml" */
    const char *name;
} opts;

static void usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  jetbridge app apply -f FILE|DIR [-f ...]\n"
               "  jetbridge app get [NAME] [-o json|yaml]\n"
               "  jetbridge app describe NAME\n"
               "  jetbridge app delete NAME | -f FILE|DIR\n"
               "  jetbridge app token create NAME [-o json]\n"
               "  jetbridge app token revoke NAME\n\n"
               "Manifests are Kyma Applications (" JB_APP_API_VERSION ", kind Application,\n"
               "cluster-scoped), YAML or JSON, several per file. jetbridge's settings are the\n"
               "annotations " JB_APP_ANN_SOURCES ", " JB_APP_ANN_TYPES " and\n" JB_APP_ANN_RATE
               "; the label " JB_APP_LABEL_TYPE " replaces the name in event types.\n"
               "The store is the NATS KV bucket " JB_APP_BUCKET " (tokens: only their SHA-256,\n"
               "in " JB_APP_TOKEN_BUCKET ") at NATS_URL (default " DEFAULT_URL ").\n\n"
               "`token create` prints a new bearer token once, alone on the last line of stdout\n"
               "(with -o json: the field \"token\"); it cannot be shown again. `token revoke`\n"
               "revokes every token of the application; `delete` does too. Applications\n"
               "mirrored from Kubernetes (" JB_APP_ANN_MANAGED_BY ": kubernetes) are changed\n"
               "there: apply and delete refuse them.\n\n"
               "Examples:\n"
               "  jetbridge app apply -f examples/applications/\n"
               "  jetbridge app get\n"
               "  jetbridge app get myapp -o yaml\n"
               "  jetbridge app token create myapp\n\n"
               "Exit codes: 0 ok; 1 runtime error (NATS unreachable, not found, Kubernetes-owned,\n"
               "a file that cannot be read or does not parse: nothing of it is applied); 2 usage\n"
               "error.\n");
}

/* Returns 0, or 2 after printing what is wrong. */
static int parse_opts(int argc, char **argv, int first, opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if ((strcmp(a, "-f") == 0 || strcmp(a, "--filename") == 0) && has_val) {
            if (o->nfiles == MAX_FILES) {
                fprintf(stderr, "jetbridge app: at most %d -f arguments\n", MAX_FILES);
                return 2;
            }
            o->files[o->nfiles++] = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_val) {
            o->output = argv[++i];
            if (strcmp(o->output, "json") != 0 && strcmp(o->output, "yaml") != 0) {
                fprintf(stderr, "jetbridge app: -o must be json or yaml\n");
                return 2;
            }
        } else if (a[0] != '-' && o->name == NULL) {
            o->name = a;
        } else {
            fprintf(stderr, "jetbridge app: unexpected argument \"%s\"\n", a);
            return 2;
        }
    }
    return 0;
}

typedef struct conn {
    natsConnection *nc;
    jsCtx *js;
    jb_app_store *st;
} conn;

static int connect_store(const jb_cfg *cfg, conn *c)
{
    jb_cfg local = *cfg; /* shallow copy: only the URL may differ */
    if (local.nats_url == NULL || local.nats_url[0] == '\0')
        local.nats_url = (char *)DEFAULT_URL;
    jb_err err = {{0}};
    memset(c, 0, sizeof(*c));
    if (jb_nats_connect(&local, NULL, "jetbridge-app", false, &c->nc, &c->js, &err) != JB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (jb_app_store_open(cfg, c->js, &c->st, &err) != JB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        jb_nats_close(c->nc, c->js);
        return 1;
    }
    return 0;
}

static void disconnect(conn *c)
{
    jb_app_store_close(c->st);
    jb_nats_close(c->nc, c->js);
}

static int report(jb_status st, const jb_err *err)
{
    fprintf(stderr, st == JB_ERR_NOT_FOUND ? "Error from server (NotFound): %s\n" : "error: %s\n",
            err->msg);
    return 1;
}

/* ------------------------------------------------------------- apply, delete */

static int load_files(const opts *o, jb_app_vec *v)
{
    for (int i = 0; i < o->nfiles; i++) {
        jb_err err = {{0}};
        if (jb_app_parse_path(o->files[i], v, &err) != JB_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
    }
    if (v->n == 0) {
        fprintf(stderr, "error: no objects passed\n");
        return 1;
    }
    return 0;
}

static int cmd_apply(const jb_cfg *cfg, const opts *o)
{
    if (o->nfiles == 0) {
        fprintf(stderr, "error: must specify -f FILE or DIR\n");
        return 2;
    }
    jb_app_vec v = {0};
    int rc = load_files(o, &v);
    /* Ownership is the controller's to claim: a manifest that claims it would lock
     * the application against every later apply. */
    for (size_t i = 0; rc == 0 && i < v.n; i++) {
        if (v.items[i]->k8s_owned) {
            fprintf(stderr,
                    "error: " RESOURCE "/%s: " JB_APP_ANN_MANAGED_BY ": " JB_APP_MANAGED_KUBERNETES
                    " is set by the Kubernetes controller only; remove it (nothing was "
                    "applied)\n",
                    v.items[i]->name);
            rc = 1;
        }
    }
    conn c;
    if (rc != 0 || (rc = connect_store(cfg, &c)) != 0) {
        jb_app_vec_clear(&v);
        return rc;
    }
    for (size_t i = 0; i < v.n; i++) {
        jb_app_apply_result res;
        jb_err err = {{0}};
        if (jb_app_store_apply(c.st, v.items[i], false, &res, &err) != JB_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            rc = 1;
            continue;
        }
        printf(RESOURCE "/%s %s\n", v.items[i]->name, jb_app_apply_result_str(res));
    }
    fflush(stdout);
    disconnect(&c);
    jb_app_vec_clear(&v);
    return rc;
}

static int delete_one(conn *c, const char *name)
{
    jb_app *a = NULL;
    jb_err err = {{0}};
    jb_status st = jb_app_store_get(c->st, name, &a, &err);
    if (st == JB_OK && a->k8s_owned) {
        jb_app_destroy(a);
        fprintf(stderr,
                "error: " RESOURCE " \"%s\" is managed by Kubernetes: delete it there "
                "(kubectl)\n",
                name);
        return 1;
    }
    jb_app_destroy(a);
    if (st == JB_OK)
        st = jb_app_store_delete(c->st, name, &err);
    if (st != JB_OK)
        return report(st, &err);
    printf(RESOURCE " \"%s\" deleted\n", name);
    return 0;
}

static int cmd_delete(const jb_cfg *cfg, const opts *o)
{
    if (o->nfiles == 0 && o->name == NULL) {
        fprintf(stderr, "error: must specify NAME or -f FILE\n");
        return 2;
    }
    jb_app_vec v = {0};
    int rc = 0;
    conn c;
    if ((o->nfiles > 0 && (rc = load_files(o, &v)) != 0) || (rc = connect_store(cfg, &c)) != 0) {
        jb_app_vec_clear(&v);
        return rc;
    }
    if (o->name != NULL)
        rc |= delete_one(&c, o->name);
    for (size_t i = 0; i < v.n; i++)
        rc |= delete_one(&c, v.items[i]->name);
    fflush(stdout);
    disconnect(&c);
    jb_app_vec_clear(&v);
    return rc;
}

/* ------------------------------------------------------------- get, describe */

/* "200/s,burst=400", or "-" when unlimited. */
static void format_rate(const jb_app *a, char *out, size_t cap)
{
    double r;
    uint32_t b;
    if (jb_app_rate_limit(a, &r, &b))
        snprintf(out, cap, "%g/s,burst=%u", r, b);
    else
        snprintf(out, cap, "-");
}

static const char *or_dash(const char *s)
{
    return s && s[0] ? s : "-";
}

/* The comma list of a string list, or "-". */
static void join(const app_strs *l, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->n && o + 1 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", l->items[i]);
    if (o == 0)
        snprintf(out, cap, "-");
}

static void print_table(const jb_app_vec *v)
{
    printf("%-30s %-20s %-10s %-30s %-30s %-20s %-10s %s\n", "NAME", "APPLICATION-TYPE",
           "CLIENT-IDS", "ALLOWED-SOURCES", "ALLOWED-TYPES", "RATE-LIMIT", "MANAGED-BY", "AGE");
    for (size_t i = 0; i < v->n; i++) {
        const jb_app *a = v->items[i];
        char age[32], rate[64], src[256], typ[256];
        jb_sub_format_age(a->created_ms, age, sizeof(age));
        format_rate(a, rate, sizeof(rate));
        join(&a->sources, src, sizeof(src));
        join(&a->types, typ, sizeof(typ));
        printf("%-30s %-20s %-10zu %-30s %-30s %-20s %-10s %s\n", a->name, or_dash(a->label),
               a->client_ids.n, src, typ, rate, a->k8s_owned ? "kubernetes" : "jetbridge", age);
    }
}

static int print_objects(const jb_app_vec *v, bool single, const char *output)
{
    cJSON *root = NULL;
    if (single) {
        root = cJSON_Duplicate(v->items[0]->doc, 1);
    } else if ((root = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(root, "apiVersion", "v1");
        cJSON *items = cJSON_AddArrayToObject(root, "items");
        for (size_t i = 0; items && i < v->n; i++)
            cJSON_AddItemToArray(items, cJSON_Duplicate(v->items[i]->doc, 1));
        cJSON_AddStringToObject(root, "kind", "List");
    }
    if (root == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    if (strcmp(output, "json") == 0) {
        char *out = cJSON_Print(root);
        if (out != NULL)
            printf("%s\n", out);
        free(out);
    } else {
        jb_sub_print_yaml(root, 0, stdout);
    }
    cJSON_Delete(root);
    return 0;
}

static int cmd_get(const jb_cfg *cfg, const opts *o)
{
    conn c;
    int rc = connect_store(cfg, &c);
    if (rc != 0)
        return rc;
    jb_app_vec v = {0};
    jb_err err = {{0}};
    jb_status st;
    if (o->name != NULL) {
        jb_app *a = NULL;
        st = jb_app_store_get(c.st, o->name, &a, &err);
        if (st == JB_OK && (st = jb_app_vec_push(&v, a)) != JB_OK)
            jb_err_set(&err, st, "out of memory");
    } else {
        st = jb_app_store_list(c.st, &v, &err);
    }
    if (st != JB_OK)
        rc = report(st, &err);
    else if (o->output != NULL)
        rc = print_objects(&v, o->name != NULL, o->output);
    else if (v.n == 0)
        fprintf(stderr, "No resources found\n");
    else
        print_table(&v);
    fflush(stdout);
    jb_app_vec_clear(&v);
    disconnect(&c);
    return rc;
}

static void describe_list(const char *title, const app_strs *l, const char *none)
{
    printf("%-18s", title);
    if (l->n == 0)
        printf("%s\n", none);
    for (size_t i = 0; i < l->n; i++)
        printf("%s%s\n", i ? "                  " : "", l->items[i]);
}

static int cmd_describe(const jb_cfg *cfg, const opts *o)
{
    if (o->name == NULL) {
        fprintf(stderr, "error: must specify NAME\n");
        return 2;
    }
    conn c;
    int rc = connect_store(cfg, &c);
    if (rc != 0)
        return rc;
    jb_app *a = NULL;
    jb_err err = {{0}};
    size_t ntok = 0;
    jb_status st = jb_app_store_get(c.st, o->name, &a, &err);
    if (st == JB_OK)
        st = jb_app_token_count(c.st, o->name, &ntok, &err);
    if (st != JB_OK) {
        jb_app_destroy(a);
        disconnect(&c);
        return report(st, &err);
    }
    char created[32] = "<unknown>", rate[64];
    if (a->created_ms > 0)
        jb_sub_format_time(a->created_ms, created);
    format_rate(a, rate, sizeof(rate));
    printf("Name:             %s\nAPI Version:      " JB_APP_API_VERSION "\n"
           "Kind:             Application\nCreated:          %s\nManaged By:       %s\n"
           "Application Type: %s\n",
           a->name, created, a->k8s_owned ? "kubernetes" : "jetbridge app apply",
           a->label[0] ? a->label : "<none: the name is used>");
    describe_list("Client IDs:", &a->client_ids, "<none: only the name>");
    describe_list("Allowed Sources:", &a->sources, "<only the name>");
    describe_list("Allowed Types:", &a->types, "<any>");
    printf("Rate Limit:       %s\nTokens:           %zu\n", a->has_rate ? rate : "<none>", ntok);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(a->doc, "metadata");
    static const char *const maps[] = {"labels", "annotations"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, maps[i]);
        printf("%c%s:\n", maps[i][0] - 'a' + 'A', maps[i] + 1);
        if (m != NULL)
            jb_sub_print_yaml(m, 2, stdout);
    }
    printf("Spec:\n");
    jb_sub_print_yaml(cJSON_GetObjectItemCaseSensitive(a->doc, "spec"), 2, stdout);
    fflush(stdout);
    jb_app_destroy(a);
    disconnect(&c);
    return 0;
}

/* ------------------------------------------------------------------ tokens */

static int print_token(const char *name, char *tok, const opts *o)
{
    if (o->output != NULL && strcmp(o->output, "json") == 0) {
        cJSON *j = cJSON_CreateObject();
        char *s = NULL;
        if (j != NULL && cJSON_AddStringToObject(j, "application", name) &&
            cJSON_AddStringToObject(j, "token", tok))
            s = cJSON_Print(j);
        if (s != NULL)
            printf("%s\n", s);
        if (s != NULL)
            OPENSSL_cleanse(s, strlen(s));
        free(s);
        cJSON_Delete(j);
        return s ? 0 : 1;
    }
    /* The token is alone on the last line, so that scripts can take it with tail -n1. */
    printf(RESOURCE "/%s token created; it is shown only now, store it safely:\n%s\n", name, tok);
    return 0;
}

static int cmd_token(const jb_cfg *cfg, int argc, char **argv)
{
    opts o;
    if (argc < 3 || parse_opts(argc, argv, 3, &o) != 0 || o.name == NULL || o.nfiles > 0 ||
        (o.output != NULL && strcmp(o.output, "json") != 0)) {
        fprintf(stderr, "error: usage: jetbridge app token create NAME [-o json] | "
                        "token revoke NAME\n");
        return 2;
    }
    bool create = strcmp(argv[2], "create") == 0;
    if (!create && strcmp(argv[2], "revoke") != 0) {
        fprintf(stderr, "jetbridge app token: unknown command \"%s\"\n", argv[2]);
        return 2;
    }
    conn c;
    int rc = connect_store(cfg, &c);
    if (rc != 0)
        return rc;
    jb_err err = {{0}};
    jb_status st;
    if (create) {
        char *tok = NULL;
        st = jb_app_token_create(c.st, o.name, &tok, &err);
        if (st == JB_OK) {
            rc = print_token(o.name, tok, &o);
            OPENSSL_cleanse(tok, strlen(tok));
            free(tok);
        }
    } else {
        jb_app *a = NULL;
        size_t n = 0;
        /* An unknown name is an error, not "0 revoked": it is likely a typo. */
        if ((st = jb_app_store_get(c.st, o.name, &a, &err)) == JB_OK)
            st = jb_app_token_revoke(c.st, o.name, &n, &err);
        jb_app_destroy(a);
        if (st == JB_OK)
            printf(RESOURCE "/%s: %zu token%s revoked\n", o.name, n, n == 1 ? "" : "s");
    }
    if (st != JB_OK)
        rc = report(st, &err);
    fflush(stdout);
    disconnect(&c);
    return rc;
}

int jb_app_cmd(const jb_cfg *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout); /* `jetbridge app apply --help` */
            return 0;
        }
    }
    /* Logging is set up by main as for every client command: errors only unless
     * another level was asked for, text on a terminal. */
    const char *verb = argv[1];
    if (strcmp(verb, "token") == 0)
        return cmd_token(cfg, argc, argv);
    opts o;
    if (parse_opts(argc, argv, 2, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (strcmp(verb, "apply") == 0)
        return cmd_apply(cfg, &o);
    if (strcmp(verb, "get") == 0)
        return cmd_get(cfg, &o);
    if (strcmp(verb, "describe") == 0)
        return cmd_describe(cfg, &o);
    if (strcmp(verb, "delete") == 0)
        return cmd_delete(cfg, &o);
    fprintf(stderr, "jetbridge app: unknown command \"%s\"\n", verb);
    usage(stderr);
    return 2;
}
