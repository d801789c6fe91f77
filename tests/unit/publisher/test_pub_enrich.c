/* publisher/: enrichment (DESIGN.md 2.3), message ids, tracing. */
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"
#include "publisher/pub_internal.h"
#include "subscription/jb_sub.h"

static const jb_pub_names names = {"sap.kyma.custom", "kyma", "kyma"};

static void test_standard_subject(void)
{
    static const struct {
        const char *source, *type, *want; /* want NULL: invalid */
    } cases[] = {
        /* DESIGN.md / Kyma examples */
        {"source1", "o-rder.creat ed.v1", "kyma.source1.o-rder.created.v1"},
        {"s>o>*u*r>c.e", "order.cre-ä+t*ed.v2", "kyma.source.order.cre-ä+ted.v2"},
        {"myapp", "order.created.v1", "kyma.myapp.order.created.v1"},
        {"/shop/orders", "a.b", "kyma.shoporders.a.b"},
        {"my app\t", "x\\y/z.v1", "kyma.myapp.xyz.v1"},
        {"https://example.com/x", "t", "kyma.https:examplecomx.t"},
        {"a", "a>.b*", "kyma.a.a.b"},
        {"a", "UPPER.Case.V1", "kyma.a.UPPER.Case.V1"},
        /* empty segments after cleaning */
        {"...", "a.b", NULL},
        {" ", "a.b", NULL},
        {"s", "a..b", NULL},
        {"s", ".a", NULL},
        {"s", "a.", NULL},
        {"s", "*>", NULL},
        {"s", "a.* .b", NULL},
        /* control bytes never reach a subject (found by fuzz_pub_legacy) */
        {"s", "a\x01.b", NULL},
        {"s\x7f", "a.b", NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *out = NULL;
        jb_err err = {{0}};
        jb_status rc = jb_sub_standard_subject("kyma", cases[i].source, strlen(cases[i].source),
                                               cases[i].type, strlen(cases[i].type), &out, &err);
        if (cases[i].want == NULL) {
            CU_ASSERT_EQUAL(rc, JB_ERR_INVALID);
            CU_ASSERT_PTR_NULL(out);
            CU_ASSERT(err.msg[0] != '\0');
        } else {
            CU_ASSERT_EQUAL(rc, JB_OK);
            CU_ASSERT_STRING_EQUAL(out ? out : "", cases[i].want);
            if (out == NULL || strcmp(out, cases[i].want) != 0)
                fprintf(stderr, "case %zu: got %s want %s\n", i, out ? out : err.msg,
                        cases[i].want);
        }
        free(out);
    }
}

static void test_prefixed_type(void)
{
    static const struct {
        const char *prefix, *type, *want;
    } cases[] = {
        {"sap.kyma.custom", "sap.kyma.custom.te--s__t!!a@@p##p%%.Segment1-Part1.Segment2.v1",
         "sap.kyma.custom.testapp.Segment1Part1.Segment2.v1"},
        {"pre1.pre2.pre3", "pre1.pre2.pre3.no-app.too.many.dots.object.do.v1",
         "pre1.pre2.pre3.noapp.toomanydotsobject.do.v1"},
        {"sap.kyma.custom", "sap.kyma.custom.app.order.created.v1",
         "sap.kyma.custom.app.order.created.v1"},
        {"sap.kyma.custom", "sap.kyma.custom.commerce.order.item.created.v1",
         "sap.kyma.custom.commerce.orderitem.created.v1"},
        {"sap.kyma.custom", "sap.kyma.custom.app.ord_er.cre-ated.v-1",
         "sap.kyma.custom.app.order.created.v1"},
        {"p", "p.a.b.c.d", "p.a.b.c.d"},
        /* invalid format */
        {"sap.kyma.custom", "sap.kyma.custom.app.created.v1", NULL},
        {"sap.kyma.custom", "sap.kyma.custom.sap.kyma.custom.app.order.created.v1", NULL},
        {"sap.kyma.custom", "sap.kyma.custom.app..order.created.v1", NULL},
        {"sap.kyma.custom", "sap.kyma.custom.app.order.created.", NULL},
        {"sap.kyma.custom", "sap.kyma.custom.", NULL},
        {"sap.kyma.custom", "sap.kyma.custom.@@.order.created.v1", NULL},
        {"sap.kyma.custom", "sap.kyma.custom.app.order.created.--", NULL},
        {"sap.kyma.custom", "other.app.order.created.v1", NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *out = NULL;
        jb_err err = {{0}};
        jb_status rc =
            jb_pub_prefixed_type(cases[i].prefix, cases[i].type, strlen(cases[i].type), &out, &err);
        if (cases[i].want == NULL) {
            CU_ASSERT_EQUAL(rc, JB_ERR_INVALID);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "invalid format"));
        } else {
            CU_ASSERT_EQUAL(rc, JB_OK);
            CU_ASSERT_STRING_EQUAL(out ? out : "", cases[i].want);
            if (out == NULL || strcmp(out, cases[i].want) != 0)
                fprintf(stderr, "case %zu: got %s want %s\n", i, out ? out : err.msg,
                        cases[i].want);
        }
        free(out);
    }
}

static jb_ce *event(const char *source, const char *type)
{
    jb_ce *ce = jb_ce_create();
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", "1");
    jb_ce_set_str(ce, "source", source);
    jb_ce_set_str(ce, "type", type);
    return ce;
}

static void test_enrich_event(void)
{
    static const struct {
        const char *source, *type, *subject, *new_type, *original;
    } cases[] = {
        {"source1", "o-rder.creat ed.v1", "kyma.source1.o-rder.created.v1",
         "kyma.source1.o-rder.created.v1", "o-rder.creat ed.v1"},
        {"anything", "sap.kyma.custom.app.order.created.v1",
         "kyma.sap.kyma.custom.app.order.created.v1", "sap.kyma.custom.app.order.created.v1", NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = event(cases[i].source, cases[i].type);
        char *subj = NULL;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_pub_enrich(&names, ce, &subj, &err), JB_OK);
        CU_ASSERT_STRING_EQUAL(subj ? subj : "", cases[i].subject);
        CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "type", NULL), cases[i].new_type);
        const char *orig = jb_ce_get(ce, "originaltype", NULL);
        if (cases[i].original == NULL) {
            CU_ASSERT_PTR_NULL(orig);
        } else {
            CU_ASSERT_STRING_EQUAL(orig ? orig : "", cases[i].original);
        }
        CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "source", NULL), cases[i].source);
        free(subj);
        jb_ce_destroy(ce);
    }
    /* Another stream subject prefix. */
    jb_pub_names other = {"sap.kyma.custom", "events", "kyma"};
    jb_ce *ce = event("app", "a.b");
    char *subj = NULL;
    CU_ASSERT_EQUAL(jb_pub_enrich(&other, ce, &subj, NULL), JB_OK);
    CU_ASSERT_STRING_EQUAL(subj ? subj : "", "events.app.a.b");
    free(subj);
    jb_ce_destroy(ce);
}

static void test_tracing(void)
{
    jb_ce *ce = event("s", "a.b");
    const jb_ce_header h[] = {
        {"TraceParent", 11, "00-abc-def-01", 13},
        {"X-B3-TraceId", 12, "t1", 2},
        {"x-b3-parentspanid", 17, "p1", 2},
        {"X-B3-SpanId", 11, "s1", 2},
        {"X-B3-Sampled", 12, "1", 1},
        {"X-B3-Flags", 10, "0", 1},
        {"X-Other", 7, "no", 2},
        {"X-B3-SpanIdX", 12, "no", 2},
    };
    CU_ASSERT_EQUAL(jb_pub_apply_tracing(ce, h, JB_CASES_N(h), NULL), JB_OK);
    static const char *const want[][2] = {
        {"traceparent", "00-abc-def-01"},
        {"b3traceid", "t1"},
        {"b3parentspanid", "p1"},
        {"b3spanid", "s1"},
        {"b3sampled", "1"},
        {"b3flags", "0"},
    };
    for (size_t i = 0; i < JB_CASES_N(want); i++) {
        const char *v = jb_ce_get(ce, want[i][0], NULL);
        CU_ASSERT_STRING_EQUAL(v ? v : "", want[i][1]);
    }
    CU_ASSERT_PTR_NULL(jb_ce_get(ce, "xother", NULL));
    CU_ASSERT_EQUAL(jb_ce_attr_count(ce), 4 + 6);
    jb_ce_destroy(ce);
}

/* A tracing value the dispatcher could not send back as a header is refused at
 * the publisher, with the dispatcher's own rule (jb_ce_http_value_ok). */
static void test_tracing_refused(void)
{
    static const struct {
        const char *name, *value;
        bool ok;
    } cases[] = {
        {"X-B3-TraceId", "a\x1b[31mb", false}, {"traceparent", "00-a\x01b", false},
        {"X-B3-Flags", "1\x7f", false},        {"X-B3-Sampled", "1\r\nX-Evil: 1", false},
        {"X-B3-SpanId", " lead", false},       {"X-B3-SpanId", "trail\t", false},
        {"X-B3-SpanId", "in side\tok", true},  {"X-B3-SpanId", "\xc3\xa9t\xc3\xa9", true},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = event("s", "a.b");
        const jb_ce_header h = {cases[i].name, strlen(cases[i].name), cases[i].value,
                                strlen(cases[i].value)};
        jb_err err = {{0}};
        jb_status rc = jb_pub_apply_tracing(ce, &h, 1, &err);
        CU_ASSERT_EQUAL(rc, cases[i].ok ? JB_OK : JB_ERR_INVALID);
        CU_ASSERT_EQUAL(jb_ce_http_value_ok(cases[i].value, strlen(cases[i].value)), cases[i].ok);
        if (!cases[i].ok)
            CU_ASSERT_EQUAL(strncmp(err.msg, cases[i].name, strlen(cases[i].name)), 0);
        jb_ce_destroy(ce);
    }
}

static void test_msg_id(void)
{
    char a[33], b[33], c[33], d[33], e[33];
    jb_pub_msg_id("src", 3, "id1", 3, NULL, a);
    jb_pub_msg_id("src", 3, "id1", 3, NULL, b);
    jb_pub_msg_id("sr", 2, "cid1", 4, NULL, c);
    jb_pub_msg_id("src", 3, "id1", 3, "kyma.x", d);
    jb_pub_msg_id("src", 3, "id1", 3, "kyma.y", e);
    CU_ASSERT_EQUAL(strlen(a), 32);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_STRING_NOT_EQUAL(a, c); /* the separator matters */
    CU_ASSERT_STRING_NOT_EQUAL(a, d);
    CU_ASSERT_STRING_NOT_EQUAL(d, e);
    /* Documented derivation: SHA-256("src\0id1"), first 32 hex characters. */
    char hex[65];
    jb_sha256_hex("src\0id1", 7, hex);
    CU_ASSERT_NSTRING_EQUAL(a, hex, 32);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"standard path subjects and empty segments", test_standard_subject},
        {"prefixed path cleaning and invalid formats", test_prefixed_type},
        {"enrich rewrites type and originaltype", test_enrich_event},
        {"tracing values the dispatcher cannot send are refused", test_tracing_refused},
        {"tracing headers become extensions", test_tracing},
        {"Nats-Msg-Id derivation", test_msg_id},
    };
    return jb_cunit_main("unit_publisher_enrich", NULL, NULL, cases, JB_CASES_N(cases));
}
