/* Manifest parsing: YAML and JSON, multi-document, structural errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "subscription/jb_sub.h"

static const char *const full_yaml =
    "# two subscriptions\n"
    "apiVersion: eventing.kyma-project.io/v1alpha2\n"
    "kind: Subscription\n"
    "metadata: {name: order-processor, namespace: shop}\n"
    "spec:\n"
    "  sink: http://order-processor.shop.svc.cluster.local:8080/events\n"
    "  source: myapp\n"
    "  types: [order.created.v1, order.updated.v1]\n"
    "  config: {maxInFlightMessages: 5, maxDeliver: \"7\"}\n"
    "---\n"
    "---\n"
    "apiVersion: eventing.kyma-project.io/v1alpha2\n"
    "kind: Subscription\n"
    "metadata:\n"
    "  name: exact-one\n"
    "spec:\n"
    "  sink: https://example.com/hook\n"
    "  typeMatching: exact\n"
    "  types:\n"
    "    - sap.kyma.custom.myapp.order.created.v1\n";

static void test_yaml_multi(void)
{
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_parse(full_yaml, strlen(full_yaml), "f.yaml", NULL, &v, &err),
                          JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 2);
    jb_sub *a = v.items[0], *b = v.items[1];
    CU_ASSERT_STRING_EQUAL(jb_sub_namespace(a), "shop");
    CU_ASSERT_STRING_EQUAL(jb_sub_name(a), "order-processor");
    CU_ASSERT_STRING_EQUAL(jb_sub_key(a), "shop.order-processor");
    CU_ASSERT_STRING_EQUAL(jb_sub_source(a), "myapp");
    CU_ASSERT_EQUAL(jb_sub_type_matching(a), JB_SUB_MATCH_STANDARD);
    CU_ASSERT_PTR_NULL(jb_sub_type_matching_raw(a));
    CU_ASSERT_EQUAL(jb_sub_ntypes(a), 2);
    CU_ASSERT_STRING_EQUAL(jb_sub_type(a, 1), "order.updated.v1");
    CU_ASSERT_STRING_EQUAL(jb_sub_config_value(a, "maxInFlightMessages"), "5");
    CU_ASSERT_STRING_EQUAL(jb_sub_namespace(b), "default");
    CU_ASSERT_EQUAL(jb_sub_type_matching(b), JB_SUB_MATCH_EXACT);
    CU_ASSERT_STRING_EQUAL(jb_sub_source(b), "");
    jb_cfg *cfg = jb_cfg_defaults();
    jb_sub_delivery d;
    CU_ASSERT_EQUAL(jb_sub_delivery_get(a, cfg, &d, &err), JB_OK);
    CU_ASSERT_EQUAL(d.max_in_flight, 5);
    CU_ASSERT_EQUAL(d.max_deliver, 7);
    CU_ASSERT_EQUAL(d.backoff, JB_SUB_BACKOFF_EXPONENTIAL);
    CU_ASSERT_EQUAL(d.backoff_delay_ms, 1000);
    CU_ASSERT_EQUAL(d.backoff_max_ms, 30000);
    CU_ASSERT_EQUAL(d.timeout_ms, 30000);
    CU_ASSERT_EQUAL(d.retry_after_max_ms, 300000);
    CU_ASSERT_STRING_EQUAL(d.dead_letter_sink, "");
    CU_ASSERT_EQUAL(d.content_mode, JB_SUB_CONTENT_BINARY);
    /* The store form parses back to the same thing. */
    jb_sub *c = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_sub_from_json(jb_sub_json(a), strlen(jb_sub_json(a)), &c, &err),
                          JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_sub_json(c), jb_sub_json(a));
    jb_sub_destroy(c);
    jb_cfg_destroy(cfg);
    jb_sub_vec_clear(&v);
}

static void test_json_forms(void)
{
    static const char *const docs[] = {
        "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
        "\"metadata\":{\"name\":\"a\"},\"spec\":{\"sink\":\"http://x/\",\"source\":\"s\","
        "\"types\":[\"a.b\"],\"config\":{\"maxInFlightMessages\":3}}}",
        "{\"kind\":\"List\",\"items\":[{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\","
        "\"kind\":\"Subscription\",\"metadata\":{\"name\":\"a\"},\"spec\":{\"types\":[\"a.b\"],"
        "\"config\":{\"maxInFlightMessages\":3}}}]}",
        "  [{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
        "\"metadata\":{\"name\":\"a\"},\"spec\":{\"config\":{\"maxInFlightMessages\":\"3\"}}}]",
    };
    for (size_t i = 0; i < JB_CASES_N(docs); i++) {
        jb_sub_vec v = {0};
        jb_err err = {{0}};
        CU_ASSERT_EQUAL_FATAL(jb_sub_parse(docs[i], strlen(docs[i]), "x.json", "ns1", &v, &err),
                              JB_OK);
        CU_ASSERT_EQUAL(v.n, 1);
        CU_ASSERT_STRING_EQUAL(jb_sub_namespace(v.items[0]), "ns1");
        CU_ASSERT_STRING_EQUAL(jb_sub_config_value(v.items[0], "maxInFlightMessages"), "3");
        jb_sub_vec_clear(&v);
    }
}

#define HEAD "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
static const struct {
    const char *doc;
    const char *err; /* expected message */
} bad[] = {
    {"apiVersion: v1\nkind: Subscription\nmetadata: {name: a}\nspec: {}\n",
     "f.yaml: document 1: apiVersion: must be eventing.kyma-project.io/v1alpha2"},
    {"apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Pod\nmetadata: {name: a}\nspec: {}\n",
     "f.yaml: document 1: kind: must be Subscription"},
    {HEAD "spec: {}\n", "f.yaml: document 1: metadata: missing or not a map"},
    {HEAD "metadata: {namespace: x}\nspec: {}\n", "f.yaml: document 1: metadata.name: missing"},
    {HEAD "metadata: {name: Upper}\nspec: {}\n",
     "f.yaml: document 1: metadata.name: must be a lower-case DNS-1123 subdomain (a-z, 0-9, '-', "
     "'.'; at most 253 characters)"},
    {HEAD "metadata: {name: a, namespace: a.b}\nspec: {}\n",
     "f.yaml: document 1: metadata.namespace: must be a lower-case DNS-1123 label (a-z, 0-9, "
     "'-'; at most 63 characters)"},
    {HEAD "metadata: {name: a}\n", "f.yaml: document 1: spec: missing or not a map"},
    {HEAD "metadata: {name: a}\nspec: {types: order.created.v1}\n",
     "f.yaml: document 1: spec.types: must be a list of strings"},
    {HEAD "metadata: {name: a}\nspec: {types: [a.b, [x]]}\n",
     "f.yaml: document 1: spec.types[1]: must be a string"},
    {HEAD "metadata: {name: a}\nspec: {sink: [x]}\n",
     "f.yaml: document 1: spec.sink: must be a string"},
    {HEAD "metadata: {name: a}\nspec: {typematching: exact}\n",
     "f.yaml: document 1: spec.typematching: unknown field"},
    {HEAD "metadata: {name: a}\nspec: {config: {maxInFlightMessages: {a: b}}}\n",
     "f.yaml: document 1: spec.config.maxInFlightMessages: must be a string"},
    {HEAD "metadata: {name: a}\nspec: {}\n---\n" HEAD "metadata: {name: b}\n",
     "f.yaml: document 2: spec: missing or not a map"},
    {HEAD "metadata: {name: a}\nspec: {sink: [unclosed\n",
     "f.yaml: document 1: line 5 column 1: did not find expected ',' or ']'"},
    {"- a\n- b\n", "f.yaml: document 1: not a map"},
    {"a: &a [*a, *a]\n", "f.yaml: document 1: too deeply nested or too large (aliases?)"},
};

static void test_structural_errors(void)
{
    for (size_t i = 0; i < JB_CASES_N(bad); i++) {
        jb_sub_vec v = {0};
        jb_err err = {{0}};
        jb_status st = jb_sub_parse(bad[i].doc, strlen(bad[i].doc), "f.yaml", NULL, &v, &err);
        CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
        CU_ASSERT_EQUAL(v.n, 0);
        if (strcmp(err.msg, bad[i].err) != 0)
            fprintf(stderr, "case %zu: got  %s\n        want %s\n", i, err.msg, bad[i].err);
        CU_ASSERT_STRING_EQUAL(err.msg, bad[i].err);
        jb_sub_vec_clear(&v);
    }
}

static void test_invalid_json(void)
{
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    const char *doc = "{\"apiVersion\": ";
    CU_ASSERT_EQUAL(jb_sub_parse(doc, strlen(doc), "g.json", NULL, &v, &err), JB_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "g.json: document 1: invalid JSON"));
}

/* An invalid spec still parses: validation reports it later, as status. */
static void test_invalid_spec_parses(void)
{
    const char *doc = HEAD "metadata: {name: a}\nspec: {typeMatching: \"\", types: []}\n";
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_parse(doc, strlen(doc), "f", NULL, &v, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_type_matching(v.items[0]), JB_SUB_MATCH_INVALID);
    CU_ASSERT_STRING_EQUAL(jb_sub_type_matching_raw(v.items[0]), "");
    jb_sub_vec_clear(&v);
    /* `typeMatching:` with no value is null: absent, so standard. */
    doc = HEAD "metadata: {name: a}\nspec:\n  typeMatching:\n";
    CU_ASSERT_EQUAL_FATAL(jb_sub_parse(doc, strlen(doc), "f", NULL, &v, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_type_matching(v.items[0]), JB_SUB_MATCH_STANDARD);
    jb_sub_vec_clear(&v);
}

static void test_parse_dir(void)
{
    char dir[] = "/tmp/jbsubtestXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof(p), "%s/b.yaml", dir);
    FILE *f = fopen(p, "w");
    fputs(full_yaml, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/a.json", dir);
    f = fopen(p, "w");
    fputs("{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
          "\"metadata\":{\"name\":\"first\"},\"spec\":{}}",
          f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/notes.txt", dir);
    f = fopen(p, "w");
    fputs("not a manifest", f);
    fclose(f);
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_sub_parse_path(dir, NULL, &v, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 3);
    CU_ASSERT_STRING_EQUAL(jb_sub_name(v.items[0]), "first");
    CU_ASSERT_STRING_EQUAL(jb_sub_name(v.items[2]), "exact-one");
    jb_sub_vec_clear(&v);
    snprintf(p, sizeof(p), "%s/c.yml", dir);
    f = fopen(p, "w");
    fputs(HEAD "metadata: {name: x}\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(jb_sub_parse_path(dir, NULL, &v, &err), JB_ERR_INVALID);
    CU_ASSERT_EQUAL(v.n, 0);
    char want[300];
    snprintf(want, sizeof(want), "%s/c.yml: document 1: spec: missing or not a map", dir);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    CU_ASSERT_EQUAL(jb_sub_parse_path("/nonexistent/x.yaml", NULL, &v, &err), JB_ERR_NOT_FOUND);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Every manifest in examples/subscriptions parses and is valid. */
static void test_examples(void)
{
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(
        jb_sub_parse_path(JB_SOURCE_DIR "/examples/subscriptions", NULL, &v, &err), JB_OK);
    CU_ASSERT_TRUE(v.n >= 3);
    jb_cfg *cfg = jb_cfg_defaults();
    for (size_t i = 0; i < v.n; i++) {
        jb_sub_errors e = {0};
        CU_ASSERT_EQUAL(jb_sub_validate(v.items[i], cfg, &e), JB_OK);
        if (e.n > 0)
            fprintf(stderr, "%s: %s\n", jb_sub_name(v.items[i]), e.message);
        CU_ASSERT_EQUAL(e.n, 0);
        jb_sub_errors_free(&e);
    }
    jb_cfg_destroy(cfg);
    jb_sub_vec_clear(&v);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"yaml multi-document", test_yaml_multi},
        {"json object, List and array", test_json_forms},
        {"structural errors name file, document and field", test_structural_errors},
        {"invalid json", test_invalid_json},
        {"invalid spec values still parse", test_invalid_spec_parses},
        {"directory", test_parse_dir},
        {"examples/subscriptions are valid", test_examples},
    };
    return jb_cunit_main("sub_manifest", NULL, NULL, cases, JB_CASES_N(cases));
}
