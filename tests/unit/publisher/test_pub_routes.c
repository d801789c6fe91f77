/* publisher/: route matching (routes.c) and the JetStream outcome to HTTP status
 * mapping (ack_status.c). */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jb_cunit.h"
#include "publisher/pub_internal.h"

static void test_ack_status(void)
{
    static const struct {
        int s, code;
        const char *text;
        int want;
    } cases[] = {
        {NATS_OK, 0, NULL, 204},
        {NATS_TIMEOUT, 0, NULL, 504},
        {NATS_NO_RESPONDERS, 0, NULL, 504},
        {NATS_CONNECTION_CLOSED, 0, NULL, 502},
        {NATS_CONNECTION_DISCONNECTED, 0, NULL, 502},
        {NATS_NOT_YET_CONNECTED, 0, NULL, 502},
        {NATS_ERR, 10077, "maximum messages exceeded", 507},
        {NATS_ERR, 0, "write: no space left on device", 507},
        {NATS_ERR, 10001, "maximum bytes exceeded", 507},
        {NATS_ERR, 10076, "jetstream not enabled", 500},
        {NATS_ERR, 10039, "jetstream not enabled for account", 503},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++)
        CU_ASSERT_EQUAL(jb_pub_ack_status(cases[i].s, cases[i].code, cases[i].text), cases[i].want);
}

/* The ack message JetStream sends back (jb_pub_ack_parse): status and text. */
static void test_ack_parse(void)
{
    static const struct {
        const char *data;
        bool no_responders;
        int want;
        const char *text; /* NULL: none */
    } cases[] = {
        {"{\"stream\":\"sap\",\"seq\":17}", false, 204, NULL},
        {"{\"stream\":\"sap\",\"seq\":17,\"duplicate\":true}", false, 204, NULL},
        {"{\"stream\":\"error\",\"seq\":3}", false, 204, NULL},
        {"{\"error\":{\"code\":503,\"err_code\":10077,\"description\":\"maximum messages "
         "exceeded\"},\"stream\":\"sap\",\"seq\":0}",
         false, 507, "maximum messages exceeded"},
        {"{\"error\":{\"code\":503,\"err_code\":10039,\"description\":\"jetstream not "
         "enabled\"}}",
         false, 503, "jetstream not enabled"},
        {"{\"error\":{\"code\":400,\"err_code\":10060,\"description\":\"expected stream "
         "does not match\"}}",
         false, 500, "expected stream does not match"},
        {"{\"error\":{\"code\":500}}", false, 500, "Error"},
        {"", true, 504, "No responders available for request"},
        {"", false, 500, "invalid JetStream ack"},
        {"{\"stream\":\"sap\"", false, 500, "invalid JetStream ack"},
        {"not json \"seq\"", false, 500, "invalid JetStream ack"},
        {"{\"error\":\"x\"}", false, 500, "invalid JetStream ack"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = (char *)"unset";
        int got =
            jb_pub_ack_parse(cases[i].data, strlen(cases[i].data), cases[i].no_responders, &text);
        if (got != cases[i].want)
            printf("\ncase %zu: %d, want %d\n", i, got, cases[i].want);
        CU_ASSERT_EQUAL(got, cases[i].want);
        if (cases[i].text == NULL) {
            CU_ASSERT_PTR_NULL(text);
        } else {
            CU_ASSERT_PTR_NOT_NULL_FATAL(text);
            CU_ASSERT_STRING_EQUAL(text, cases[i].text);
        }
        free(text);
    }
    /* Not NUL-terminated: only len bytes are read. */
    const char buf[] = "{\"stream\":\"sap\",\"seq\":1}XXXX";
    char *text = NULL;
    CU_ASSERT_EQUAL(jb_pub_ack_parse(buf, sizeof(buf) - 5, false, &text), 204);
    CU_ASSERT_PTR_NULL(text);
}

static void test_routes(void)
{
    static const struct {
        const char *path;
        jb_pub_route want;
        const char *app;
    } cases[] = {
        {"/publish", R_PUBLISH, NULL},
        {"/healthz", R_HEALTHZ, NULL},
        {"/readyz", R_READYZ, NULL},
        {"/myapp/v1/events", R_LEGACY, "myapp"},
        {"/my-app.x/v1/events/subscribed", R_SUBSCRIBED, "my-app.x"},
        {"/publish/v1/events", R_LEGACY, "publish"},
        {"/publish/", R_NONE, NULL},
        {"/publishx", R_NONE, NULL},
        {"//v1/events", R_NONE, NULL},
        {"/a/b/v1/events", R_NONE, NULL},
        {"/app/v1/events/", R_NONE, NULL},
        {"/app/v1/event", R_NONE, NULL},
        {"/app/v2/events", R_APP_V2, "app"},
        {"/app/events", R_APP_EVENTS, "app"},
        {"/app/v3/events", R_NONE, NULL},
        {"/app/events/", R_NONE, NULL},
        {"//events", R_NONE, NULL},
        {"/", R_NONE, NULL},
        {"", R_NONE, NULL},
        {"publish", R_NONE, NULL},
        {"http://h/publish", R_NONE, NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const char *app = NULL;
        size_t al = 0;
        jb_pub_route r = jb_pub_match_route(cases[i].path, strlen(cases[i].path), &app, &al);
        CU_ASSERT_EQUAL(r, cases[i].want);
        if (r != cases[i].want)
            fprintf(stderr, "route case %zu: %s -> %d\n", i, cases[i].path, (int)r);
        if (cases[i].app != NULL) {
            CU_ASSERT_EQUAL(al, strlen(cases[i].app));
            CU_ASSERT(app != NULL && strncmp(app, cases[i].app, al) == 0);
        }
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"JetStream outcome to HTTP status", test_ack_status},
        {"JetStream ack message to HTTP status", test_ack_parse},
        {"route matching", test_routes},
    };
    return jb_cunit_main("unit_publisher_routes", NULL, NULL, cases, JB_CASES_N(cases));
}
