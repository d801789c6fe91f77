/*
 * `jetbridge app apply|get|describe|delete|token` through the real binary against a
 * real nats-server: kubectl-style output, errors naming the field, Kubernetes-owned
 * applications refused, tokens printed once and stored only as a hash.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "application/jb_app.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "test_app_util.h"

#define T    30000
#define HEAD "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"
#define RES  "application.applicationconnector.kyma-project.io"

static jb_tnats *nats;
static char url_env[128];
static char dir[] = "/tmp/jb-appcli-XXXXXX";

static int run_env(const char *const *argv, const char *extra, char **out, char **err)
{
    const char *env[] = {url_env, extra, NULL};
    return jb_trun_capture(argv, env, out, err, T);
}

static int run(const char *const *argv, char **out, char **err)
{
    return run_env(argv, NULL, out, err);
}

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static const char *const commerce_v1 =
    HEAD "metadata:\n  name: commerce\n  labels: {application-type: sap-commerce}\n"
         "  annotations:\n    jetbridge.io/allowed-sources: erp,crm\n"
         "    jetbridge.io/rate-limit: 200/s,burst=400\n"
         "spec:\n  description: Commerce\n"
         "  compassMetadata: {authentication: {clientIds: [commerce-client]}}\n";
static const char *const commerce_v2 =
    HEAD "metadata:\n  name: commerce\n  labels: {application-type: sap-commerce}\n"
         "  annotations:\n    jetbridge.io/allowed-types: order.\n"
         "spec:\n  description: Commerce\n";

static void test_help(void)
{
    const char *argv[] = {"app", "--help", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(argv, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "jetbridge app token create NAME [-o json]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "jetbridge.io/rate-limit"));
    free(out);
    free(err);
    const char *bad[] = {"app", "frobnicate", NULL};
    CU_ASSERT_EQUAL(run(bad, &out, &err), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown command \"frobnicate\""));
    free(out);
    free(err);
    const char *main_help[] = {"help", NULL};
    CU_ASSERT_EQUAL(run(main_help, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  app "));
    free(out);
    free(err);
}

static void test_apply_get_describe(void)
{
    char f[300];
    write_file("commerce.yaml", commerce_v1, f, sizeof(f));
    const char *apply[] = {"app", "apply", "-f", f, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(apply, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, RES "/commerce created\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(run(apply, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, RES "/commerce unchanged\n");
    free(out);
    free(err);

    const char *get[] = {"app", "get", NULL};
    CU_ASSERT_EQUAL(run(get, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(strncmp(out, "NAME ", 5), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "APPLICATION-TYPE"));
    const char *row = strchr(out, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_EQUAL(strncmp(row + 1, "commerce ", 9), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(row, "sap-commerce"));
    CU_ASSERT_PTR_NOT_NULL(strstr(row, "erp,crm"));
    CU_ASSERT_PTR_NOT_NULL(strstr(row, "200/s,burst=400"));
    free(out);
    free(err);

    const char *getj[] = {"app", "get", "commerce", "-o", "json", NULL};
    CU_ASSERT_EQUAL(run(getj, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring, "commerce");
    CU_ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(meta, "creationTimestamp")));
    cJSON_Delete(j);
    free(out);
    free(err);

    const char *desc[] = {"app", "describe", "commerce", NULL};
    CU_ASSERT_EQUAL(run(desc, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Application Type: sap-commerce\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Client IDs:       commerce-client\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Allowed Types:    <any>\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Rate Limit:       200/s,burst=400\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Tokens:           0\n"));
    free(out);
    free(err);

    write_file("commerce.yaml", commerce_v2, f, sizeof(f));
    CU_ASSERT_EQUAL(run(apply, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, RES "/commerce configured\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(run(desc, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Allowed Types:    order.\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Rate Limit:       <none>\n"));
    free(out);
    free(err);
}

static void test_bad_manifest_changes_nothing(void)
{
    char f[300];
    write_file("bad.yaml",
               HEAD "metadata: {name: good-one}\n---\n" HEAD
                    "metadata: {name: bad-one, annotations: {jetbridge.io/rate-limit: lots}}\n",
               f, sizeof(f));
    const char *apply[] = {"app", "apply", "-f", f, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(apply, &out, &err), 1);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad.yaml: document 2: metadata.annotations.jetbridge.io/"
                                       "rate-limit: must be"));
    free(out);
    free(err);
    const char *get[] = {"app", "get", "good-one", NULL};
    CU_ASSERT_EQUAL(run(get, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Error from server (NotFound): applications."
                                       "applicationconnector.kyma-project.io \"good-one\" not "
                                       "found"));
    free(out);
    free(err);
}

/* Every key and value of a bucket, read directly from NATS. */
static char *bucket_dump(const char *bucket)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    char *out = NULL;
    if (natsConnection_ConnectTo(&nc, jb_tnats_url(nats)) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK)
        out = app_bucket_dump(js, bucket);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return out ? out : strdup("");
}

/* The last non-empty line of s (malloc'd). */
static char *last_line(const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    return strndup(s + start, len - start);
}

static void test_tokens(void)
{
    /* Debug logging on: the token must not reach the log either. */
    const char *create[] = {"app", "token", "create", "commerce", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run_env(create, "LOG_LEVEL=debug", &out, &err), 0);
    char *tok = last_line(out);
    CU_ASSERT_EQUAL(strlen(tok), JB_APP_TOKEN_LEN);
    CU_ASSERT_EQUAL(strncmp(tok, JB_APP_TOKEN_PREFIX, 4), 0);
    /* Printed once: the token line is the only place it appears. */
    CU_ASSERT_PTR_EQUAL(strstr(out, tok), out + strlen(out) - strlen(tok) - 1);
    CU_ASSERT_PTR_NULL(strstr(err, tok + 4));
    free(out);
    free(err);

    const char *cj[] = {"app", "token", "create", "commerce", "-o", "json", NULL};
    CU_ASSERT_EQUAL(run(cj, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    const cJSON *t2 = cJSON_GetObjectItemCaseSensitive(j, "token");
    CU_ASSERT_TRUE_FATAL(cJSON_IsString(t2));
    CU_ASSERT_EQUAL(strlen(t2->valuestring), JB_APP_TOKEN_LEN);
    CU_ASSERT_STRING_NOT_EQUAL(t2->valuestring, tok);
    char *tok2 = strdup(t2->valuestring);
    cJSON_Delete(j);
    free(out);
    free(err);

    /* The buckets hold the hashes, never a token's text. */
    char *dump = bucket_dump(JB_APP_TOKEN_BUCKET);
    char h[65];
    jb_sha256_hex(tok, strlen(tok), h);
    CU_ASSERT_PTR_NOT_NULL(strstr(dump, h));
    jb_sha256_hex(tok2, strlen(tok2), h);
    CU_ASSERT_PTR_NOT_NULL(strstr(dump, h));
    CU_ASSERT_PTR_NULL(strstr(dump, tok + 4));
    CU_ASSERT_PTR_NULL(strstr(dump, tok2 + 4));
    free(dump);
    dump = bucket_dump(JB_APP_BUCKET);
    CU_ASSERT_PTR_NULL(strstr(dump, tok + 4));
    free(dump);

    /* get and describe never show a token; describe counts them. */
    const char *desc[] = {"app", "describe", "commerce", NULL};
    CU_ASSERT_EQUAL(run(desc, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Tokens:           2\n"));
    CU_ASSERT_PTR_NULL(strstr(out, tok + 4));
    free(out);
    free(err);
    const char *gety[] = {"app", "get", "-o", "yaml", NULL};
    CU_ASSERT_EQUAL(run(gety, &out, &err), 0);
    CU_ASSERT_PTR_NULL(strstr(out, tok + 4));
    CU_ASSERT_PTR_NULL(strstr(out, tok2 + 4));
    free(out);
    free(err);

    const char *revoke[] = {"app", "token", "revoke", "commerce", NULL};
    CU_ASSERT_EQUAL(run(revoke, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, RES "/commerce: 2 tokens revoked\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(run(desc, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Tokens:           0\n"));
    free(out);
    free(err);
    const char *unknown[] = {"app", "token", "create", "nope", NULL};
    CU_ASSERT_EQUAL(run(unknown, &out, &err), 1);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"nope\" not found"));
    free(out);
    free(err);
    free(tok);
    free(tok2);
}

static void test_kubernetes_owned_refused(void)
{
    char f[300];
    write_file("erp.yaml", HEAD "metadata: {name: erp}\n", f, sizeof(f));
    /* What the controller does: a forced put of an owned application. */
    jb_cfg *cfg = jb_cfg_defaults();
    free(cfg->nats_url);
    cfg->nats_url = strdup(jb_tnats_url(nats));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_app_store *st = NULL;
    jb_err e = {{0}};
    jb_app_vec v = {0};
    static const char owned[] =
        HEAD "metadata: {name: erp, annotations: {jetbridge.io/managed-by: kubernetes}}\n";
    CU_ASSERT_EQUAL_FATAL(jb_app_parse(owned, strlen(owned), "k", &v, &e), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(cfg, NULL, "t", false, &nc, &js, &e), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_app_store_open(cfg, js, &st, &e), JB_OK);
    CU_ASSERT_EQUAL(jb_app_store_put(st, v.items[0], true, &e), JB_OK);
    jb_app_store_close(st);
    jb_nats_close(nc, js);
    jb_app_vec_clear(&v);
    jb_cfg_destroy(cfg);

    const char *apply[] = {"app", "apply", "-f", f, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(apply, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"erp\" is managed by Kubernetes"));
    free(out);
    free(err);
    /* A manifest may not claim the ownership itself. */
    char g[300];
    write_file("claim.yaml",
               HEAD "metadata: {name: mine, annotations: {jetbridge.io/managed-by: kubernetes}}\n",
               g, sizeof(g));
    const char *claim[] = {"app", "apply", "-f", g, NULL};
    CU_ASSERT_EQUAL(run(claim, &out, &err), 1);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "application.applicationconnector.kyma-project.io/mine: "
                                       "jetbridge.io/managed-by: kubernetes is set by the "
                                       "Kubernetes controller only"));
    free(out);
    free(err);
    const char *getmine[] = {"app", "get", "mine", NULL};
    CU_ASSERT_EQUAL(run(getmine, &out, &err), 1);
    free(out);
    free(err);
    const char *del[] = {"app", "delete", "erp", NULL};
    CU_ASSERT_EQUAL(run(del, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"erp\" is managed by Kubernetes"));
    free(out);
    free(err);
    const char *get[] = {"app", "get", "erp", NULL};
    CU_ASSERT_EQUAL(run(get, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kubernetes"));
    free(out);
    free(err);
}

static void test_delete(void)
{
    const char *del[] = {"app", "delete", "commerce", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(del, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, RES " \"commerce\" deleted\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(run(del, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Error from server (NotFound)"));
    free(out);
    free(err);
}

static int init(void)
{
    if (mkdtemp(dir) == NULL || (nats = jb_tnats_start()) == NULL)
        return 1;
    snprintf(url_env, sizeof(url_env), "NATS_URL=%s", jb_tnats_url(nats));
    return 0;
}

static int cleanup(void)
{
    jb_tnats_stop(nats);
    jb_rm_tree(dir);
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"--help and usage errors", test_help},
        {"apply, get, describe", test_apply_get_describe},
        {"a bad manifest changes nothing", test_bad_manifest_changes_nothing},
        {"tokens: printed once, only hashes stored", test_tokens},
        {"kubernetes-owned applications refused", test_kubernetes_owned_refused},
        {"delete", test_delete},
    };
    return jb_cunit_main("app_cli", init, cleanup, cases, JB_CASES_N(cases));
}
