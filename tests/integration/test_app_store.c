/*
 * The application store against a real nats-server: apply (created, configured,
 * unchanged, creationTimestamp kept), Kubernetes-owned entries, get/list/delete,
 * tokens (format, only the hash stored, revoke, delete revokes).
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "application/jb_app.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "test_app_util.h"

#define HEAD "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"

static jb_app *parse_one(const char *meta)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), HEAD "metadata: %s\n", meta);
    jb_app_vec v = {0};
    jb_err err = {{0}};
    if (jb_app_parse(buf, strlen(buf), "t", &v, &err) != JB_OK || v.n != 1) {
        fprintf(stderr, "parse: %s\n", err.msg);
        jb_app_vec_clear(&v);
        return NULL;
    }
    jb_app *a = v.items[0];
    free(v.items);
    return a;
}

static jb_status apply(app_env *e, const char *meta, bool force, jb_app_apply_result *res,
                       jb_err *err)
{
    jb_app *a = parse_one(meta);
    if (a == NULL)
        return JB_ERR_INVALID;
    jb_status st = jb_app_store_apply(e->st, a, force, res, err);
    jb_app_destroy(a);
    return st;
}

static void test_apply_get_list_delete(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    jb_app_apply_result res;
    CU_ASSERT_EQUAL(apply(&e, "{name: erp, labels: {application-type: sap}}", false, &res, &err),
                    JB_OK);
    CU_ASSERT_EQUAL(res, JB_APP_CREATED);
    jb_app *got = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_store_get(e.st, "erp", &got, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_app_clean_name(got), "sap");
    int64_t created = jb_app_created_ms(got);
    CU_ASSERT_TRUE(created > 0);
    jb_app_destroy(got);
    CU_ASSERT_EQUAL(apply(&e, "{name: erp, labels: {application-type: sap}}", false, &res, &err),
                    JB_OK);
    CU_ASSERT_EQUAL(res, JB_APP_UNCHANGED);
    CU_ASSERT_EQUAL(apply(&e, "{name: erp, labels: {application-type: other}}", false, &res, &err),
                    JB_OK);
    CU_ASSERT_EQUAL(res, JB_APP_CONFIGURED);
    CU_ASSERT_EQUAL_FATAL(jb_app_store_get(e.st, "erp", &got, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_app_type_label(got), "other");
    CU_ASSERT_EQUAL(jb_app_created_ms(got), created);
    jb_app_destroy(got);
    CU_ASSERT_EQUAL(apply(&e, "{name: crm}", false, &res, &err), JB_OK);
    jb_app_vec v = {0};
    CU_ASSERT_EQUAL_FATAL(jb_app_store_list(e.st, &v, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 2);
    CU_ASSERT_STRING_EQUAL(jb_app_name(v.items[0]), "crm");
    CU_ASSERT_STRING_EQUAL(jb_app_name(v.items[1]), "erp");
    jb_app_vec_clear(&v);
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "crm", &err), JB_OK);
    CU_ASSERT_EQUAL(jb_app_store_get(e.st, "crm", &got, &err), JB_ERR_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(err.msg,
                           "applications.applicationconnector.kyma-project.io \"crm\" not found");
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "crm", &err), JB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(jb_app_store_get(e.st, "../x", &got, &err), JB_ERR_NOT_FOUND);
    app_env_stop(&e);
}

static void test_kubernetes_owned(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    jb_app_apply_result res;
    static const char owned[] = "{name: erp, annotations: {jetbridge.io/managed-by: kubernetes}}";
    CU_ASSERT_EQUAL(apply(&e, owned, true, &res, &err), JB_OK);
    /* The CLI (force=false) may not overwrite it, even with the same content. */
    CU_ASSERT_EQUAL(apply(&e, "{name: erp}", false, &res, &err), JB_ERR_CONFLICT);
    CU_ASSERT_STRING_EQUAL(err.msg, "applications.applicationconnector.kyma-project.io \"erp\" is "
                                    "managed by Kubernetes: change it there (kubectl)");
    jb_app *got = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_store_get(e.st, "erp", &got, &err), JB_OK);
    CU_ASSERT_TRUE(jb_app_kubernetes_owned(got));
    jb_app_destroy(got);
    /* The controller (force=true) may. */
    CU_ASSERT_EQUAL(apply(&e,
                          "{name: erp, labels: {application-type: x}, annotations: "
                          "{jetbridge.io/managed-by: kubernetes}}",
                          true, &res, &err),
                    JB_OK);
    CU_ASSERT_EQUAL(res, JB_APP_CONFIGURED);
    app_env_stop(&e);
}

static size_t count_tokens(app_env *e, const char *name)
{
    size_t n = 99;
    jb_err err;
    if (jb_app_token_count(e->st, name, &n, &err) != JB_OK)
        fprintf(stderr, "count: %s\n", err.msg);
    return n;
}

static void test_tokens(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    jb_app_apply_result res;
    char *tok = NULL;
    CU_ASSERT_EQUAL(jb_app_token_create(e.st, "nope", &tok, &err), JB_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(tok);
    CU_ASSERT_EQUAL_FATAL(apply(&e, "{name: erp}", false, &res, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(apply(&e, "{name: crm}", false, &res, &err), JB_OK);
    char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_token_create(e.st, "erp", &t1, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_app_token_create(e.st, "erp", &t2, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_app_token_create(e.st, "crm", &t3, &err), JB_OK);
    CU_ASSERT_EQUAL(strlen(t1), JB_APP_TOKEN_LEN);
    CU_ASSERT_EQUAL(strncmp(t1, "jbt_", 4), 0);
    CU_ASSERT_EQUAL(
        strspn(t1 + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        JB_APP_TOKEN_LEN - 4);
    CU_ASSERT_STRING_NOT_EQUAL(t1, t2);
    /* Only hashes are stored: no token text, not even its random part. */
    char *dump = app_bucket_dump(e.js, JB_APP_TOKEN_BUCKET);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dump);
    char h1[65];
    jb_sha256_hex(t1, strlen(t1), h1);
    CU_ASSERT_PTR_NOT_NULL(strstr(dump, h1));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump, "\"application\":\"erp\""));
    const char *toks[] = {t1, t2, t3};
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_PTR_NULL(strstr(dump, toks[i]));
        CU_ASSERT_PTR_NULL(strstr(dump, toks[i] + 4));
    }
    free(dump);
    dump = app_bucket_dump(e.js, JB_APP_BUCKET);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_PTR_NULL(strstr(dump, toks[i] + 4));
    free(dump);
    CU_ASSERT_EQUAL(count_tokens(&e, "erp"), 2);
    size_t n = 0;
    CU_ASSERT_EQUAL(jb_app_token_revoke(e.st, "erp", &n, &err), JB_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(count_tokens(&e, "erp"), 0);
    CU_ASSERT_EQUAL(count_tokens(&e, "crm"), 1);
    CU_ASSERT_EQUAL(jb_app_token_revoke(e.st, "erp", &n, &err), JB_OK);
    CU_ASSERT_EQUAL(n, 0);
    /* Deleting an application revokes its tokens: a new one of that name starts clean. */
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "crm", &err), JB_OK);
    CU_ASSERT_EQUAL(count_tokens(&e, "crm"), 0);
    free(t1);
    free(t2);
    free(t3);
    app_env_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"apply, get, list, delete", test_apply_get_list_delete},
        {"kubernetes-owned entries", test_kubernetes_owned},
        {"tokens: only hashes stored, revoke", test_tokens},
    };
    return jb_cunit_main("app_store", NULL, NULL, cases, JB_CASES_N(cases));
}
