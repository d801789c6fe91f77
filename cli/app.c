/* `jetbridge app apply|get|describe|delete|token`: kubectl-like commands on the
 * application store. A token is printed once and never logged. */
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "cli/jb_cli.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "common/jb_kubectl.h"
#include "common/jb_manifest.h"

#define RESOURCE "application.applicationconnector.kyma-project.io"

typedef jb_kctl_opts opts;

static void usage(FILE *f, const char *verb)
{
    (void)verb; /* one text for every verb */
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
               "in " JB_APP_TOKEN_BUCKET ") at NATS_URL (empty: the nats-server `jetbridge run`\n"
               "started, else " JB_CFG_CLI_NATS_URL ").\n\n"
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

static jb_app_store *store_of(const jb_kctl_ctx *c)
{
    return c->store;
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

static int cmd_apply(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    if (o->nfiles == 0) {
        fprintf(stderr, "error: must specify -f FILE or DIR\n");
        return 2;
    }
    jb_app_vec v = {0};
    int rc = load_files(o, &v);
    /* Ownership is the controller's to claim: a manifest that claims it would lock
     * the application against every later apply. */
    for (size_t i = 0; rc == 0 && i < v.n; i++) {
        if (jb_app_kubernetes_owned(v.items[i])) {
            fprintf(stderr,
                    "error: " RESOURCE "/%s: " JB_APP_ANN_MANAGED_BY ": " JB_APP_MANAGED_KUBERNETES
                    " is set by the Kubernetes controller only; remove it (nothing was "
                    "applied)\n",
                    jb_app_name(v.items[i]));
            rc = 1;
        }
    }
    if (rc != 0 || (rc = jb_kctl_store(c)) != 0) {
        jb_app_vec_clear(&v);
        return rc;
    }
    for (size_t i = 0; i < v.n; i++) {
        jb_app_apply_result res;
        jb_err err = {{0}};
        if (jb_app_store_apply(store_of(c), v.items[i], false, &res, &err) != JB_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            rc = 1;
            continue;
        }
        printf(RESOURCE "/%s %s\n", jb_app_name(v.items[i]), jb_app_apply_result_str(res));
    }
    jb_app_vec_clear(&v);
    return rc;
}

static int delete_one(jb_kctl_ctx *c, const char *name)
{
    jb_app *a = NULL;
    jb_err err = {{0}};
    jb_status st = jb_app_store_get(store_of(c), name, &a, &err);
    if (st == JB_OK && jb_app_kubernetes_owned(a)) {
        jb_app_destroy(a);
        fprintf(stderr,
                "error: " RESOURCE " \"%s\" is managed by Kubernetes: delete it there "
                "(kubectl)\n",
                name);
        return 1;
    }
    jb_app_destroy(a);
    if (st == JB_OK)
        st = jb_app_store_delete(store_of(c), name, &err);
    if (st != JB_OK)
        return jb_kctl_report(st, &err);
    printf(RESOURCE " \"%s\" deleted\n", name);
    return 0;
}

static int cmd_delete(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    if (o->nfiles == 0 && o->name == NULL) {
        fprintf(stderr, "error: must specify NAME or -f FILE\n");
        return 2;
    }
    jb_app_vec v = {0};
    int rc = 0;
    if ((o->nfiles > 0 && (rc = load_files(o, &v)) != 0) || (rc = jb_kctl_store(c)) != 0) {
        jb_app_vec_clear(&v);
        return rc;
    }
    if (o->name != NULL)
        rc |= delete_one(c, o->name);
    for (size_t i = 0; i < v.n; i++)
        rc |= delete_one(c, jb_app_name(v.items[i]));
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
/* One of an application's string lists, through its accessors. */
typedef size_t (*list_count_fn)(const jb_app *a);
typedef const char *(*list_item_fn)(const jb_app *a, size_t i);

static void join(const jb_app *a, list_count_fn count, list_item_fn item, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count(a) && o + 1 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", item(a, i));
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
        jb_k8s_age(jb_app_created_ms(a), age, sizeof(age));
        format_rate(a, rate, sizeof(rate));
        join(a, jb_app_allowed_source_count, jb_app_allowed_source, src, sizeof(src));
        join(a, jb_app_allowed_type_count, jb_app_allowed_type, typ, sizeof(typ));
        printf("%-30s %-20s %-10zu %-30s %-30s %-20s %-10s %s\n", jb_app_name(a),
               or_dash(jb_app_type_label(a)), jb_app_client_id_count(a), src, typ, rate,
               jb_app_kubernetes_owned(a) ? "kubernetes" : "jetbridge", age);
    }
}

static cJSON *shown_obj(size_t i, void *ud)
{
    const jb_app_vec *v = ud;
    return cJSON_Duplicate(jb_app_doc(v->items[i]), 1);
}

static int cmd_get(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    int rc = jb_kctl_store(c);
    if (rc != 0)
        return rc;
    jb_app_vec v = {0};
    jb_err err = {{0}};
    jb_status st;
    if (o->name != NULL) {
        jb_app *a = NULL;
        st = jb_app_store_get(store_of(c), o->name, &a, &err);
        if (st == JB_OK && (st = jb_app_vec_push(&v, a)) != JB_OK)
            jb_err_set(&err, st, "out of memory");
    } else {
        st = jb_app_store_list(store_of(c), &v, &err);
    }
    if (st != JB_OK)
        rc = jb_kctl_report(st, &err);
    else if (o->output != NULL)
        rc = jb_kctl_print(v.n, o->name != NULL, o->output, shown_obj, &v);
    else if (v.n == 0)
        fprintf(stderr, "No resources found\n");
    else
        print_table(&v);
    jb_app_vec_clear(&v);
    return rc;
}

static void describe_list(const char *title, const jb_app *a, list_count_fn count,
                          list_item_fn item, const char *none)
{
    printf("%-18s", title);
    if (count(a) == 0)
        printf("%s\n", none);
    for (size_t i = 0; i < count(a); i++)
        printf("%s%s\n", i ? "                  " : "", item(a, i));
}

static int cmd_describe(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    int rc = jb_kctl_need_name(c);
    if (rc != 0 || (rc = jb_kctl_store(c)) != 0)
        return rc;
    jb_app *a = NULL;
    jb_err err = {{0}};
    size_t ntok = 0;
    jb_status st = jb_app_store_get(store_of(c), o->name, &a, &err);
    if (st == JB_OK)
        st = jb_app_token_count(store_of(c), o->name, &ntok, &err);
    if (st != JB_OK) {
        jb_app_destroy(a);
        return jb_kctl_report(st, &err);
    }
    char created[32] = "<unknown>", rate[64];
    if (jb_app_created_ms(a) > 0)
        jb_k8s_time_format(jb_app_created_ms(a), created);
    format_rate(a, rate, sizeof(rate));
    printf("Name:             %s\nAPI Version:      " JB_APP_API_VERSION "\n"
           "Kind:             Application\nCreated:          %s\nManaged By:       %s\n"
           "Application Type: %s\n",
           jb_app_name(a), created,
           jb_app_kubernetes_owned(a) ? "kubernetes" : "jetbridge app apply",
           jb_app_type_label(a)[0] ? jb_app_type_label(a) : "<none: the name is used>");
    describe_list("Client IDs:", a, jb_app_client_id_count, jb_app_client_id,
                  "<none: only the name>");
    describe_list("Allowed Sources:", a, jb_app_allowed_source_count, jb_app_allowed_source,
                  "<only the name>");
    describe_list("Allowed Types:", a, jb_app_allowed_type_count, jb_app_allowed_type, "<any>");
    printf("Rate Limit:       %s\nTokens:           %zu\n",
           jb_app_rate_limit(a, NULL, NULL) ? rate : "<none>", ntok);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(jb_app_doc(a), "metadata");
    static const char *const maps[] = {"labels", "annotations"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, maps[i]);
        printf("%c%s:\n", maps[i][0] - 'a' + 'A', maps[i] + 1);
        if (m != NULL)
            jb_yaml_print(m, 2, stdout);
    }
    printf("Spec:\n");
    jb_yaml_print(cJSON_GetObjectItemCaseSensitive(jb_app_doc(a), "spec"), 2, stdout);
    jb_app_destroy(a);
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

static int cmd_token(jb_kctl_ctx *c)
{
    int argc = c->argc;
    char **argv = c->argv;
    opts o;
    if (argc < 3 || jb_kctl_parse("app", false, argc, argv, 3, &o) != 0 || o.name == NULL ||
        o.nfiles > 0 || (o.output != NULL && strcmp(o.output, "json") != 0)) {
        fprintf(stderr, "error: usage: jetbridge app token create NAME [-o json] | "
                        "token revoke NAME\n");
        return 2;
    }
    bool create = strcmp(argv[2], "create") == 0;
    if (!create && strcmp(argv[2], "revoke") != 0) {
        fprintf(stderr, "jetbridge app token: unknown command \"%s\"\n", argv[2]);
        return 2;
    }
    int rc = jb_kctl_store(c);
    if (rc != 0)
        return rc;
    jb_err err = {{0}};
    jb_status st;
    if (create) {
        char *tok = NULL;
        st = jb_app_token_create(store_of(c), o.name, &tok, &err);
        if (st == JB_OK) {
            rc = print_token(o.name, tok, &o);
            OPENSSL_cleanse(tok, strlen(tok));
            free(tok);
        }
    } else {
        jb_app *a = NULL;
        size_t n = 0;
        /* An unknown name is an error, not "0 revoked": it is likely a typo. */
        if ((st = jb_app_store_get(store_of(c), o.name, &a, &err)) == JB_OK)
            st = jb_app_token_revoke(store_of(c), o.name, &n, &err);
        jb_app_destroy(a);
        if (st == JB_OK)
            printf(RESOURCE "/%s: %zu token%s revoked\n", o.name, n, n == 1 ? "" : "s");
    }
    if (st != JB_OK)
        rc = jb_kctl_report(st, &err);
    return rc;
}

static jb_status open_store(const void *cfg, jsCtx *js, void **store, jb_err *err)
{
    jb_app_store *st = NULL;
    jb_status rc = jb_app_store_open(cfg, js, &st, err);
    *store = st;
    return rc;
}

static void close_store(void *store)
{
    jb_app_store_close(store);
}

static const jb_kctl_verb app_verbs[] = {
    {"apply", cmd_apply, false},   {"get", cmd_get, false},    {"describe", cmd_describe, false},
    {"delete", cmd_delete, false}, {"token", cmd_token, true},
};

static const jb_kctl_resource app_resource = {
    .cmd = "app",
    .client = "jetbridge-app",
    .namespaced = false,
    .verbs = app_verbs,
    .nverbs = sizeof(app_verbs) / sizeof(app_verbs[0]),
    .usage = usage,
    .open = open_store,
    .close = close_store,
};

/* Logging is set up by main as for every client command: errors only unless
 * another level was asked for, text on a terminal. */
int jb_cli_app(const jb_cfg *cfg, int argc, char **argv)
{
    jb_nats_opts nats;
    jb_cfg_nats_opts(cfg, &nats);
    return jb_kctl_main(&app_resource, cfg, &nats, argc, argv);
}
