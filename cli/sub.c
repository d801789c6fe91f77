/* `jetbridge sub apply|get|describe|delete`: kubectl-like commands on the store. */
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_kubectl.h"
#include "common/jb_manifest.h"
#include "config/jb_cfg.h"
#include "subscription/jb_sub.h"
#include "subscription/jb_sub_manifest.h"
#include "subscription/jb_sub_store.h"
#include "cli/jb_cli.h"

#define RESOURCE "subscription.eventing.kyma-project.io"

typedef jb_kctl_opts opts;

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

static const char *ns_of(const opts *o)
{
    return o->ns ? o->ns : "default";
}

static jb_sub_store *store_of(const jb_kctl_ctx *c)
{
    return c->store;
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

/* A subscription mirrored from Kubernetes belongs to the controller: a CLI write
 * would be overwritten (or resurrected) by it, so it is refused with the way out. */
static void refuse_owned(const char *ns, const char *name, const char *verb)
{
    fprintf(stderr,
            "error: %s/%s is owned by Kubernetes (annotation " JB_SUB_ANNOTATION_MANAGED_BY
            "): %s it with kubectl instead\n",
            ns, name, verb);
}

static bool kubernetes_owned(jb_kctl_ctx *c, const char *ns, const char *name, const char *verb)
{
    jb_sub *old = NULL;
    jb_err err;
    if (jb_sub_store_get(store_of(c), ns, name, &old, &err) != JB_OK)
        return false;
    bool owned = jb_sub_kubernetes_owned(old);
    jb_sub_destroy(old);
    if (owned)
        refuse_owned(ns, name, verb);
    return owned;
}

static int cmd_apply(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    jb_sub_vec v = {0};
    int rc = load_files(o, &v);
    if (rc != 0 || (rc = jb_kctl_store(c)) != 0) {
        jb_sub_vec_clear(&v);
        return rc;
    }
    for (size_t i = 0; i < v.n; i++) {
        const jb_sub *s = v.items[i];
        jb_sub_apply_result res = JB_SUB_UNCHANGED;
        jb_err err = {{0}};
        if (jb_sub_store_apply(store_of(c), s, true, &res, &err) != JB_OK) {
            fprintf(stderr, "error: %s/%s: %s\n", jb_sub_namespace(s), jb_sub_name(s), err.msg);
            rc = 1;
            continue;
        }
        if (res == JB_SUB_REFUSED) {
            refuse_owned(jb_sub_namespace(s), jb_sub_name(s), "apply");
            rc = 1;
            continue;
        }
        printf(RESOURCE "/%s %s\n", jb_sub_name(s), jb_sub_apply_result_str(res));
        /* Stored either way (as in Kyma, where the resource exists and shows not
         * ready); say now why it will not become ready, and fail the command so a
         * script notices. */
        jb_sub_errors ve = {0};
        if (jb_sub_validate(s, c->cfg, &ve) == JB_OK && ve.n > 0) {
            fprintf(stderr, "error: " RESOURCE "/%s is invalid (stored, not ready): %s\n",
                    jb_sub_name(s), ve.message);
            rc = 1;
        }
        jb_sub_errors_free(&ve);
    }
    jb_sub_vec_clear(&v);
    return rc;
}

/* ------------------------------------------------------------------ delete */

static int delete_one(jb_kctl_ctx *c, const char *ns, const char *name)
{
    jb_err err = {{0}};
    if (kubernetes_owned(c, ns, name, "delete"))
        return 1;
    jb_status st = jb_sub_store_delete(store_of(c), ns, name, &err);
    if (st != JB_OK)
        return jb_kctl_report(st, &err);
    printf(RESOURCE " \"%s\" deleted\n", name);
    return 0;
}

static int cmd_delete(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    jb_sub_vec v = {0};
    int rc = 0;
    if (o->nfiles > 0 && (rc = load_files(o, &v)) != 0)
        return rc;
    if (o->nfiles == 0 && o->name == NULL) {
        fprintf(stderr, "error: must specify NAME or -f FILE\n");
        return 2;
    }
    if ((rc = jb_kctl_store(c)) != 0) {
        jb_sub_vec_clear(&v);
        return rc;
    }
    if (o->name != NULL)
        rc |= delete_one(c, ns_of(o), o->name);
    for (size_t i = 0; i < v.n; i++)
        rc |= delete_one(c, jb_sub_namespace(v.items[i]), jb_sub_name(v.items[i]));
    jb_sub_vec_clear(&v);
    return rc;
}

/* ------------------------------------------------------------------ get */

static cJSON *status_of(jb_kctl_ctx *c, const jb_sub *s)
{
    char *json = NULL;
    jb_err err;
    if (jb_sub_store_get_status(store_of(c), jb_sub_namespace(s), jb_sub_name(s), &json, &err) !=
        JB_OK)
        return NULL;
    cJSON *j = cJSON_Parse(json);
    free(json);
    return j;
}

static void print_row(jb_kctl_ctx *c, const jb_sub *s)
{
    cJSON *st = status_of(c, s);
    const cJSON *ready = cJSON_GetObjectItemCaseSensitive(st, "ready");
    char age[32];
    jb_k8s_age(jb_sub_created_ms(s), age, sizeof(age));
    printf("%-20s %-30s %-6s ", jb_sub_namespace(s), jb_sub_name(s),
           cJSON_IsBool(ready) ? (cJSON_IsTrue(ready) ? "true" : "false") : "");
    size_t w = 0;
    for (size_t i = 0; i < jb_sub_ntypes(s); i++) {
        char *t = jb_escape_text(jb_sub_type(s, i), strlen(jb_sub_type(s, i)));
        w += (size_t)printf("%s%s", i ? "," : "", t ? t : "");
        free(t);
    }
    char *shown = jb_redact_url(jb_sub_sink(s));
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
    cJSON *o = cJSON_Duplicate(jb_sub_doc(s), 1);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    redact_member(spec, "sink");
    redact_member(cJSON_GetObjectItemCaseSensitive(spec, "config"), "deadLetterSink");
    redact_member(cJSON_GetObjectItemCaseSensitive(spec, "config"), "tokenUrl");
    return o;
}

/* The manifest with its status, as kubectl shows an object. */
static cJSON *object_json(jb_kctl_ctx *c, const jb_sub *s)
{
    cJSON *o = shown_doc(s);
    cJSON *st = status_of(c, s);
    if (o != NULL && st != NULL)
        cJSON_AddItemToObject(o, "status", st);
    else
        cJSON_Delete(st);
    return o;
}

typedef struct shown {
    jb_kctl_ctx *c;
    const jb_sub_vec *v;
} shown;

static cJSON *shown_obj(size_t i, void *ud)
{
    shown *sh = ud;
    return object_json(sh->c, sh->v->items[i]);
}

static int cmd_get(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    int rc = jb_kctl_store(c);
    if (rc != 0)
        return rc;
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    jb_status st;
    if (o->name != NULL) {
        jb_sub *s = NULL;
        st = jb_sub_store_get(store_of(c), ns_of(o), o->name, &s, &err);
        if (st == JB_OK)
            st = jb_sub_vec_push(&v, s);
    } else {
        st = jb_sub_store_list(store_of(c), o->all ? NULL : ns_of(o), &v, &err);
    }
    if (st != JB_OK) {
        rc = jb_kctl_report(st, &err);
    } else if (o->output != NULL) {
        rc = jb_kctl_print(v.n, o->name != NULL, o->output, shown_obj, &(shown){c, &v});
    } else if (v.n == 0) {
        fprintf(stderr, o->all ? "No resources found\n" : "No resources found in %s namespace.\n",
                ns_of(o));
    } else {
        printf("%-20s %-30s %-6s %-40s %-40s %s\n", "NAMESPACE", "NAME", "READY", "TYPES", "SINK",
               "AGE");
        for (size_t i = 0; i < v.n; i++)
            print_row(c, v.items[i]);
    }
    jb_sub_vec_clear(&v);
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

static void describe_consumers(jb_kctl_ctx *c, const jb_cfg *cfg, const jb_sub *s)
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
            js_GetConsumerInfo(&ci, c->js, cfg->stream_name, l.items[i].consumer, NULL, &ec);
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

static int cmd_describe(jb_kctl_ctx *c)
{
    const opts *o = &c->o;
    int rc = jb_kctl_need_name(c);
    if (rc != 0 || (rc = jb_kctl_store(c)) != 0)
        return rc;
    jb_sub *s = NULL;
    jb_err err = {{0}};
    jb_status st = jb_sub_store_get(store_of(c), ns_of(o), o->name, &s, &err);
    if (st != JB_OK) {
        return jb_kctl_report(st, &err);
    }
    char created[32] = "<unknown>";
    if (jb_sub_created_ms(s) > 0)
        jb_k8s_time_format(jb_sub_created_ms(s), created);
    printf("Name:         %s\nNamespace:    %s\nAPI Version:  eventing.kyma-project.io/v1alpha2\n"
           "Kind:         Subscription\nCreated:      %s\nSpec:\n",
           jb_sub_name(s), jb_sub_namespace(s), created);
    cJSON *doc = shown_doc(s);
    jb_yaml_print(cJSON_GetObjectItemCaseSensitive(doc, "spec"), 2, stdout);
    cJSON_Delete(doc);
    cJSON *status = status_of(c, s);
    printf("Status:\n");
    if (status == NULL) {
        printf("  <none yet: no dispatcher has reconciled it>\n");
    } else {
        const cJSON *ready = cJSON_GetObjectItemCaseSensitive(status, "ready");
        printf("  Ready:  %s\n", cJSON_IsTrue(ready) ? "true" : "false");
        describe_conditions(status);
    }
    describe_consumers(c, c->cfg, s);
    cJSON_Delete(status);
    jb_sub_destroy(s);
    return 0;
}

static jb_status open_store(const void *cfg, jsCtx *js, void **store, jb_err *err)
{
    jb_sub_store *st = NULL;
    jb_status rc = jb_sub_store_open(cfg, js, &st, err);
    *store = st;
    return rc;
}

static void close_store(void *store)
{
    jb_sub_store_close(store);
}

static const jb_kctl_verb sub_verbs[] = {
    {"apply", cmd_apply, false},
    {"get", cmd_get, false},
    {"describe", cmd_describe, false},
    {"delete", cmd_delete, false},
};

static const jb_kctl_resource sub_resource = {
    .cmd = "sub",
    .client = "jetbridge-sub",
    .namespaced = true,
    .verbs = sub_verbs,
    .nverbs = sizeof(sub_verbs) / sizeof(sub_verbs[0]),
    .usage = usage,
    .open = open_store,
    .close = close_store,
};

int jb_cli_sub(const jb_cfg *cfg, int argc, char **argv)
{
    jb_nats_opts nats;
    jb_cfg_nats_opts(cfg, &nats);
    return jb_kctl_main(&sub_resource, cfg, &nats, argc, argv);
}
