/*
 * The application-type label through the real binaries: an Application applied
 * with `jetbridge app apply` changes the subjects the real publisher stores legacy
 * events (both copies) and prefixed-path events on, keeps ce-source as sent, and
 * follows label changes and deletes while the publisher runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_pub_util.h"

#define HEAD    "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"
#define WAIT_MS 30000

static pubenv env;
static char dir[] = "/tmp/jb-applabel-XXXXXX";

/* `jetbridge app apply` of one manifest; returns the exit code. */
static int app_cli(const char *verb, const char *arg_or_manifest)
{
    char url[160], path[300];
    snprintf(url, sizeof(url), "NATS_URL=%s", jb_tnats_url(env.nats));
    const char *envv[] = {url, NULL};
    const char *argv[] = {"app", verb, arg_or_manifest, NULL, NULL};
    if (strcmp(verb, "apply") == 0) {
        snprintf(path, sizeof(path), "%s/app.yaml", dir);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            return -1;
        fputs(arg_or_manifest, f);
        fclose(f);
        argv[2] = "-f";
        argv[3] = path;
    }
    return jb_trun_capture(argv, envv, NULL, NULL, 30000);
}

static int post_legacy(const char *app, const char *version)
{
    char path[128], body[512], id[37];
    jb_uuid_v4(id);
    snprintf(path, sizeof(path), "/%s/v1/events", app);
    snprintf(body, sizeof(body),
             "{\"event-id\":\"%s\",\"event-type\":\"order.created\",\"event-type-version\":"
             "\"%s\",\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":{\"id\":7}}",
             id, version);
    return pe_post(&env, path, "Content-Type: application/json\r\n", body, strlen(body), NULL,
                   NULL);
}

/* Publishes legacy events of app until one is stored on subject (the registry
 * follows changes asynchronously). */
static bool legacy_lands_on(const char *app, const char *subject)
{
    for (int t = 0; t < WAIT_MS; t += 200) {
        CU_ASSERT_EQUAL_FATAL(post_legacy(app, "v1"), 200);
        natsMsg *m = pe_last_msg(&env, subject);
        natsMsg_Destroy(m);
        if (m != NULL)
            return true;
        jb_sleep_ms(200);
    }
    return false;
}

static void test_legacy_uses_label(void)
{
    CU_ASSERT_EQUAL(post_legacy("commerce", "v7"), 200);
    /* Both copies carry the label (cleaned as each path cleans), ce-source as sent. */
    natsMsg *a = pe_last_msg(&env, "kyma.sap-commerce.order.created.v7");
    natsMsg *b = pe_last_msg(&env, "kyma.sap.kyma.custom.sapcommerce.order.created.v7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-source"), "commerce");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-type"), "kyma.sap-commerce.order.created.v7");
    CU_ASSERT_STRING_EQUAL(pe_hdr(b, "ce-source"), "kyma");
    CU_ASSERT_STRING_EQUAL(pe_hdr(b, "ce-type"), "sap.kyma.custom.sapcommerce.order.created.v7");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-id"), pe_hdr(b, "ce-id"));
    natsMsg_Destroy(a);
    natsMsg_Destroy(b);
    /* Nothing went to the name's subjects. */
    CU_ASSERT_PTR_NULL(pe_last_msg(&env, "kyma.commerce.order.created.v7"));
    CU_ASSERT_PTR_NULL(pe_last_msg(&env, "kyma.sap.kyma.custom.commerce.order.created.v7"));
    /* An application the registry does not know keeps its name. */
    CU_ASSERT_EQUAL(post_legacy("other", "v7"), 200);
    natsMsg *c = pe_last_msg(&env, "kyma.other.order.created.v7");
    CU_ASSERT_PTR_NOT_NULL(c);
    natsMsg_Destroy(c);
}

static void test_prefixed_path_uses_label(void)
{
    char hdr[1024], id[37];
    jb_uuid_v4(id);
    pe_binary_headers(hdr, sizeof(hdr), id, "my-source", "sap.kyma.custom.commerce.order.paid.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdr, "{}", 2, NULL, NULL), 204);
    natsMsg *m = pe_last_msg(&env, "kyma.sap.kyma.custom.sapcommerce.order.paid.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-source"), "my-source");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-type"), "sap.kyma.custom.sapcommerce.order.paid.v1");
    natsMsg_Destroy(m);
    /* The standard path is not an application's: its source is used as it is. */
    jb_uuid_v4(id);
    pe_binary_headers(hdr, sizeof(hdr), id, "commerce", "order.paid.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdr, "{}", 2, NULL, NULL), 204);
    m = pe_last_msg(&env, "kyma.commerce.order.paid.v1");
    CU_ASSERT_PTR_NOT_NULL(m);
    natsMsg_Destroy(m);
}

static void test_follows_changes(void)
{
    CU_ASSERT_EQUAL_FATAL(
        app_cli("apply", HEAD "metadata: {name: commerce, labels: {application-type: c4c}}\n"), 0);
    CU_ASSERT_TRUE(legacy_lands_on("commerce", "kyma.sap.kyma.custom.c4c.order.created.v1"));
    CU_ASSERT_EQUAL_FATAL(app_cli("delete", "commerce"), 0);
    CU_ASSERT_TRUE(legacy_lands_on("commerce", "kyma.sap.kyma.custom.commerce.order.created.v1"));
    natsMsg *m = pe_last_msg(&env, "kyma.commerce.order.created.v1");
    CU_ASSERT_PTR_NOT_NULL(m);
    natsMsg_Destroy(m);
}

static int init(void)
{
    memset(&env, 0, sizeof(env));
    if (mkdtemp(dir) == NULL || (env.nats = jb_tnats_start()) == NULL)
        return 1;
    /* Applied before the publisher starts: it is loaded before /readyz says 200. */
    if (app_cli("apply",
                HEAD "metadata: {name: commerce, labels: {application-type: sap-commerce}}\n") != 0)
        return 1;
    /* limits: keep what is stored without a consumer, so that the test can read it. */
    static const char *const extra[] = {"JS_STREAM_RETENTION_POLICY=limits", NULL};
    return pe_start_publisher(&env, extra) && pe_connect_client(&env) ? 0 : 1;
}

/* The publisher's clean exit (0: no sanitizer finding either), checked in a test
 * because cleanup may not assert. */
static void test_clean_exit(void)
{
    CU_ASSERT_EQUAL(pe_terminate(&env), 0);
    jb_tproc_stop(env.proc);
    env.proc = NULL;
}

static int cleanup(void)
{
    pe_stop(&env);
    jb_rm_tree(dir);
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"legacy: both copies use the label", test_legacy_uses_label},
        {"prefixed path uses the label", test_prefixed_path_uses_label},
        {"label changes and deletes are followed", test_follows_changes},
        {"the publisher exits cleanly", test_clean_exit},
    };
    return jb_cunit_main("app_label", init, cleanup, cases, JB_CASES_N(cases));
}
