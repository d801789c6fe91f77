/* `jetbridge sub apply|get|describe|delete`: kubectl-like commands on the store. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define RESOURCE  "subscription.eventing.kyma-project.io"
#define MAX_FILES 64

typedef struct opts {
    const char *files[MAX_FILES];
    int nfiles;
    const char *ns; /* NULL: "default" */
    bool all;
    const char *output; /* NULL, "json", "yaml" */
    const char *name;
} opts;

/* One usage line per verb, so `jetbridge sub VERB --help` shows only that verb. */
static const struct verb_help {
    const char *verb, *usage, *example;
} verbs[] = {
    {"apply", "jetbridge sub apply -f FILE|DIR [-f ...] [-n NAMESPACE]",
     "jetbridge sub apply -f examples/subscriptions/"},
    {"get", "jetbridge sub get [NAME] [-n NAMESPACE | -A] [-o json|yaml]",
     "jetbridge sub get order-processor -n default -o yaml"},
    {"describe", "jetbridge sub describe NAME [-n NAMESPACE]",
     "jetbridge sub describe order-processor -n default"},
    {"delete", "jetbridge sub delete NAME [-n NAMESPACE] | -f FILE|DIR",
     "jetbridge sub delete -f examples/subscriptions/order-processor.yaml"},
};

static void usage(FILE *f, const char *verb)
{
    fprintf(f, "Usage:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (verb == NULL || strcmp(verb, verbs[i].verb) == 0)
            fprintf(f, "  %s\n", verbs[i].usage);
    fprintf(f, "\nManifests are Kyma Subscriptions (eventing.kyma-project.io/v1alpha2), YAML or\n"
               "JSON, several per file. The store is the NATS KV bucket " JB_SUB_BUCKET " at\n"
               "NATS_URL (empty: the nats-server `jetbridge run` started, else " JB_CFG_CLI_NATS_URL
               ").\nThe namespace defaults to \"default\".\n\nExamples:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (verb == NULL || strcmp(verb, verbs[i].verb) == 0)
            fprintf(f, "  %s\n", verbs[i].example);
    fprintf(f, "\nExit codes: 0 ok; 1 runtime error (NATS unreachable, not found, a file that\n"
               "cannot be read or does not parse: nothing of it is applied; a manifest that\n"
               "fails validation: stored, shown not ready); 2 usage error.\n");
}

/* The one wording for a bad argument. */
static int bad_arg(const char *what, const char *arg)
{
    fprintf(stderr, "jetbridge sub: %s \"%s\"; see `jetbridge sub --help`\n", what, arg);
    return 2;
}

/* Returns 0, or 2 after printing what is wrong. */
static int parse_opts(int argc, char **argv, int first, opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if ((strcmp(a, "-f") == 0 || strcmp(a, "--filename") == 0) && has_val) {
            if (o->nfiles == MAX_FILES)
                return bad_arg("too many -f arguments (at most 64), at", argv[i + 1]);
            o->files[o->nfiles++] = argv[++i];
        } else if ((strcmp(a, "-n") == 0 || strcmp(a, "--namespace") == 0) && has_val) {
            o->ns = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_val) {
            o->output = argv[++i];
            if (strcmp(o->output, "json") != 0 && strcmp(o->output, "yaml") != 0)
                return bad_arg("-o wants json or yaml, not", o->output);
        } else if (strcmp(a, "-A") == 0 || strcmp(a, "--all-namespaces") == 0) {
            o->all = true;
        } else if (a[0] != '-' && o->name == NULL) {
            o->name = a;
        } else {
            return bad_arg("unknown argument", a);
        }
    }
    return 0;
}

static const char *ns_of(const opts *o)
{
    return o->ns ? o->ns : "default";
}

typedef struct conn {
    natsConnection *nc;
    jsCtx *js;
    jb_sub_store *st;
} conn;

static int connect_store(const jb_cfg *cfg, conn *c)
{
    jb_err err = {{0}};
    memset(c, 0, sizeof(*c));
    if (jb_nats_connect(cfg, NULL, "jetbridge-sub", false, &c->nc, &c->js, &err) != JB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (jb_sub_store_open(cfg, c->js, &c->st, &err) != JB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        jb_nats_close(c->nc, c->js);
        return 1;
    }
    return 0;
}

static void disconnect(conn *c)
{
    jb_sub_store_close(c->st);
    jb_nats_close(c->nc, c->js);
}

/* ------------------------------------------------------------------ apply */

static int load_files(const opts *o, jb_sub_vec *v)
{
    if (o->nfiles == 0) {
        fprintf(stderr, "error: must specify -f FILE or DIR\n");
        return 2;
    }
    for (int i = 0; i < o->nfiles; i++) {
        jb_err err = {{0}};
        if (jb_sub_parse_path(o->files[i], o->ns, v, &err) != JB_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
    }
    if (v->n == 0) {
        fprintf(stderr, "error: no objects passed to apply\n");
        return 1;
    }
    return 0;
}

/* A subscription that `run --subscriptions DIR` applied carries the file it came
 * from; a CLI apply over it keeps that annotation, so removing the file from the
 * directory still deletes the subscription. Returns s itself, a new copy, or NULL
 * when out of memory. */
static jb_sub *keep_dir_annotation(conn *c, jb_sub *s)
{
    jb_sub *old = NULL;
    jb_err err = {{0}};
    if (jb_sub_annotation(s, JB_SUB_ANNOTATION_DIR) != NULL ||
        jb_sub_store_get(c->st, s->ns, s->name, &old, &err) != JB_OK)
        return s;
    const char *from = jb_sub_annotation(old, JB_SUB_ANNOTATION_DIR);
    jb_sub *out = from != NULL ? sub_with_meta(s, 0, JB_SUB_ANNOTATION_DIR, from) : s;
    jb_sub_destroy(old);
    return out;
}

/* A subscription mirrored from Kubernetes belongs to the controller: a CLI write
 * would be overwritten (or resurrected) by it, so it is refused with the way out. */
static bool kubernetes_owned(conn *c, const char *ns, const char *name, const char *verb)
{
    jb_sub *old = NULL;
    jb_err err;
    if (jb_sub_store_get(c->st, ns, name, &old, &err) != JB_OK)
        return false;
    bool owned = jb_sub_kubernetes_owned(old);
    jb_sub_destroy(old);
    if (owned)
        fprintf(stderr,
                "error: %s/%s is owned by Kubernetes (annotation " JB_SUB_ANNOTATION_MANAGED_BY
                "): %s it with kubectl instead\n",
                ns, name, verb);
    return owned;
}

static int cmd_apply(const jb_cfg *cfg, const opts *o)
{
    jb_sub_vec v = {0};
    int rc = load_files(o, &v);
    conn c;
    if (rc != 0 || (rc = connect_store(cfg, &c)) != 0) {
        jb_sub_vec_clear(&v);
        return rc;
    }
    for (size_t i = 0; i < v.n; i++) {
        jb_sub *s = keep_dir_annotation(&c, v.items[i]);
        jb_sub_apply_result res;
        jb_err err = {{0}};
        if (s == NULL) {
            fprintf(stderr, "error: out of memory\n");
            rc = 1;
            continue;
        }
        if (s != v.items[i]) {
            jb_sub_destroy(v.items[i]);
            v.items[i] = s;
        }
        if (kubernetes_owned(&c, s->ns, s->name, "apply")) {
            rc = 1;
            continue;
        }
        if (jb_sub_store_put(c.st, s, &res, &err) != JB_OK) {
            fprintf(stderr, "error: %s/%s: %s\n", s->ns, s->name, err.msg);
            rc = 1;
            continue;
        }
        printf(RESOURCE "/%s %s\n", s->name, jb_sub_apply_result_str(res));
        /* Stored either way (as in Kyma, where the resource exists and shows not
         * ready); say now why it will not become ready, and fail the command so a
         * script notices. */
        jb_sub_errors ve = {0};
        if (jb_sub_validate(s, cfg, &ve) == JB_OK && ve.n > 0) {
            fprintf(stderr, "error: " RESOURCE "/%s is invalid (stored, not ready): %s\n", s->name,
                    ve.message);
            rc = 1;
        }
        jb_sub_errors_free(&ve);
    }
    fflush(stdout);
    disconnect(&c);
    jb_sub_vec_clear(&v);
    return rc;
}

/* ------------------------------------------------------------------ delete */

static int delete_one(conn *c, const char *ns, const char *name)
{
    jb_err err = {{0}};
    if (kubernetes_owned(c, ns, name, "delete"))
        return 1;
    jb_status st = jb_sub_store_delete(c->st, ns, name, &err);
    if (st == JB_ERR_NOT_FOUND) {
        fprintf(stderr, "Error from server (NotFound): %s\n", err.msg);
        return 1;
    }
    if (st != JB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    printf(RESOURCE " \"%s\" deleted\n", name);
    return 0;
}

static int cmd_delete(const jb_cfg *cfg, const opts *o)
{
    jb_sub_vec v = {0};
    int rc = 0;
    if (o->nfiles > 0 && (rc = load_files(o, &v)) != 0)
        return rc;
    if (o->nfiles == 0 && o->name == NULL) {
        fprintf(stderr, "error: must specify NAME or -f FILE\n");
        return 2;
    }
    conn c;
    if ((rc = connect_store(cfg, &c)) != 0) {
        jb_sub_vec_clear(&v);
        return rc;
    }
    if (o->name != NULL)
        rc |= delete_one(&c, ns_of(o), o->name);
    for (size_t i = 0; i < v.n; i++)
        rc |= delete_one(&c, v.items[i]->ns, v.items[i]->name);
    fflush(stdout);
    disconnect(&c);
    jb_sub_vec_clear(&v);
    return rc;
}

/* ------------------------------------------------------------------ get */

/* kubectl's short ages: 45s, 12m, 5h, 3d. */
static void format_age(int64_t created_ms, char *out, size_t cap)
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

void jb_sub_format_age(int64_t created_ms, char *out, size_t cap)
{
    format_age(created_ms, out, cap);
}

static cJSON *status_of(conn *c, const jb_sub *s)
{
    char *json = NULL;
    jb_err err;
    if (jb_sub_store_get_status(c->st, s->ns, s->name, &json, &err) != JB_OK)
        return NULL;
    cJSON *j = cJSON_Parse(json);
    free(json);
    return j;
}

static void print_row(conn *c, const jb_sub *s)
{
    cJSON *st = status_of(c, s);
    const cJSON *ready = cJSON_GetObjectItemCaseSensitive(st, "ready");
    char age[32];
    format_age(s->created_ms, age, sizeof(age));
    printf("%-20s %-30s %-6s ", s->ns, s->name,
           cJSON_IsBool(ready) ? (cJSON_IsTrue(ready) ? "true" : "false") : "");
    size_t w = 0;
    for (size_t i = 0; i < s->ntypes; i++) {
        char *t = jb_escape_text(s->types[i], strlen(s->types[i]));
        w += (size_t)printf("%s%s", i ? "," : "", t ? t : "");
        free(t);
    }
    char *shown = jb_redact_url(s->sink);
    char *sink = shown ? jb_escape_text(shown, strlen(shown)) : NULL;
    printf("%*s %-40s %s\n", w < 40 ? (int)(40 - w) : 0, "", sink ? sink : "", age);
    free(sink);
    free(shown);
    cJSON_Delete(st);
}

/* Replaces obj[key], a URL string, by its form without userinfo. */
static void redact_member(cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v) || !jb_url_has_userinfo(v->valuestring))
        return;
    char *shown = jb_redact_url(v->valuestring);
    cJSON *n = shown ? cJSON_CreateString(shown) : NULL;
    if (n == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, n))
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key); /* never show the secret */
    free(shown);
}

/* A copy of the manifest with no password of a URL: what get and describe show. */
static cJSON *shown_doc(const jb_sub *s)
{
    cJSON *o = cJSON_Duplicate(s->doc, 1);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    redact_member(spec, "sink");
    redact_member(cJSON_GetObjectItemCaseSensitive(spec, "config"), "deadLetterSink");
    redact_member(cJSON_GetObjectItemCaseSensitive(spec, "config"), "tokenUrl");
    return o;
}

/* The manifest with its status, as kubectl shows an object. */
static cJSON *object_json(conn *c, const jb_sub *s)
{
    cJSON *o = shown_doc(s);
    cJSON *st = status_of(c, s);
    if (o != NULL && st != NULL)
        cJSON_AddItemToObject(o, "status", st);
    else
        cJSON_Delete(st);
    return o;
}

static int print_objects(conn *c, const jb_sub_vec *v, bool single, const char *output)
{
    cJSON *root = NULL;
    if (single) {
        root = object_json(c, v->items[0]);
    } else {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "apiVersion", "v1");
        cJSON *items = cJSON_AddArrayToObject(root, "items");
        for (size_t i = 0; items && i < v->n; i++)
            cJSON_AddItemToArray(items, object_json(c, v->items[i]));
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
        sub_print_yaml(root, 0, stdout);
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
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    jb_status st;
    if (o->name != NULL) {
        jb_sub *s = NULL;
        st = jb_sub_store_get(c.st, ns_of(o), o->name, &s, &err);
        if (st == JB_OK)
            st = sub_vec_push(&v, s);
    } else {
        st = jb_sub_store_list(c.st, o->all ? NULL : ns_of(o), &v, &err);
    }
    if (st != JB_OK) {
        fprintf(stderr,
                st == JB_ERR_NOT_FOUND ? "Error from server (NotFound): %s\n" : "error: %s\n",
                err.msg);
        rc = 1;
    } else if (o->output != NULL) {
        rc = print_objects(&c, &v, o->name != NULL, o->output);
    } else if (v.n == 0) {
        fprintf(stderr, o->all ? "No resources found\n" : "No resources found in %s namespace.\n",
                ns_of(o));
    } else {
        printf("%-20s %-30s %-6s %-40s %-40s %s\n", "NAMESPACE", "NAME", "READY", "TYPES", "SINK",
               "AGE");
        for (size_t i = 0; i < v.n; i++)
            print_row(&c, v.items[i]);
    }
    fflush(stdout);
    jb_sub_vec_clear(&v);
    disconnect(&c);
    return rc;
}

/* ------------------------------------------------------------------ describe */

static void describe_conditions(const cJSON *st)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(st, "conditions");
    printf("  Conditions:\n    %-26s %-7s %-22s %-44s %s\n", "Type", "Status", "Last Transition",
           "Reason", "Message");
    const cJSON *cnd;
    cJSON_ArrayForEach(cnd, conds)
    {
        const char *f[5] = {"type", "status", "lastTransitionTime", "reason", "message"};
        char *v[5] = {NULL};
        bool ok = true;
        for (int i = 0; ok && i < 5; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(cnd, f[i]);
            const char *raw = cJSON_IsString(x) ? x->valuestring : "";
            ok = (v[i] = jb_escape_text(raw, strlen(raw))) != NULL;
        }
        if (ok)
            printf("    %-26s %-7s %-22s %-44s %s\n", v[0], v[1], v[2], v[3], v[4]);
        for (int i = 0; i < 5; i++)
            free(v[i]);
    }
}

static void describe_consumers(conn *c, const jb_cfg *cfg, const jb_sub *s)
{
    jb_sub_consumer_list l = {0};
    jb_err err;
    printf("Consumers:\n");
    if (jb_sub_consumers(s, cfg, &l, &err) != JB_OK) {
        printf("  <none: the subscription is not valid>\n");
        return;
    }
    printf("  %-34s %-40s %-50s %-9s %s\n", "Name", "Type", "Subject", "Pending", "Ack Pending");
    for (size_t i = 0; i < l.n; i++) {
        jsConsumerInfo *ci = NULL;
        jsErrCode ec = 0;
        natsStatus ns =
            js_GetConsumerInfo(&ci, c->js, sub_cfg_stream(cfg), l.items[i].consumer, NULL, &ec);
        char pend[32] = "-", ack[32] = "-";
        if (ns == NATS_OK) {
            snprintf(pend, sizeof(pend), "%llu", (unsigned long long)ci->NumPending);
            snprintf(ack, sizeof(ack), "%lld", (long long)ci->NumAckPending);
        } else {
            snprintf(pend, sizeof(pend), "<missing>");
        }
        char *type = jb_escape_text(l.items[i].type, strlen(l.items[i].type));
        char *subj = jb_escape_text(l.items[i].subject, strlen(l.items[i].subject));
        printf("  %-34s %-40s %-50s %-9s %s\n", l.items[i].consumer, type ? type : "",
               subj ? subj : "", pend, ack);
        free(type);
        free(subj);
        jsConsumerInfo_Destroy(ci);
    }
    jb_sub_consumer_list_free(&l);
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
    jb_sub *s = NULL;
    jb_err err = {{0}};
    jb_status st = jb_sub_store_get(c.st, ns_of(o), o->name, &s, &err);
    if (st != JB_OK) {
        fprintf(stderr,
                st == JB_ERR_NOT_FOUND ? "Error from server (NotFound): %s\n" : "error: %s\n",
                err.msg);
        disconnect(&c);
        return 1;
    }
    char created[32] = "<unknown>";
    if (s->created_ms > 0)
        sub_format_time(s->created_ms, created);
    printf("Name:         %s\nNamespace:    %s\nAPI Version:  eventing.kyma-project.io/v1alpha2\n"
           "Kind:         Subscription\nCreated:      %s\nSpec:\n",
           s->name, s->ns, created);
    cJSON *doc = shown_doc(s);
    sub_print_yaml(cJSON_GetObjectItemCaseSensitive(doc, "spec"), 2, stdout);
    cJSON_Delete(doc);
    cJSON *status = status_of(&c, s);
    printf("Status:\n");
    if (status == NULL) {
        printf("  <none yet: no dispatcher has reconciled it>\n");
    } else {
        const cJSON *ready = cJSON_GetObjectItemCaseSensitive(status, "ready");
        printf("  Ready:  %s\n", cJSON_IsTrue(ready) ? "true" : "false");
        describe_conditions(status);
    }
    describe_consumers(&c, cfg, s);
    fflush(stdout);
    cJSON_Delete(status);
    jb_sub_destroy(s);
    disconnect(&c);
    return 0;
}

int jb_sub_cmd(const jb_cfg *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    bool known = false;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        known = known || strcmp(verb, verbs[i].verb) == 0;
    if (!known)
        return bad_arg("unknown command", verb);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, verb);
            return 0;
        }
    }
    opts o;
    if (parse_opts(argc, argv, 2, &o) != 0)
        return 2;
    if (strcmp(verb, "apply") == 0)
        return cmd_apply(cfg, &o);
    if (strcmp(verb, "get") == 0)
        return cmd_get(cfg, &o);
    if (strcmp(verb, "describe") == 0)
        return cmd_describe(cfg, &o);
    return cmd_delete(cfg, &o);
}
