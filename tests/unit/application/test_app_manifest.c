/* Application manifests: YAML and JSON, the jetbridge.io annotations, errors that
 * name the field, the store form, reference counting. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "application/jb_app.h"
#include "jb_cunit.h"

#define HEAD "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"

static const char *const two_yaml =
    "# a commerce system and a marketing tool\n" HEAD "metadata:\n"
    "  name: commerce\n"
    "  namespace: ignored\n"
    "  labels: {Application-Type: sap-commerce, team: shop}\n"
    "  annotations:\n"
    "    jetbridge.io/allowed-sources: \" erp, legacy system \"\n"
    "    jetbridge.io/allowed-types: order.,sap.kyma.custom.commerce.\n"
    "    jetbridge.io/rate-limit: 200/s,burst=400\n"
    "    other.example.com/x: kept\n"
    "spec:\n"
    "  description: Commerce\n"
    "  skipInstallation: false\n"
    "  compassMetadata:\n"
    "    authentication:\n"
    "      clientIds: [commerce-client, 7c3a-id]\n"
    "---\n"
    "---\n" HEAD "metadata: {name: marketing}\n";

static void test_yaml_multi(void)
{
    jb_app_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_app_parse(two_yaml, strlen(two_yaml), "a.yaml", &v, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 2);
    const jb_app *a = v.items[0], *b = v.items[1];
    CU_ASSERT_STRING_EQUAL(jb_app_name(a), "commerce");
    CU_ASSERT_STRING_EQUAL(jb_app_type_label(a), "sap-commerce");
    CU_ASSERT_STRING_EQUAL(jb_app_clean_name(a), "sap-commerce");
    CU_ASSERT_EQUAL(jb_app_client_id_count(a), 2);
    CU_ASSERT_STRING_EQUAL(jb_app_client_id(a, 1), "7c3a-id");
    CU_ASSERT_PTR_NULL(jb_app_client_id(a, 2));
    CU_ASSERT_EQUAL_FATAL(jb_app_allowed_source_count(a), 2);
    CU_ASSERT_STRING_EQUAL(jb_app_allowed_source(a, 0), "erp");
    CU_ASSERT_STRING_EQUAL(jb_app_allowed_source(a, 1), "legacy system");
    CU_ASSERT_EQUAL_FATAL(jb_app_allowed_type_count(a), 2);
    CU_ASSERT_STRING_EQUAL(jb_app_allowed_type(a, 1), "sap.kyma.custom.commerce.");
    double rate = 0;
    uint32_t burst = 0;
    CU_ASSERT_TRUE(jb_app_rate_limit(a, &rate, &burst));
    CU_ASSERT_DOUBLE_EQUAL(rate, 200.0, 1e-9);
    CU_ASSERT_EQUAL(burst, 400);
    CU_ASSERT_FALSE(jb_app_kubernetes_owned(a));
    /* The second one has nothing of jetbridge's own: defaults. */
    CU_ASSERT_STRING_EQUAL(jb_app_name(b), "marketing");
    CU_ASSERT_STRING_EQUAL(jb_app_type_label(b), "");
    CU_ASSERT_STRING_EQUAL(jb_app_clean_name(b), "marketing");
    CU_ASSERT_EQUAL(jb_app_client_id_count(b), 0);
    CU_ASSERT_EQUAL(jb_app_allowed_source_count(b), 0);
    CU_ASSERT_EQUAL(jb_app_allowed_type_count(b), 0);
    CU_ASSERT_FALSE(jb_app_rate_limit(b, NULL, NULL));
    /* Canonical form: namespace dropped, spec kept whole, and it parses back. */
    CU_ASSERT_PTR_NULL(strstr(jb_app_json(a), "ignored"));
    CU_ASSERT_PTR_NOT_NULL(strstr(jb_app_json(a), "\"skipInstallation\":\"false\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(jb_app_json(a), "other.example.com/x"));
    jb_app *c = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_from_json(jb_app_json(a), strlen(jb_app_json(a)), &c, &err),
                          JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_app_json(c), jb_app_json(a));
    CU_ASSERT_TRUE(jb_app_equal(a, c));
    CU_ASSERT_FALSE(jb_app_equal(a, b));
    jb_app_destroy(c);
    jb_app_vec_clear(&v);
}

/* What the API server returns: JSON with fields the store does not keep. */
static void test_from_cjson_api_object(void)
{
    static const char api[] =
        "{\"apiVersion\":\"applicationconnector.kyma-project.io/v1alpha1\",\"kind\":"
        "\"Application\",\"metadata\":{\"name\":\"erp\",\"uid\":\"u-1\",\"resourceVersion\":"
        "\"42\",\"creationTimestamp\":\"2026-01-02T03:04:05Z\",\"managedFields\":[],"
        "\"annotations\":{\"jetbridge.io/managed-by\":\"kubernetes\"}},\"spec\":{},"
        "\"status\":{\"installationStatus\":{\"status\":\"deployed\"}}}";
    cJSON *j = cJSON_Parse(api);
    jb_app *a = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_app_from_cjson(j, "kube", &a, &err), JB_OK);
    CU_ASSERT_TRUE(jb_app_kubernetes_owned(a));
    CU_ASSERT_EQUAL(jb_app_created_ms(a), 1767323045000LL);
    CU_ASSERT_PTR_NULL(strstr(jb_app_json(a), "resourceVersion"));
    CU_ASSERT_PTR_NULL(strstr(jb_app_json(a), "status"));
    CU_ASSERT_PTR_NULL(strstr(jb_app_json(a), "uid"));
    /* References: dup adds one, each destroy drops one; ASan sees a double free. */
    jb_app *ref = jb_app_dup(a);
    CU_ASSERT_PTR_EQUAL(ref, a);
    jb_app_destroy(a);
    CU_ASSERT_STRING_EQUAL(jb_app_name(ref), "erp");
    jb_app_release(ref);
    cJSON_Delete(j);
}

static void test_json_forms(void)
{
    static const char *const docs[] = {
        "{\"apiVersion\":\"applicationconnector.kyma-project.io/v1alpha1\",\"kind\":"
        "\"Application\",\"metadata\":{\"name\":\"a\"}}",
        "{\"kind\":\"List\",\"items\":[{\"apiVersion\":\"applicationconnector.kyma-project.io/"
        "v1alpha1\",\"kind\":\"Application\",\"metadata\":{\"name\":\"a\"},\"spec\":null}]}",
        " [{\"apiVersion\":\"applicationconnector.kyma-project.io/v1alpha1\",\"kind\":"
        "\"Application\",\"metadata\":{\"name\":\"a\",\"labels\":{\"APPLICATION-TYPE\":\"\"}}}]",
    };
    for (size_t i = 0; i < JB_CASES_N(docs); i++) {
        jb_app_vec v = {0};
        jb_err err = {{0}};
        CU_ASSERT_EQUAL_FATAL(jb_app_parse(docs[i], strlen(docs[i]), "x.json", &v, &err), JB_OK);
        CU_ASSERT_EQUAL(v.n, 1);
        CU_ASSERT_STRING_EQUAL(jb_app_clean_name(v.items[0]), "a");
        jb_app_vec_clear(&v);
    }
}

/* Annotations that parse, and what they mean. */
static const struct {
    const char *key, *value;
    size_t n;          /* entries of the list, or 1 for a rate */
    const char *first; /* first entry */
    double rate;       /* rate-limit cases */
    uint32_t burst;
} good_ann[] = {
    {"jetbridge.io/allowed-sources", "", 0, NULL, 0, 0},
    {"jetbridge.io/allowed-sources", "  ", 0, NULL, 0, 0},
    {"jetbridge.io/allowed-sources", "a", 1, "a", 0, 0},
    {"jetbridge.io/allowed-sources", "\ts>o>*u*r>c.e , my app", 2, "s>o>*u*r>c.e", 0, 0},
    {"jetbridge.io/allowed-types", "order.created.v1,order.", 2, "order.created.v1", 0, 0},
    {"jetbridge.io/rate-limit", "200/s,burst=400", 1, NULL, 200, 400},
    {"jetbridge.io/rate-limit", " 10 /s , burst = 3 ", 1, NULL, 10, 3},
    {"jetbridge.io/rate-limit", "2.5/s", 1, NULL, 2.5, 3},
    {"jetbridge.io/rate-limit", "0.1/s", 1, NULL, 0.1, 1},
    {"jetbridge.io/rate-limit", "1000000/s,burst=10000000", 1, NULL, 1000000, 10000000},
    {"jetbridge.io/managed-by", "someone-else", 0, NULL, 0, 0},
};

static char *with_annotation(const char *key, const char *value)
{
    char *buf = malloc(4096);
    snprintf(buf, 4096,
             "{\"apiVersion\":\"applicationconnector.kyma-project.io/v1alpha1\",\"kind\":"
             "\"Application\",\"metadata\":{\"name\":\"app\",\"annotations\":{\"%s\":\"%s\"}}}",
             key, value);
    return buf;
}

static void test_annotations_good(void)
{
    for (size_t i = 0; i < JB_CASES_N(good_ann); i++) {
        char *doc = with_annotation(good_ann[i].key, good_ann[i].value);
        jb_app_vec v = {0};
        jb_err err = {{0}};
        jb_status st = jb_app_parse(doc, strlen(doc), "t", &v, &err);
        if (st != JB_OK)
            fprintf(stderr, "case %zu: %s\n", i, err.msg);
        CU_ASSERT_EQUAL_FATAL(st, JB_OK);
        const jb_app *a = v.items[0];
        double rate = 0;
        uint32_t burst = 0;
        if (strcmp(good_ann[i].key, "jetbridge.io/rate-limit") == 0) {
            CU_ASSERT_TRUE(jb_app_rate_limit(a, &rate, &burst));
            CU_ASSERT_DOUBLE_EQUAL(rate, good_ann[i].rate, 1e-9);
            CU_ASSERT_EQUAL(burst, good_ann[i].burst);
        } else {
            bool src = strcmp(good_ann[i].key, "jetbridge.io/allowed-sources") == 0;
            size_t n = src ? jb_app_allowed_source_count(a) : jb_app_allowed_type_count(a);
            CU_ASSERT_EQUAL(n, good_ann[i].n);
            if (good_ann[i].first != NULL)
                CU_ASSERT_STRING_EQUAL(src ? jb_app_allowed_source(a, 0)
                                           : jb_app_allowed_type(a, 0),
                                       good_ann[i].first);
            CU_ASSERT_FALSE(jb_app_rate_limit(a, NULL, NULL));
            CU_ASSERT_FALSE(jb_app_kubernetes_owned(a));
        }
        jb_app_vec_clear(&v);
        free(doc);
    }
}

#define RATE_MSG                                                                                   \
    "t: document 1: metadata.annotations.jetbridge.io/rate-limit: must be \"<N>/s\" or "           \
    "\"<N>/s,burst=<M>\" (for example \"200/s,burst=400\")"
static const struct {
    const char *key, *value, *err;
} bad_ann[] = {
    {"jetbridge.io/allowed-sources", "a,,b",
     "t: document 1: metadata.annotations.jetbridge.io/allowed-sources[1]: must not be empty"},
    {"jetbridge.io/allowed-sources", "a,",
     "t: document 1: metadata.annotations.jetbridge.io/allowed-sources[1]: must not be empty"},
    {"jetbridge.io/allowed-types", "a\\u0001b",
     "t: document 1: metadata.annotations.jetbridge.io/allowed-types[0]: must not contain "
     "control characters"},
    {"jetbridge.io/rate-limit", "", RATE_MSG},
    {"jetbridge.io/rate-limit", "200", RATE_MSG},
    {"jetbridge.io/rate-limit", "200/m", RATE_MSG},
    {"jetbridge.io/rate-limit", "-1/s", RATE_MSG},
    {"jetbridge.io/rate-limit", "1e3/s", RATE_MSG},
    {"jetbridge.io/rate-limit", "200/s,burst=", RATE_MSG},
    {"jetbridge.io/rate-limit", "200/s,burst=1.5", RATE_MSG},
    {"jetbridge.io/rate-limit", "200/s,bust=4", RATE_MSG},
    {"jetbridge.io/rate-limit", "200/s,burst=4,x", RATE_MSG},
    {"jetbridge.io/rate-limit", "9999999999999/s", RATE_MSG},
    {"jetbridge.io/rate-limit", "0/s",
     "t: document 1: metadata.annotations.jetbridge.io/rate-limit: the rate must be above 0 and "
     "at most 1000000/s"},
    {"jetbridge.io/rate-limit", "1000001/s",
     "t: document 1: metadata.annotations.jetbridge.io/rate-limit: the rate must be above 0 and "
     "at most 1000000/s"},
    {"jetbridge.io/rate-limit", "5/s,burst=0",
     "t: document 1: metadata.annotations.jetbridge.io/rate-limit: the burst must be between 1 "
     "and 10000000"},
    {"jetbridge.io/allowed-source", "x",
     "t: document 1: metadata.annotations.jetbridge.io/allowed-source: unknown jetbridge.io "
     "annotation (known: allowed-sources, allowed-types, rate-limit, managed-by)"},
};

static void test_annotations_bad(void)
{
    for (size_t i = 0; i < JB_CASES_N(bad_ann); i++) {
        char *doc = with_annotation(bad_ann[i].key, bad_ann[i].value);
        jb_app_vec v = {0};
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_app_parse(doc, strlen(doc), "t", &v, &err), JB_ERR_INVALID);
        if (strcmp(err.msg, bad_ann[i].err) != 0)
            fprintf(stderr, "case %zu (%s): got \"%s\"\n", i, bad_ann[i].value, err.msg);
        CU_ASSERT_STRING_EQUAL(err.msg, bad_ann[i].err);
        CU_ASSERT_EQUAL(v.n, 0);
        free(doc);
    }
}

static const struct {
    const char *doc, *err;
} bad[] = {
    {"apiVersion: v1\nkind: Application\nmetadata: {name: a}\n",
     "f.yaml: document 1: apiVersion: must be applicationconnector.kyma-project.io/v1alpha1"},
    {"apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Subscription\n"
     "metadata: {name: a}\n",
     "f.yaml: document 1: kind: must be Application"},
    {HEAD "spec: {}\n", "f.yaml: document 1: metadata: missing or not a map"},
    {HEAD "metadata: {labels: {a: b}}\n", "f.yaml: document 1: metadata.name: missing"},
    {HEAD "metadata: {name: My_App}\n",
     "f.yaml: document 1: metadata.name: must be a lower-case DNS-1123 subdomain (a-z, 0-9, "
     "'-', '.'; at most 253 characters)"},
    {HEAD "metadata: {name: a, labels: [x]}\n",
     "f.yaml: document 1: metadata.labels: must be a map of strings"},
    {HEAD "metadata: {name: a, annotations: {x: [1]}}\n",
     "f.yaml: document 1: metadata.annotations.x: must be a string"},
    {HEAD "metadata: {name: a, labels: {application-type: \"bad type!\"}}\n",
     "f.yaml: document 1: metadata.labels.application-type: must be a label value (at most 63 "
     "of A-Z, a-z, 0-9, '-', '_', '.', alphanumeric at both ends)"},
    {HEAD "metadata: {name: a, creationTimestamp: yesterday}\n",
     "f.yaml: document 1: metadata.creationTimestamp: must be RFC 3339 UTC "
     "(2006-01-02T15:04:05Z)"},
    {HEAD "metadata: {name: a}\nspec: [x]\n", "f.yaml: document 1: spec: must be a map"},
    {HEAD "metadata: {name: a}\nspec: {compassMetadata: x}\n",
     "f.yaml: document 1: spec.compassMetadata: must be a map"},
    {HEAD "metadata: {name: a}\nspec: {compassMetadata: {authentication: {clientIds: x}}}\n",
     "f.yaml: document 1: spec.compassMetadata.authentication.clientIds: must be a list of "
     "strings"},
    {HEAD "metadata: {name: a}\nspec: {compassMetadata: {authentication: {clientIds: [a, [b]]}}}\n",
     "f.yaml: document 1: spec.compassMetadata.authentication.clientIds[1]: must be a string"},
    {HEAD
     "metadata: {name: a}\nspec: {compassMetadata: {authentication: {clientIds: [a, \"\"]}}}\n",
     "f.yaml: document 1: spec.compassMetadata.authentication.clientIds[1]: must not be empty"},
    {HEAD "metadata: {name: a}\n---\n" HEAD "metadata: {name: b, annotations: "
          "{jetbridge.io/rate-limit: fast}}\n",
     "f.yaml: document 2: metadata.annotations.jetbridge.io/rate-limit: must be \"<N>/s\" or "
     "\"<N>/s,burst=<M>\" (for example \"200/s,burst=400\")"},
    {"a: [", "f.yaml: document 1: line 2 column 1: did not find expected node content"},
    {"{\"a\":", "f.yaml: document 1: invalid JSON near byte 4"},
    {"- 1\n- 2\n", "f.yaml: document 1: not a map"},
};

static void test_bad_manifests(void)
{
    for (size_t i = 0; i < JB_CASES_N(bad); i++) {
        jb_app_vec v = {0};
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_app_parse(bad[i].doc, strlen(bad[i].doc), "f.yaml", &v, &err),
                        JB_ERR_INVALID);
        if (strcmp(err.msg, bad[i].err) != 0)
            fprintf(stderr, "case %zu: got \"%s\"\n", i, err.msg);
        CU_ASSERT_STRING_EQUAL(err.msg, bad[i].err);
        CU_ASSERT_EQUAL(v.n, 0);
    }
}

static void test_list_limits(void)
{
    /* 256 entries are fine, 257 are not. */
    for (int n = 256; n <= 257; n++) {
        size_t cap = (size_t)n * 8 + 64;
        char *list = calloc(1, cap);
        for (int i = 0; i < n; i++)
            snprintf(list + strlen(list), cap - strlen(list), "%ss%d", i ? "," : "", i);
        char *doc = malloc(cap + 512);
        snprintf(doc, cap + 512,
                 HEAD "metadata: {name: a, annotations: {jetbridge.io/allowed-sources: \"%s\"}}\n",
                 list);
        jb_app_vec v = {0};
        jb_err err = {{0}};
        jb_status st = jb_app_parse(doc, strlen(doc), "f", &v, &err);
        CU_ASSERT_EQUAL(st, n == 256 ? JB_OK : JB_ERR_INVALID);
        if (n == 257)
            CU_ASSERT_STRING_EQUAL(err.msg, "f: document 1: metadata.annotations.jetbridge.io/"
                                            "allowed-sources: more than 256 entries");
        jb_app_vec_clear(&v);
        free(doc);
        free(list);
    }
}

static void test_parse_path(void)
{
    char dir[] = "/tmp/jb-app-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char p1[64], p2[64], p3[64];
    snprintf(p1, sizeof(p1), "%s/b.yaml", dir);
    snprintf(p2, sizeof(p2), "%s/a.json", dir);
    snprintf(p3, sizeof(p3), "%s/notes.txt", dir);
    FILE *f = fopen(p1, "w");
    fputs(HEAD "metadata: {name: second}\n", f);
    fclose(f);
    f = fopen(p2, "w");
    fputs("{\"apiVersion\":\"applicationconnector.kyma-project.io/v1alpha1\",\"kind\":"
          "\"Application\",\"metadata\":{\"name\":\"first\"}}",
          f);
    fclose(f);
    f = fopen(p3, "w");
    fputs("not a manifest", f);
    fclose(f);
    jb_app_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_app_parse_path(dir, &v, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 2);
    CU_ASSERT_STRING_EQUAL(jb_app_name(v.items[0]), "first");
    CU_ASSERT_STRING_EQUAL(jb_app_name(v.items[1]), "second");
    /* A broken file leaves out unchanged. */
    f = fopen(p1, "w");
    fputs(HEAD "metadata: {name: Bad}\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(jb_app_parse_path(dir, &v, &err), JB_ERR_INVALID);
    CU_ASSERT_EQUAL(v.n, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "b.yaml: document 1: metadata.name"));
    CU_ASSERT_EQUAL(jb_app_parse_path("/nonexistent/x.yaml", &v, &err), JB_ERR_NOT_FOUND);
    jb_app_vec_clear(&v);
    unlink(p1);
    unlink(p2);
    unlink(p3);
    rmdir(dir);
}

/* The shipped example stays valid and means what its comments say. */
static void test_example(void)
{
    jb_app_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_app_parse_path(JB_SOURCE_DIR "/examples/applications", &v, &err),
                          JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 1);
    const jb_app *a = v.items[0];
    CU_ASSERT_STRING_EQUAL(jb_app_name(a), "myapp");
    CU_ASSERT_EQUAL(jb_app_allowed_source_count(a), 2);
    CU_ASSERT_EQUAL(jb_app_allowed_type_count(a), 3);
    CU_ASSERT_EQUAL(jb_app_client_id_count(a), 1);
    CU_ASSERT_TRUE(jb_app_rate_limit(a, NULL, NULL));
    jb_app_vec_clear(&v);
}

/* Kyma's own sample Application, unchanged. */
static void test_kyma_sample(void)
{
    jb_app_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(
        jb_app_parse_path(JB_SOURCE_DIR "/tests/kyma-manifests/application-sample.yaml", &v, &err),
        JB_OK);
    CU_ASSERT_EQUAL_FATAL(v.n, 1);
    CU_ASSERT_STRING_EQUAL(jb_app_name(v.items[0]), "system-prod");
    CU_ASSERT_STRING_EQUAL(jb_app_clean_name(v.items[0]), "system-prod");
    /* spec.labels is Kyma's, not metadata.labels: no application-type from it. */
    CU_ASSERT_STRING_EQUAL(jb_app_type_label(v.items[0]), "");
    CU_ASSERT_PTR_NOT_NULL(strstr(jb_app_json(v.items[0]), "\"region\":\"us\""));
    jb_app_vec_clear(&v);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"yaml multi-document", test_yaml_multi},
        {"from the API server's object", test_from_cjson_api_object},
        {"json forms", test_json_forms},
        {"annotations: good values", test_annotations_good},
        {"annotations: bad values", test_annotations_bad},
        {"bad manifests name the field", test_bad_manifests},
        {"list limits", test_list_limits},
        {"files and directories", test_parse_path},
        {"the shipped example", test_example},
        {"Kyma's sample", test_kyma_sample},
    };
    return jb_cunit_main("app_manifest", NULL, NULL, cases, JB_CASES_N(cases));
}
