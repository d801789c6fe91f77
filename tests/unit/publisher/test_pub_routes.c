/* publisher/: route matching (routes.c) and the JetStream outcome to HTTP status
 * mapping (ack_status.c). */
#include <nats/nats.h>
#include <stdio.h>
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
        {"route matching", test_routes},
    };
    return jb_cunit_main("unit_publisher_routes", NULL, NULL, cases, JB_CASES_N(cases));
}
