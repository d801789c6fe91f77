/* dispatcher/: the HTTP request a sink receives for a stored event (deliver.c). */
#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#include "dispatcher/disp_internal.h"
#include "jb_cunit.h"
#include "proto/jb_ce.h"

/* The value of header name in list ("Name: value"), or NULL. */
static const char *header(const struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);
    for (; l != NULL; l = l->next)
        if (strncasecmp(l->data, name, n) == 0 && l->data[n] == ':')
            return l->data[n + 1] == ' ' ? l->data + n + 2 : l->data + n + 1;
    return NULL;
}

static jb_ce *stored_event(const char *const *attrs, const char *data)
{
    jb_ce *ce = jb_ce_create();
    for (size_t i = 0; attrs[i] != NULL; i += 2)
        jb_ce_set_str(ce, attrs[i], attrs[i + 1]);
    if (data != NULL)
        jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
    return ce;
}

static const char *const base_attrs[] = {
    "specversion", "1.0", "id", "e1", "source", "app", "type", "kyma.app.order.created.v1", NULL};

static void test_binary_cases(void)
{
    static const struct {
        const char *name;
        const char *const attrs[8];
        const char *want_header, *want_value; /* NULL value: must be absent */
    } cases[] = {
        {"type back to originaltype",
         {"originaltype", "order.created.v1"},
         "ce-type",
         "order.created.v1"},
        {"originaltype itself not sent",
         {"originaltype", "order.created.v1"},
         "ce-originaltype",
         NULL},
        {"type kept without originaltype", {NULL}, "ce-type", "kyma.app.order.created.v1"},
        {"traceparent header", {"traceparent", "00-ab-cd-01"}, "traceparent", "00-ab-cd-01"},
        {"traceparent not as ce-", {"traceparent", "00-ab-cd-01"}, "ce-traceparent", NULL},
        {"b3 trace id", {"b3traceid", "463ac35c9f6413ad"}, "X-B3-TraceId", "463ac35c9f6413ad"},
        {"b3 parent span",
         {"b3parentspanid", "0020000000000001"},
         "X-B3-ParentSpanId",
         "0020000000000001"},
        {"b3 span", {"b3spanid", "a2fb4a1d1a96d312"}, "X-B3-SpanId", "a2fb4a1d1a96d312"},
        {"b3 sampled", {"b3sampled", "1"}, "X-B3-Sampled", "1"},
        {"b3 flags", {"b3flags", "1"}, "X-B3-Flags", "1"},
        {"content type from datacontenttype",
         {"datacontenttype", "application/json"},
         "Content-Type",
         "application/json"},
        {"other extensions stay", {"myext", "v"}, "ce-myext", "v"},
        {"no 100-continue", {NULL}, "Expect", ""},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = stored_event(base_attrs, "{\"a\": 1}");
        for (size_t k = 0; cases[i].attrs[k] != NULL; k += 2)
            jb_ce_set_str(ce, cases[i].attrs[k], cases[i].attrs[k + 1]);
        jb_dreq r = {0};
        CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, false, &r), JB_OK);
        const char *v = header(r.headers, cases[i].want_header);
        if (cases[i].want_value == NULL ? v != NULL
                                        : (v == NULL || strcmp(v, cases[i].want_value) != 0))
            fprintf(stderr, "case \"%s\": %s = %s\n", cases[i].name, cases[i].want_header,
                    v ? v : "(absent)");
        if (cases[i].want_value == NULL) {
            CU_ASSERT_PTR_NULL(v);
        } else {
            CU_ASSERT_TRUE(v != NULL && strcmp(v, cases[i].want_value) == 0);
        }
        /* Data bytes untouched. */
        CU_ASSERT_EQUAL(r.len, 8);
        CU_ASSERT_TRUE(r.len == 8 && memcmp(r.data, "{\"a\": 1}", 8) == 0);
        jb_dreq_free(&r);
        jb_ce_destroy(ce);
    }
}

/* Every header line in order, for an event with the tracing extensions in an order of
 * their own, originaltype and extensions whose names start like theirs: the whole list
 * the sink receives, not only single headers. */
static void test_all_headers_in_order(void)
{
    static const char *const attrs[] = {"specversion",
                                        "1.0",
                                        "b3flags",
                                        "1",
                                        "id",
                                        "e3",
                                        "traceparent",
                                        "00-ab-cd-01",
                                        "source",
                                        "app",
                                        "b3spanid",
                                        "s1",
                                        "tracex",
                                        "keep",
                                        "type",
                                        "kyma.app.t.v1",
                                        "b3traceid",
                                        "t1",
                                        "originaltype",
                                        "t.v1",
                                        "b3sampled",
                                        "0",
                                        "bx",
                                        "keep2",
                                        "b3parentspanid",
                                        "p1",
                                        "datacontenttype",
                                        "application/json",
                                        "o",
                                        "keep3",
                                        NULL};
    static const char *const want[] = {"traceparent: 00-ab-cd-01",
                                       "X-B3-TraceId: t1",
                                       "X-B3-ParentSpanId: p1",
                                       "X-B3-SpanId: s1",
                                       "X-B3-Sampled: 0",
                                       "X-B3-Flags: 1",
                                       "Content-Type: application/json",
                                       "ce-specversion: 1.0",
                                       "ce-id: e3",
                                       "ce-source: app",
                                       "ce-tracex: keep",
                                       "ce-type: t.v1",
                                       "ce-bx: keep2",
                                       "ce-o: keep3",
                                       "Expect: ",
                                       NULL};
    jb_ce *ce = stored_event(attrs, "{}");
    jb_dreq r = {0};
    CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, false, &r), JB_OK);
    size_t i = 0;
    for (const struct curl_slist *l = r.headers; l != NULL; l = l->next, i++) {
        if (want[i] == NULL || strcmp(l->data, want[i]) != 0)
            fprintf(stderr, "header %zu: %s, want %s\n", i, l->data, want[i] ? want[i] : "(end)");
        CU_ASSERT_TRUE_FATAL(want[i] != NULL);
        CU_ASSERT_STRING_EQUAL(l->data, want[i]);
    }
    CU_ASSERT_PTR_NULL(want[i]);
    jb_dreq_free(&r);
    jb_ce_destroy(ce);
}

static void test_no_content_type_means_none(void)
{
    jb_ce *ce = stored_event(base_attrs, NULL);
    jb_dreq r = {0};
    CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, false, &r), JB_OK);
    /* "Content-Type:" with nothing after it tells curl to send none at all. */
    CU_ASSERT_STRING_EQUAL(header(r.headers, "Content-Type"), "");
    CU_ASSERT_EQUAL(r.len, 0);
    jb_dreq_free(&r);
    jb_ce_destroy(ce);
}

static void test_structured(void)
{
    static const char *const attrs[] = {
        "specversion",   "1.0",          "id",   "e2",       "source",           "app", "type",
        "kyma.app.t.v1", "originaltype", "t.v1", "b3spanid", "a2fb4a1d1a96d312", NULL};
    jb_ce *ce = stored_event(attrs, "{\"x\":[1,2]}");
    jb_dreq r = {0};
    CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, true, &r), JB_OK);
    CU_ASSERT_STRING_EQUAL(header(r.headers, "Content-Type"), "application/cloudevents+json");
    CU_ASSERT_STRING_EQUAL(header(r.headers, "X-B3-SpanId"), "a2fb4a1d1a96d312");
    CU_ASSERT_PTR_NULL(header(r.headers, "ce-id"));
    jb_ce *back = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_json((const char *)r.data, r.len, &back, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_ce_get(back, "type", NULL), "t.v1");
    CU_ASSERT_PTR_NULL(jb_ce_get(back, "originaltype", NULL));
    CU_ASSERT_PTR_NULL(jb_ce_get(back, "b3spanid", NULL));
    size_t len = 0;
    const uint8_t *d = jb_ce_data(back, &len);
    CU_ASSERT_TRUE(len == 11 && memcmp(d, "{\"x\":[1,2]}", 11) == 0);
    jb_ce_destroy(back);
    jb_dreq_free(&r);
    jb_ce_destroy(ce);
}

static void test_header_injection_dropped(void)
{
    jb_ce *ce = stored_event(base_attrs, "{}");
    /* Tracing values go out verbatim as headers: a line break must never pass. */
    jb_ce_set_str(ce, "traceparent", "00-ab\r\nX-Evil: 1");
    jb_dreq r = {0};
    CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, false, &r), JB_OK);
    CU_ASSERT_PTR_NULL(header(r.headers, "traceparent"));
    CU_ASSERT_PTR_NULL(header(r.headers, "X-Evil"));
    jb_dreq_free(&r);
    jb_ce_destroy(ce);
}

/* Headers past the first 2 KiB of lines (a long extension value) and headers
 * appended afterwards (the sink's credentials) all reach the list, in order, and
 * jb_dreq_free frees both kinds (LeakSanitizer checks). */
static void test_long_and_appended_headers(void)
{
    jb_ce *ce = stored_event(base_attrs, "{}");
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    jb_ce_set_str(ce, "bigext", big);
    jb_ce_set_str(ce, "b3spanid", "a2fb4a1d1a96d312");
    jb_dreq r = {0};
    CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, false, &r), JB_OK);
    const char *v = header(r.headers, "ce-bigext");
    CU_ASSERT_TRUE(v != NULL && strcmp(v, big) == 0);
    CU_ASSERT_STRING_EQUAL(header(r.headers, "X-B3-SpanId"), "a2fb4a1d1a96d312");
    CU_ASSERT_STRING_EQUAL(header(r.headers, "ce-id"), "e1");
    struct curl_slist *l = curl_slist_append(r.headers, "Authorization: Bearer t0ken");
    CU_ASSERT_PTR_EQUAL_FATAL(l, r.headers);
    CU_ASSERT_PTR_NOT_NULL(curl_slist_append(r.headers, "X-Sig: s"));
    CU_ASSERT_STRING_EQUAL(header(r.headers, "Authorization"), "Bearer t0ken");
    CU_ASSERT_STRING_EQUAL(header(r.headers, "X-Sig"), "s");
    size_t n = 0;
    const char *last = NULL;
    for (const struct curl_slist *x = r.headers; x != NULL; x = x->next, n++)
        last = x->data;
    CU_ASSERT_TRUE(n >= 8);
    CU_ASSERT_STRING_EQUAL(last, "X-Sig: s");
    jb_dreq_free(&r);
    CU_ASSERT_PTR_NULL(r.headers);
    /* Appended to a request without built headers: freed as well. */
    jb_dreq e = {0};
    e.headers = curl_slist_append(NULL, "Authorization: Basic cGE1NQ==");
    jb_dreq_free(&e);
    jb_ce_destroy(ce);
}

/* jb_dreq_build_in: the header block in the caller's buffer when it fits (nothing
 * allocated for it), else allocated; either way the same list as jb_dreq_build, and
 * credentials appended afterwards are freed (LeakSanitizer checks). */
static void test_build_in_buffer(void)
{
    jb_ce *ce = stored_event(base_attrs, "{}");
    jb_ce_set_str(ce, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    jb_dreq want = {0};
    CU_ASSERT_EQUAL_FATAL(jb_dreq_build(ce, false, &want), JB_OK);
    CU_ASSERT_TRUE(want.hblock_own);
    static _Alignas(void *) char big[1024], small[64];
    char *bufs[] = {big, small};
    size_t caps[] = {sizeof(big), sizeof(small)};
    for (size_t i = 0; i < 2; i++) {
        jb_ce *c2 = stored_event(base_attrs, "{}");
        jb_ce_set_str(c2, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        jb_dreq r = {0};
        CU_ASSERT_EQUAL_FATAL(jb_dreq_build_in(c2, false, bufs[i], caps[i], &r), JB_OK);
        /* Fits in 1 KiB; 64 bytes is too small. */
        CU_ASSERT_EQUAL(r.hblock == bufs[i], i == 0);
        CU_ASSERT_EQUAL(r.hblock_own, i == 1);
        const struct curl_slist *a = want.headers, *b = r.headers;
        for (; a != NULL && b != NULL; a = a->next, b = b->next)
            CU_ASSERT_STRING_EQUAL(a->data, b->data);
        CU_ASSERT_PTR_NULL(a);
        CU_ASSERT_PTR_NULL(b);
        CU_ASSERT_PTR_NOT_NULL(curl_slist_append(r.headers, "Authorization: Bearer t0ken"));
        CU_ASSERT_STRING_EQUAL(header(r.headers, "Authorization"), "Bearer t0ken");
        jb_dreq_free(&r);
        CU_ASSERT_PTR_NULL(r.hblock);
        CU_ASSERT_FALSE(r.hblock_own);
        jb_ce_destroy(c2);
    }
    jb_dreq_free(&want);
    jb_ce_destroy(ce);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"binary_cases", test_binary_cases},
        {"all_headers_in_order", test_all_headers_in_order},
        {"no_content_type_means_none", test_no_content_type_means_none},
        {"structured", test_structured},
        {"header_injection_dropped", test_header_injection_dropped},
        {"long_and_appended_headers", test_long_and_appended_headers},
        {"build_in_buffer", test_build_in_buffer},
    };
    return jb_cunit_main("dispatcher_request", NULL, NULL, cases, JB_CASES_N(cases));
}
