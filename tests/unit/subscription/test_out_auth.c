/* Sink authentication keys in spec.config: what is valid, and the validation
 * messages for what is not (never quoting a secret). Table-driven. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "subscription/jb_sub.h"

#define HEAD                                                                                       \
    "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"                          \
    "metadata: {name: t, namespace: default}\nspec:\n  sink: http://s.example/\n"                  \
    "  source: app\n  types: [order.created.v1]\n  config:\n"

static jb_sub *parse_cfg(const char *config)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), HEAD "%s", config);
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    if (jb_sub_parse(buf, strlen(buf), "t", NULL, &v, &err) != JB_OK || v.n != 1) {
        fprintf(stderr, "parse failed: %s\n", err.msg);
        jb_sub_vec_clear(&v);
        return NULL;
    }
    jb_sub *s = v.items[0];
    v.n = 0;
    jb_sub_vec_clear(&v);
    return s;
}

static const struct {
    const char *config;
    const char *want; /* substring of the message; "" when valid */
    bool kube;        /* validated in Kubernetes mode (KUBERNETES=true) */
} cases_tab[] = {
    {"    jetbridge.auth.bearerTokenFile: /run/secrets/token\n", "", false},
    {"    jetbridge.auth.bearerTokenFile: token\n", "must be an absolute file name", false},
    {"    jetbridge.auth.basicUsername: u\n    jetbridge.auth.basicPasswordFile: /p\n", "", false},
    {"    jetbridge.auth.basicUsername: u\n", "go together", false},
    {"    jetbridge.auth.bearerTokenFile: /t\n    jetbridge.auth.basicUsername: u\n"
     "    jetbridge.auth.basicPasswordFile: /p\n",
     "only one of", false},
    {"    jetbridge.auth.clientCertFile: /c\n", "go together", false},
    {"    jetbridge.auth.clientCertFile: /c\n    jetbridge.auth.clientKeyFile: /k\n"
     "    jetbridge.auth.signingSecretFile: /s\n",
     "", false},
    {"    type: oauth2\n    grantType: client_credentials\n    clientId: id\n"
     "    clientSecret: Sup3rSecret\n    tokenUrl: https://idp.example/token\n    scope: a b\n",
     "", false},
    {"    type: oauth2\n    clientId: id\n    clientSecret: Sup3rSecret\n", "oauth2 needs", false},
    {"    type: basic\n", "type must be oauth2", false},
    {"    type: oauth2\n    grantType: password\n    clientId: id\n    clientSecret: x\n"
     "    tokenUrl: https://i/t\n",
     "grantType must be client_credentials", false},
    {"    type: oauth2\n    clientId: id\n    clientSecret: Sup3rSecret\n    tokenUrl: ftp://x/\n",
     "tokenUrl: must have URL scheme", false},
    {"    clientSecret: Sup3rSecret\n", "clientSecret: needs type oauth2", false},
    /* Secret references: Kubernetes mode only, "<name>/<key>". */
    {"    jetbridge.auth.bearerTokenFromSecret: sink-creds/token\n", "", true},
    {"    jetbridge.auth.bearerTokenFromSecret: sink-creds/token\n",
     "spec.config: Invalid value: \"sink-creds/token\": jetbridge.auth.bearerTokenFromSecret: "
     "Secrets are read only in Kubernetes mode (--kubernetes)",
     false},
    {"    jetbridge.auth.bearerTokenFromSecret: sink-creds\n", "must be <secret name>/<key>", true},
    {"    jetbridge.auth.bearerTokenFromSecret: Sink/token\n", "must be <secret name>/<key>", true},
    {"    jetbridge.auth.bearerTokenFromSecret: s/a/b\n", "must be <secret name>/<key>", true},
    {"    jetbridge.auth.bearerTokenFromSecret: -s/t\n", "must be <secret name>/<key>", true},
    {"    jetbridge.auth.bearerTokenFromSecret: s/t\n    jetbridge.auth.bearerTokenFile: /t\n",
     "only one of", true},
    {"    jetbridge.auth.basicUsername: u\n    jetbridge.auth.basicPasswordFromSecret: s/pw\n", "",
     true},
    {"    jetbridge.auth.basicPasswordFromSecret: s/pw\n", "go together", true},
    {"    jetbridge.auth.basicUsername: u\n    jetbridge.auth.basicPasswordFromSecret: s/pw\n"
     "    jetbridge.auth.basicPasswordFile: /p\n",
     "only one of", true},
    {"    jetbridge.auth.signingSecretFromSecret: hooks.example/whsec\n", "", true},
    {"    jetbridge.auth.signingSecretFromSecret: s/k\n    jetbridge.auth.signingSecretFile: /s\n",
     "only one of", true},
    {"    type: oauth2\n    clientId: id\n    jetbridge.auth.clientSecretFromSecret: idp/secret\n"
     "    tokenUrl: https://idp.example/token\n",
     "", true},
    {"    type: oauth2\n    clientId: id\n    jetbridge.auth.clientSecretFromSecret: idp/secret\n"
     "    clientSecret: Sup3rSecret\n    tokenUrl: https://idp.example/token\n",
     "only one of clientSecret", true},
    {"    jetbridge.auth.clientSecretFromSecret: idp/secret\n", "needs type oauth2", true},
};

static void test_auth_rules(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    for (size_t i = 0; i < sizeof(cases_tab) / sizeof(cases_tab[0]); i++) {
        cfg->kubernetes = cases_tab[i].kube;
        jb_sub *s = parse_cfg(cases_tab[i].config);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        jb_sub_errors e = {0};
        CU_ASSERT_EQUAL_FATAL(jb_sub_validate(s, cfg, &e), JB_OK);
        bool ok =
            cases_tab[i].want[0] == '\0' ? e.n == 0 : strstr(e.message, cases_tab[i].want) != NULL;
        if (!ok)
            fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, e.message, cases_tab[i].want);
        CU_ASSERT_TRUE(ok);
        /* A secret value is never quoted in a message. */
        CU_ASSERT_PTR_NULL(strstr(e.message, "Sup3rSecret"));
        jb_sub_errors_free(&e);
        jb_sub_destroy(s);
    }
    jb_cfg_destroy(cfg);
}

/* The consumers carry the settings; a valid oauth2 subscription's consumer has them. */
static void test_consumer_carries_auth(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    jb_sub *s = parse_cfg("    type: oauth2\n    clientId: id\n    clientSecret: sec\n"
                          "    tokenUrl: https://idp.example/token\n"
                          "    jetbridge.auth.signingSecretFile: /s\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    jb_sub_consumer_list l = {0};
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_sub_consumers(s, cfg, &l, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_TRUE(l.items[0].auth.oauth2);
    CU_ASSERT_STRING_EQUAL(l.items[0].auth.client_id, "id");
    CU_ASSERT_STRING_EQUAL(l.items[0].auth.signing_secret_file, "/s");
    jb_sub_consumer copy;
    CU_ASSERT_TRUE_FATAL(jb_sub_consumer_copy(&copy, &l.items[0]));
    CU_ASSERT_TRUE(jb_sub_auth_equal(&copy.auth, &l.items[0].auth));
    jb_sub_consumer_free(&copy);
    jb_sub_consumer_list_free(&l);
    jb_sub_destroy(s);
    jb_cfg_destroy(cfg);
}

/* More than JB_SUB_MAX_TYPES types is one validation error, not thousands. */
static void test_type_cap(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    size_t n = (size_t)snprintf(buf, cap,
                                "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: "
                                "Subscription\nmetadata: {name: t}\nspec:\n  sink: http://s/\n"
                                "  source: app\n  types:\n");
    for (int i = 0; i < JB_SUB_MAX_TYPES + 1; i++)
        n += (size_t)snprintf(buf + n, cap - n, "  - bad%d\n", i); /* each also invalid */
    jb_sub_vec v = {0};
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_sub_parse(buf, n, "t", NULL, &v, &err), JB_OK);
    jb_sub_errors e = {0};
    CU_ASSERT_EQUAL(jb_sub_validate(v.items[0], cfg, &e), JB_OK);
    CU_ASSERT_EQUAL(e.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "must not have more than 256 types"));
    jb_sub_errors_free(&e);
    jb_sub_vec_clear(&v);
    free(buf);
    jb_cfg_destroy(cfg);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"auth_rules", test_auth_rules},
        {"consumer_carries_auth", test_consumer_carries_auth},
        {"type_cap", test_type_cap},
    };
    return jb_cunit_main("out_auth", NULL, NULL, cases, JB_CASES_N(cases));
}
