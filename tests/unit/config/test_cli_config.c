/* config/ as the user meets it: the real binary, bad values, `jetbridge help`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

/* Configuration variables the test's own environment might carry. */
#define CLEAN_ENV "INGRESS_PORT", "NATS_URL", "REQUEST_TIMEOUT", "JS_STREAM_STORAGE_TYPE"

static void test_bad_values_stop_with_one_line(void)
{
    char yaml[] = "/tmp/jb-cli-cfg-XXXXXX";
    int fd = mkstemp(yaml);
    CU_ASSERT_FATAL(fd >= 0);
    const char *text = "NATS_URL: nats://127.0.0.1:1\nNATS_ULR: typo\n";
    CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char want_yaml[128];
    snprintf(want_yaml, sizeof(want_yaml), "jetbridge: %s:2: unknown key \"NATS_ULR\"\n", yaml);

    const struct {
        const char *argv[5];
        const char *extra_env; /* NULL or "K=V" */
        const char *want;
    } cases[] = {
        {{"publisher", "--ingress-port", "abc", NULL},
         NULL,
         "jetbridge: --ingress-port: invalid value \"abc\": want integer 1..65535\n"},
        {{"dispatcher", NULL},
         "JS_STREAM_STORAGE_TYPE=disk",
         "jetbridge: JS_STREAM_STORAGE_TYPE: invalid value \"disk\": want file|memory\n"},
        {{"publisher", "--request-timeout", NULL},
         NULL,
         "jetbridge: --request-timeout: missing value (want duration 1ms..1h (5s, 1m30s, 250ms, "
         "PT5S; an integer is seconds))\n"},
        {{"run", "--config", yaml, NULL}, NULL, want_yaml},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const char *env[] = {CLEAN_ENV, cases[i].extra_env, NULL};
        char *out = NULL, *err = NULL;
        int rc = jb_trun_capture(cases[i].argv, env, &out, &err, 30000);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, cases[i].want);
        if (strcmp(err, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got  %s         want %s", i, err, cases[i].want);
        free(out);
        free(err);
    }
    unlink(yaml);
}

static void test_help_lists_every_key(void)
{
    const char *argv[] = {"help", NULL};
    const char *env[] = {NULL};
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_trun(argv, env, &out, 30000), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    size_t n;
    const jb_cfg_key_info *k = jb_cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(out, k[i].env));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, k[i].flag));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, k[i].help));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--config FILE"));
    free(out);
}

static void write_in(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* The client commands' NATS and admin defaults: DATA_DIR/nats.url and
 * DATA_DIR/metrics.addr when `run` wrote them, else the built-in defaults; an
 * explicit value always wins. */
static void test_resolve_client(void)
{
    char dir[] = "/tmp/jb-cfg-client-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    jb_err err = {{0}};
    jb_cfg *c = jb_cfg_defaults();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    free(c->data_dir);
    c->data_dir = strdup(dir);
    CU_ASSERT_EQUAL(jb_cfg_resolve_client(c, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(c->nats_url, JB_CFG_CLI_NATS_URL);
    CU_ASSERT_STRING_EQUAL(c->metrics_addr, ":9090");
    jb_cfg_destroy(c);

    write_in(dir, JB_CFG_NATS_URL_FILE, "nats://127.0.0.1:41234\n");
    write_in(dir, JB_CFG_METRICS_ADDR_FILE, "127.0.0.1:45678\n");
    c = jb_cfg_defaults();
    free(c->data_dir);
    c->data_dir = strdup(dir);
    CU_ASSERT_EQUAL(jb_cfg_resolve_client(c, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(c->nats_url, "nats://127.0.0.1:41234");
    CU_ASSERT_STRING_EQUAL(c->metrics_addr, "127.0.0.1:45678");
    jb_cfg_destroy(c);

    /* Explicit values win; a garbled address file is ignored. */
    write_in(dir, JB_CFG_METRICS_ADDR_FILE, "not an address\n");
    c = jb_cfg_defaults();
    free(c->data_dir);
    c->data_dir = strdup(dir);
    free(c->nats_url);
    c->nats_url = strdup("nats://10.0.0.1:4222");
    CU_ASSERT_EQUAL(jb_cfg_resolve_client(c, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(c->nats_url, "nats://10.0.0.1:4222");
    CU_ASSERT_STRING_EQUAL(c->metrics_addr, ":9090");
    jb_cfg_destroy(c);
    jb_rm_tree(dir);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"bad values stop the binary with exit 2 and one line", test_bad_values_stop_with_one_line},
        {"jetbridge help lists every key with flag and help", test_help_lists_every_key},
        {"client commands find run's NATS and admin address", test_resolve_client},
    };
    return jb_cunit_main("cli_config", NULL, NULL, cases, JB_CASES_N(cases));
}
