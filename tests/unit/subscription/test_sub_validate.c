/* Validation rules with Kyma's messages, delivery settings, cleaning, subjects and
 * consumer names, and the publisher's subscribed event list. Table-driven. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "subscription/jb_sub.h"

#define HEAD "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"

static jb_sub *parse1(const char *ns, const char *spec)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), HEAD "metadata: {name: test, namespace: %s}\nspec:\n%s", ns, spec);
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    if (jb_sub_parse(buf, strlen(buf), "t", NULL, &v, &err) != JB_OK || v.n != 1) {
        fprintf(stderr, "parse failed: %s\n%s\n", err.msg, buf);
        jb_sub_vec_clear(&v);
        return NULL;
    }
    jb_sub *s = v.items[0];
    v.n = 0;
    jb_sub_vec_clear(&v);
    return s;
}

#define OK_SINK "  sink: http://sink.test.svc.cluster.local\n"
#define STD     "  source: app\n"
#define TYPES   "  types: [order.created.v1]\n"

static const struct {
    const char *name;
    jb_cfg_sink_validation mode;
    const char *allowed;
    const char *spec;
    const char *want; /* aggregate message, "" when valid */
} rules[] = {
    {"valid standard", JB_SINK_URL, "", OK_SINK STD TYPES, ""},
    {"valid exact without source", JB_SINK_URL, "",
     OK_SINK "  typeMatching: exact\n  types: [sap.kyma.custom.app.order.created.v1]\n", ""},
    {"typeMatching invalid", JB_SINK_URL, "", OK_SINK STD TYPES "  typeMatching: fuzzy\n",
     "spec.typeMatching: Invalid value: \"fuzzy\": must be a valid TypeMatching value exact or "
     "standard"},
    {"typeMatching empty string", JB_SINK_URL, "", OK_SINK STD TYPES "  typeMatching: \"\"\n",
     "spec.typeMatching: Invalid value: \"\": must be a valid TypeMatching value exact or "
     "standard"},
    {"source empty (standard)", JB_SINK_URL, "", OK_SINK TYPES,
     "spec.source: Invalid value: \"\": must not be empty"},
    /* Kyma reads sources with Go's URL parser: these are valid there (section 2.3). */
    {"source with a space (Kyma: valid)", JB_SINK_URL, "", OK_SINK TYPES "  source: \"my app\"\n",
     ""},
    {"source s>o>*u*r>c.e (Kyma: valid)", JB_SINK_URL, "",
     OK_SINK TYPES "  source: \"s>o>*u*r>c.e\"\n", ""},
    {"source system>prod (Kyma: valid)", JB_SINK_URL, "",
     OK_SINK TYPES "  source: \"system>prod\"\n", ""},
    {"source with a scheme colon", JB_SINK_URL, "", OK_SINK TYPES "  source: \"a+b.c:x y\"\n", ""},
    {"source missing scheme", JB_SINK_URL, "", OK_SINK TYPES "  source: \":app\"\n",
     "spec.source: Invalid value: \":app\": must be valid as per RFC 3986"},
    {"source control byte", JB_SINK_URL, "", OK_SINK TYPES "  source: \"app\\e[1m\"\n",
     "spec.source: Invalid value: \"app\\x1b[1m\": must be valid as per RFC 3986"},
    {"source percent at the end", JB_SINK_URL, "", OK_SINK TYPES "  source: \"app%4\"\n",
     "spec.source: Invalid value: \"app%4\": must be valid as per RFC 3986"},
    {"source bad escape", JB_SINK_URL, "", OK_SINK TYPES "  source: \"app%zz\"\n",
     "spec.source: Invalid value: \"app%zz\": must be valid as per RFC 3986"},
    {"source colon in first segment", JB_SINK_URL, "", OK_SINK TYPES "  source: \"1a:b\"\n",
     "spec.source: Invalid value: \"1a:b\": must be valid as per RFC 3986"},
    {"source URI with scheme ok", JB_SINK_URL, "",
     OK_SINK TYPES "  source: \"urn:sap:app/x?y#z\"\n", ""},
    {"source cleans to empty", JB_SINK_URL, "", OK_SINK TYPES "  source: \"./*\"\n",
     "spec.source: Invalid value: \"./*\": must not be empty after cleaning"},
    {"no types", JB_SINK_URL, "", OK_SINK STD,
     "spec.types: Invalid value: \"\": must not be empty"},
    {"empty types list", JB_SINK_URL, "", OK_SINK STD "  types: []\n",
     "spec.types: Invalid value: \"\": must not be empty"},
    {"duplicate types", JB_SINK_URL, "", OK_SINK STD "  types: [a.b, c.d, a.b, a.b, c.d]\n",
     "spec.types: Invalid value: \"a.b,c.d\": must not have duplicate types"},
    {"empty type", JB_SINK_URL, "", OK_SINK STD "  types: [a.b, \"\"]\n",
     "spec.types: Invalid value: \"\": must not be of length zero"},
    {"one segment", JB_SINK_URL, "", OK_SINK STD "  types: [orders]\n",
     "spec.types: Invalid value: \"orders\": must have minimum 2 segments"},
    {"standard with prefix", JB_SINK_URL, "",
     OK_SINK STD "  types: [sap.kyma.custom.app.order.created.v1]\n",
     "spec.types: Invalid value: \"sap.kyma.custom.app.order.created.v1\": must not have "
     "sap.kyma.custom as type prefix"},
    {"whitespace type", JB_SINK_URL, "", OK_SINK STD "  types: [\" . \"]\n",
     "spec.types: Invalid value: \" . \": must not have empty segments after cleaning"},
    {"empty segment", JB_SINK_URL, "", OK_SINK STD "  types: [order..created]\n",
     "spec.types: Invalid value: \"order..created\": must not have empty segments after "
     "cleaning"},
    {"exact with wildcard", JB_SINK_URL, "",
     OK_SINK "  typeMatching: exact\n  types: [order.*.v1]\n",
     "spec.types: Invalid value: \"order.*.v1\": must not contain NATS wildcard tokens"},
    {"exact with > token", JB_SINK_URL, "", OK_SINK "  typeMatching: exact\n  types: [order.>]\n",
     "spec.types: Invalid value: \"order.>\": must not contain NATS wildcard tokens"},
    {"exact with * inside a token (Kyma: valid)", JB_SINK_URL, "",
     OK_SINK "  typeMatching: exact\n  types: [\"order.cre-\xc3\xa4+t*ed.v2\", a.b>c.v1]\n", ""},
    {"exact with whitespace", JB_SINK_URL, "",
     OK_SINK "  typeMatching: exact\n  types: [\"order.cre ated.v1\"]\n",
     "spec.types: Invalid value: \"order.cre ated.v1\": must not contain whitespace or control "
     "characters"},
    {"two types, one subject", JB_SINK_URL, "",
     OK_SINK STD "  types: [order.created.v1, \"order.cre ated.v1\"]\n",
     "spec.types: Invalid value: \"order.created.v1,order.cre ated.v1\": must not have types "
     "that clean to the same subject kyma.app.order.created.v1"},
    {"maxInFlightMessages not int", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {maxInFlightMessages: ten}\n",
     "spec.config: Invalid value: \"ten\": maxInFlightMessages must be a stringified int value"},
    {"maxInFlightMessages zero", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {maxInFlightMessages: \"0\"}\n",
     "spec.config: Invalid value: \"0\": maxInFlightMessages must be between 1 and 100000"},
    {"maxDeliver", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {maxDeliver: 1x}\n",
     "spec.config: Invalid value: \"1x\": maxDeliver must be a stringified int value"},
    {"maxDeliver zero", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {maxDeliver: \"0\"}\n",
     "spec.config: Invalid value: \"0\": maxDeliver must be between 1 and 1000000"},
    {"backoffPolicy", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {backoffPolicy: random}\n",
     "spec.config: Invalid value: \"random\": backoffPolicy must be exponential, linear or "
     "constant"},
    {"backoffDelay", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {backoffDelay: 1s}\n",
     "spec.config: Invalid value: \"1s\": backoffDelay must be an ISO 8601 duration such as "
     "PT1S"},
    {"backoffDelay zero", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {backoffDelay: PT0S}\n",
     "spec.config: Invalid value: \"PT0S\": backoffDelay must be greater than zero"},
    {"backoffMax below delay", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {backoffDelay: PT10S, backoffMax: PT5S}\n",
     "spec.config: Invalid value: \"PT5S\": backoffMax must not be less than backoffDelay"},
    {"timeout", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {timeout: soon}\n",
     "spec.config: Invalid value: \"soon\": timeout must be an ISO 8601 duration such as PT1S"},
    {"retryAfterMax zero ok", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {retryAfterMax: PT0S}\n", ""},
    {"retryAfterMax", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {retryAfterMax: \"5\"}\n",
     "spec.config: Invalid value: \"5\": retryAfterMax must be an ISO 8601 duration such as "
     "PT1S"},
    {"deadLetterSink scheme", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {deadLetterSink: \"ftp://x\"}\n",
     "spec.config: Invalid value: \"ftp://x\": deadLetterSink must have URL scheme 'http' or "
     "'https'"},
    {"deadLetterSink no host", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {deadLetterSink: \"http:///x\"}\n",
     "spec.config: Invalid value: \"http:///x\": deadLetterSink: failed to parse URL: empty "
     "host"},
    {"contentMode", JB_SINK_URL, "", OK_SINK STD TYPES "  config: {contentMode: avro}\n",
     "spec.config: Invalid value: \"avro\": contentMode must be BINARY or STRUCTURED"},
    {"all config keys valid", JB_SINK_URL, "",
     OK_SINK STD TYPES "  config: {maxInFlightMessages: \"20\", maxDeliver: \"5\", backoffPolicy: "
                       "linear, backoffDelay: PT2S, backoffMax: PT1M, timeout: PT10S, "
                       "retryAfterMax: PT5M, deadLetterSink: \"http://dl.test/x\", "
                       "contentMode: STRUCTURED, qos: AT_LEAST_ONCE}\n",
     ""},
    {"sink empty", JB_SINK_URL, "", STD TYPES, "spec.sink: Invalid value: \"\": must not be empty"},
    {"sink scheme", JB_SINK_URL, "", STD TYPES "  sink: ftp://x\n",
     "spec.sink: Invalid value: \"ftp://x\": must have URL scheme 'http' or 'https'"},
    {"sink bad port", JB_SINK_URL, "", STD TYPES "  sink: \"http://x:99999/\"\n",
     "spec.sink: Invalid value: \"http://x:99999/\": failed to parse subscription sink URL: "
     "invalid port"},
    {"sink url mode any host", JB_SINK_URL, "", STD TYPES "  sink: \"http://127.0.0.1:9/e\"\n", ""},
    {"kubernetes suffix", JB_SINK_KUBERNETES, "", STD TYPES "  sink: \"http://localhost:8080\"\n",
     "spec.sink: Invalid value: \"http://localhost:8080\": must have valid sink URL suffix "
     "svc.cluster.local"},
    {"kubernetes sub-domains", JB_SINK_KUBERNETES, "",
     STD TYPES "  sink: \"http://a.b.test.svc.cluster.local\"\n",
     "spec.sink: Invalid value: \"http://a.b.test.svc.cluster.local\": must have sink URL with "
     "5 sub-domains: a.b.test.svc.cluster.local"},
    {"kubernetes namespace", JB_SINK_KUBERNETES, "",
     STD TYPES "  sink: \"http://sink.other.svc.cluster.local\"\n",
     "metadata.namespace: Invalid value: \"http://sink.other.svc.cluster.local\": must have the "
     "same namespace as the subscriber: other"},
    {"kubernetes ok", JB_SINK_KUBERNETES, "", OK_SINK STD TYPES, ""},
    {"allowlist rejects", JB_SINK_ALLOWLIST, "a.example, *.b.example",
     STD TYPES "  sink: \"http://c.example/x\"\n",
     "spec.sink: Invalid value: \"http://c.example/x\": must have a host listed in "
     "SINK_ALLOWED_HOSTS"},
    {"allowlist exact", JB_SINK_ALLOWLIST, "a.example, *.b.example",
     STD TYPES "  sink: \"http://A.example:8080/x\"\n", ""},
    {"allowlist wildcard", JB_SINK_ALLOWLIST, "a.example, *.b.example",
     STD TYPES "  sink: \"https://x.b.example/\"\n", ""},
    {"allowlist dead letter", JB_SINK_ALLOWLIST, "a.example",
     STD TYPES "  sink: \"http://a.example/\"\n  config: {deadLetterSink: \"http://z.example\"}\n",
     "spec.config: Invalid value: \"http://z.example\": deadLetterSink must have a host listed "
     "in SINK_ALLOWED_HOSTS"},
    {"several errors aggregate", JB_SINK_URL, "", "  types: [x]\n  config: {maxDeliver: no}\n",
     "[spec.source: Invalid value: \"\": must not be empty, spec.types: Invalid value: \"x\": "
     "must have minimum 2 segments, spec.config: Invalid value: \"no\": maxDeliver must be a "
     "stringified int value, spec.sink: Invalid value: \"\": must not be empty]"},
    {"go quoting", JB_SINK_URL, "", OK_SINK STD "  types: [\"a\\\"b\\tc\"]\n",
     "spec.types: Invalid value: \"a\\\"b\\tc\": must have minimum 2 segments"},
};

static void test_rules(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    char *saved = cfg->sink_allowed_hosts;
    for (size_t i = 0; i < JB_CASES_N(rules); i++) {
        jb_sub *s = parse1("test", rules[i].spec);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        cfg->sink_validation = rules[i].mode;
        cfg->sink_allowed_hosts = (char *)rules[i].allowed;
        jb_sub_errors e = {0};
        CU_ASSERT_EQUAL_FATAL(jb_sub_validate(s, cfg, &e), JB_OK);
        if (strcmp(e.message, rules[i].want) != 0)
            fprintf(stderr, "\n%s:\n  got  %s\n  want %s\n", rules[i].name, e.message,
                    rules[i].want);
        CU_ASSERT_STRING_EQUAL(e.message, rules[i].want);
        CU_ASSERT_EQUAL(e.n == 0, rules[i].want[0] == '\0');
        /* Invalid subscriptions need no consumers. */
        jb_sub_consumer_list l = {0};
        jb_err err;
        CU_ASSERT_EQUAL(jb_sub_consumers(s, cfg, &l, &err) == JB_OK, e.n == 0);
        jb_sub_consumer_list_free(&l);
        jb_sub_errors_free(&e);
        jb_sub_destroy(s);
    }
    cfg->sink_allowed_hosts = saved;
    jb_cfg_destroy(cfg);
}

static void test_delivery_values(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    jb_sub *s = parse1("test", OK_SINK STD TYPES
                       "  config: {maxInFlightMessages: \"20\", maxDeliver: \"5\", backoffPolicy: "
                       "constant, backoffDelay: PT2S, backoffMax: PT1M30S, timeout: PT0.5S, "
                       "retryAfterMax: PT0S, deadLetterSink: \"http://dl.test/x\", contentMode: "
                       "structured}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    jb_sub_delivery d;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_sub_delivery_get(s, cfg, &d, &err), JB_OK);
    CU_ASSERT_EQUAL(d.max_in_flight, 20);
    CU_ASSERT_EQUAL(d.max_deliver, 5);
    CU_ASSERT_EQUAL(d.backoff, JB_SUB_BACKOFF_CONSTANT);
    CU_ASSERT_EQUAL(d.backoff_delay_ms, 2000);
    CU_ASSERT_EQUAL(d.backoff_max_ms, 90000);
    CU_ASSERT_EQUAL(d.timeout_ms, 500);
    CU_ASSERT_EQUAL(d.retry_after_max_ms, 0);
    CU_ASSERT_STRING_EQUAL(d.dead_letter_sink, "http://dl.test/x");
    CU_ASSERT_EQUAL(d.content_mode, JB_SUB_CONTENT_STRUCTURED);
    jb_sub_destroy(s);
    /* DEFAULT_MAX_IN_FLIGHT_MESSAGES applies when the key is absent. */
    cfg->default_max_in_flight = 42;
    s = parse1("test", OK_SINK STD TYPES);
    CU_ASSERT_EQUAL(jb_sub_delivery_get(s, cfg, &d, &err), JB_OK);
    CU_ASSERT_EQUAL(d.max_in_flight, 42);
    jb_sub_destroy(s);
    /* A backoffDelay above the default cap, without backoffMax, raises the cap. */
    s = parse1("test", OK_SINK STD TYPES "  config: {backoffDelay: PT1M}\n");
    CU_ASSERT_EQUAL(jb_sub_delivery_get(s, cfg, &d, &err), JB_OK);
    CU_ASSERT_EQUAL(d.backoff_delay_ms, 60000);
    CU_ASSERT_EQUAL(d.backoff_max_ms, 60000);
    jb_sub_destroy(s);
    s = parse1("test", OK_SINK STD TYPES "  config: {timeout: x}\n");
    CU_ASSERT_EQUAL(jb_sub_delivery_get(s, cfg, &d, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "spec.config: Invalid value: \"x\": timeout must be an ISO "
                                    "8601 duration such as PT1S");
    jb_sub_destroy(s);
    jb_cfg_destroy(cfg);
}

/* DESIGN.md 2.3 A examples, from Kyma's own tests, and more. */
static const struct {
    bool source;
    const char *in;
    const char *want;
} cleans[] = {
    {true, "source1", "source1"},
    {true, "s>o>*u*r>c.e", "source"},
    {true, " my/app\\x.y\t", "myappxy"},
    {true, "", ""},
    {false, "o-rder.creat ed.v1", "o-rder.created.v1"},
    {false, "order.cre-\xc3\xa4+t*ed.v2", "order.cre-\xc3\xa4+ted.v2"},
    {false, "a>b*c/d\\e f\ng.v1", "abcdefg.v1"},
    {false, "sap.kyma.custom.x", "sap.kyma.custom.x"},
};

static void test_cleaning(void)
{
    for (size_t i = 0; i < JB_CASES_N(cleans); i++) {
        char out[64];
        size_t len = strlen(cleans[i].in);
        size_t n = cleans[i].source ? jb_sub_clean_source(cleans[i].in, len, out, sizeof(out))
                                    : jb_sub_clean_type(cleans[i].in, len, out, sizeof(out));
        CU_ASSERT_EQUAL(n, strlen(cleans[i].want));
        CU_ASSERT_STRING_EQUAL(out, cleans[i].want);
    }
    /* Too small a buffer: the needed length comes back, the output stays terminated. */
    char small[4];
    CU_ASSERT_EQUAL(jb_sub_clean_type("order.created", 13, small, sizeof(small)), 13);
    CU_ASSERT_EQUAL(strlen(small), 3);
    /* A length, not a NUL, ends the input. */
    char out[16];
    CU_ASSERT_EQUAL(jb_sub_clean_source("a.bcd", 3, out, sizeof(out)), 2);
    CU_ASSERT_STRING_EQUAL(out, "ab");
}

/* Source validity (section 2.3), shared by the publisher and spec.source: Kyma
 * reads sources with Go's url.Parse, which accepts these. */
static void test_source_valid(void)
{
    static const struct {
        const char *in;
        bool ok;
    } cases[] = {
        {"s>o>*u*r>c.e", true},
        {"system>prod", true},
        {"my app", true},
        {"source1", true},
        {"/shop/orders?x=1#frag", true},
        {"https://example.com/x", true},
        {"urn:sap:app", true},
        {"a+b-c.d:rest", true},
        {"a/b:c", true},       /* the colon is past the first segment */
        {"x?y:z", true},       /* ... or in the query */
        {"caf\xc3\xa9", true}, /* UTF-8 */
        {"100%25", true},
        {"", false},
        {"a\x01b", false},
        {"tab\there", false},
        {"del\x7f", false},
        {"%", false},
        {"a%4", false},
        {"a%zz", false},
        {":x", false},
        {"1a:b", false},
        {"my app:x", false},
        {"a_b:c", false},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        bool got = jb_sub_source_valid(cases[i].in, strlen(cases[i].in));
        CU_ASSERT_EQUAL(got, cases[i].ok);
        if (got != cases[i].ok)
            fprintf(stderr, "source case %zu (%s): got %d\n", i, cases[i].in, got);
    }
}

/* Exact types: a token containing '*' or '>' is a NATS literal (Kyma: valid); a
 * token that is exactly one of them is a wildcard. */
static void test_exact_subject_problem(void)
{
    static const struct {
        const char *in, *want; /* want NULL: fine */
    } cases[] = {
        {"kyma.order.cre-\xc3\xa4+t*ed.v2", NULL},
        {"kyma.a>b.*c.d*", NULL},
        {"kyma.order.*.v1", "must not contain NATS wildcard tokens"},
        {"kyma.order.>", "must not contain NATS wildcard tokens"},
        {"kyma.order.cre ated", "must not contain whitespace or control characters"},
        {"kyma.order.\x01", "must not contain whitespace or control characters"},
        {"kyma..a", "must not have empty segments"},
        {"kyma.a.", "must not have empty segments"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const char *got = jb_sub_exact_subject_problem(cases[i].in);
        if (cases[i].want == NULL) {
            CU_ASSERT_PTR_NULL(got);
        } else {
            CU_ASSERT_STRING_EQUAL(got ? got : "(null)", cases[i].want);
        }
    }
}

static const struct {
    const char *spec;
    const char *type;
    const char *subject;
} subjects[] = {
    {STD, "order.created.v1", "kyma.app.order.created.v1"},
    {"  source: \"s>o>*u*r>c.e\"\n", "o-rder.creat ed.v1", "kyma.source.o-rder.created.v1"},
    {"  typeMatching: exact\n", "sap.kyma.custom.app.order.created.v1",
     "kyma.sap.kyma.custom.app.order.created.v1"},
    {"  typeMatching: exact\n  source: ignored\n", "a.b c", NULL},
    {"  typeMatching: exact\n", "order.cre-\xc3\xa4+t*ed.v2", "kyma.order.cre-\xc3\xa4+t*ed.v2"},
    {"  typeMatching: exact\n", "order.*.v2", NULL},
    {"  source: \"my app\"\n", "order.created.v1", "kyma.myapp.order.created.v1"},
};

static void test_subjects(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    for (size_t i = 0; i < JB_CASES_N(subjects); i++) {
        jb_sub *s = parse1("test", subjects[i].spec);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        char *subj = NULL;
        jb_err err;
        jb_status st = jb_sub_subject(s, cfg, subjects[i].type, &subj, &err);
        if (subjects[i].subject == NULL) {
            CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
        } else {
            CU_ASSERT_EQUAL_FATAL(st, JB_OK);
            CU_ASSERT_STRING_EQUAL(subj, subjects[i].subject);
        }
        free(subj);
        jb_sub_destroy(s);
    }
    jb_cfg_destroy(cfg);
}

static void test_consumer_name(void)
{
    char out[33];
    jb_sub_consumer_name("test", "test", "kyma.commerce.order.created.v1", out);
    CU_ASSERT_STRING_EQUAL(out, "5ddf41966d8084724770dca95a2f7452");
    jb_cfg *cfg = jb_cfg_defaults();
    jb_sub *s =
        parse1("test", OK_SINK "  source: commerce\n  types: [order.created.v1, "
                               "order.updated.v1]\n  config: {maxInFlightMessages: \"7\"}\n");
    jb_sub_consumer_list l = {0};
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_sub_consumers(s, cfg, &l, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    CU_ASSERT_STRING_EQUAL(l.items[0].consumer, "5ddf41966d8084724770dca95a2f7452");
    CU_ASSERT_STRING_EQUAL(l.items[0].subject, "kyma.commerce.order.created.v1");
    CU_ASSERT_STRING_EQUAL(l.items[1].type, "order.updated.v1");
    CU_ASSERT_STRING_EQUAL(l.items[1].ns, "test");
    CU_ASSERT_STRING_EQUAL(l.items[1].sink, "http://sink.test.svc.cluster.local");
    CU_ASSERT_EQUAL(l.items[1].delivery.max_in_flight, 7);
    jb_sub_consumer c;
    CU_ASSERT_TRUE(jb_sub_consumer_copy(&c, &l.items[1]));
    CU_ASSERT_STRING_EQUAL(c.subject, "kyma.commerce.order.updated.v1");
    jb_sub_consumer_free(&c);
    jb_sub_consumer_list_free(&l);
    jb_sub_destroy(s);
    jb_cfg_destroy(cfg);
}

static void test_subscribed(void)
{
    static const char *const docs =
        HEAD "metadata: {name: a}\nspec:\n  source: myapp\n  types: [order.created.v1, "
             "order.created.v1x, flat]\n---\n" HEAD
             "metadata: {name: b}\nspec:\n  source: other\n  types: [x.v1]\n---\n" HEAD
             "metadata: {name: c}\nspec:\n  typeMatching: exact\n  types: "
             "[sap.kyma.custom.myapp.order.created.v1, sap.kyma.custom.myapp2.y.v1, "
             "sap.kyma.custom.myapp.customer.deleted.v2]\n";
    jb_sub_vec v = {0};
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_sub_parse(docs, strlen(docs), "t", NULL, &v, &err), JB_OK);
    jb_cfg *cfg = jb_cfg_defaults();
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(jb_sub_subscribed_json(&v, cfg, "myapp", 5, &json, &len), JB_OK);
    CU_ASSERT_STRING_EQUAL(json, "{\"eventsInfo\":[{\"name\":\"order.created\",\"version\":\"v1\"},"
                                 "{\"name\":\"order.created\",\"version\":\"v1x\"},"
                                 "{\"name\":\"customer.deleted\",\"version\":\"v2\"}]}");
    CU_ASSERT_EQUAL(len, strlen(json));
    free(json);
    CU_ASSERT_EQUAL_FATAL(jb_sub_subscribed_json(&v, cfg, "nobody", 6, &json, &len), JB_OK);
    CU_ASSERT_STRING_EQUAL(json, "{\"eventsInfo\":[]}");
    free(json);
    jb_cfg_destroy(cfg);
    jb_sub_vec_clear(&v);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"every validation rule", test_rules},
        {"delivery settings", test_delivery_values},
        {"cleaning", test_cleaning},
        {"source validity as Kyma (Go url.Parse)", test_source_valid},
        {"exact types: wildcard tokens, literals", test_exact_subject_problem},
        {"subjects", test_subjects},
        {"consumer names and list", test_consumer_name},
        {"subscribed event types", test_subscribed},
    };
    return jb_cunit_main("sub_validate", NULL, NULL, cases, JB_CASES_N(cases));
}
