/*
 * kube/ parsers, table-driven: kubeconfig (current context, data fields, relative
 * paths, refusals that never echo a secret) and the watch stream (split anywhere,
 * malformed and oversized lines skipped, events after them still seen).
 */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "kube/jb_kube.h"

#define KC_HEAD                                                                                    \
    "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"                                         \
    "contexts:\n- name: other\n  context: {cluster: c2, user: u2}\n"                               \
    "- name: dev\n  context: {cluster: c1, user: u1}\n"                                            \
    "clusters:\n- name: c2\n  cluster: {server: 'https://10.0.0.2:6443'}\n"                        \
    "- name: c1\n  cluster:\n    server: %s\n"

static void test_kubeconfig_table(void)
{
    static const struct {
        const char *server_line;
        const char *user;
        jb_status want;
        const char *want_server; /* or a substring of the error */
    } cases[] = {
        {"https://127.0.0.1:6443/", "- name: u1\n  user: {token: SECRETTOKEN}\n", JB_OK,
         "https://127.0.0.1:6443"},
        {"https://k.example:443", "- name: u1\n  user: {tokenFile: tok}\n", JB_OK,
         "https://k.example:443"},
        {"https://k:1",
         "- name: u1\n  user: {client-certificate-data: TUlJ, client-key-data: U0VDUkVU}\n", JB_OK,
         "https://k:1"},
        {"https://k:1", "- name: u1\n  user: {client-key-data: 'not base64 SECRETTOKEN!'}\n",
         JB_ERR_CONFIG, "client-key-data: not valid base64"},
        {"ftp://k", "- name: u1\n  user: {token: SECRETTOKEN}\n", JB_ERR_CONFIG,
         "server: missing or not an http(s) URL"},
        /* No host after the scheme (found by fuzz_kube_config). */
        {"https://", "- name: u1\n  user: {token: SECRETTOKEN}\n", JB_ERR_CONFIG,
         "server: missing or not an http(s) URL"},
        {"http:///x", "- name: u1\n  user: {token: SECRETTOKEN}\n", JB_ERR_CONFIG,
         "server: missing or not an http(s) URL"},
        {"https://k:1", "- name: u1\n  user: {exec: {command: aws}}\n", JB_ERR_CONFIG,
         "exec and auth-provider are not supported"},
        {"https://k:1", "- name: nobody\n  user: {}\n", JB_OK, "https://k:1"}, /* anonymous */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[2048];
        snprintf(buf, sizeof(buf), KC_HEAD "users:\n%s", cases[i].server_line, cases[i].user);
        jb_kube_config *c = NULL;
        jb_err err = {{0}};
        jb_status st = jb_kube_config_parse(buf, strlen(buf), "/etc/kube", &c, &err);
        CU_ASSERT_EQUAL(st, cases[i].want);
        if (st == JB_OK) {
            CU_ASSERT_STRING_EQUAL(jb_kube_config_server(c), cases[i].want_server);
            jb_kube_config_destroy(c);
        } else {
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].want_server));
            CU_ASSERT_PTR_NULL(strstr(err.msg, "SECRETTOKEN"));
        }
    }
    /* No current context, unknown context, not YAML. */
    const char *bad[] = {"apiVersion: v1\nkind: Config\n", "current-context: nope\ncontexts: []\n",
                         "{{{", "- a list\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        jb_kube_config *c = NULL;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_kube_config_parse(bad[i], strlen(bad[i]), NULL, &c, &err),
                        JB_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(c);
    }
}

typedef struct seen {
    char names[16][32];
    jb_kube_event_type types[16];
    size_t n;
} seen;

static bool on_event(jb_kube_event_type t, const cJSON *obj, void *ud)
{
    seen *s = ud;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s",
                 cJSON_IsString(name) ? name->valuestring : "-");
        s->types[s->n] = t;
        s->n++;
    }
    return true;
}

static void test_watch_stream(void)
{
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char stream[4096];
    snprintf(stream, sizeof(stream),
             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
             "not json at all\n"
             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"%s\"}}}\n"
             "{\"type\":\"SOMETHING\",\"object\":{}}\n"
             "{\"type\":\"MODIFIED\",\"object\":\"not an object\"}\n"
             "\r\n"
             "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\r\n"
             "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n"
             "{\"type\":\"ERROR\",\"object\":{\"code\":410}}\n"
             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"partial\"}}}",
             big);
    size_t len = strlen(stream);
    /* Every split point gives the same events: the parser is incremental. */
    for (size_t split = 0; split <= len; split += 7) {
        seen s = {0};
        jb_kube_watch_parser *p = jb_kube_watch_parser_create(512, on_event, &s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_TRUE(jb_kube_watch_feed(p, stream, split));
        CU_ASSERT_TRUE(jb_kube_watch_feed(p, stream + split, len - split));
        CU_ASSERT_EQUAL(s.n, 4);
        CU_ASSERT_STRING_EQUAL(s.names[0], "a");
        CU_ASSERT_STRING_EQUAL(s.names[1], "b");
        CU_ASSERT_EQUAL(s.types[1], JB_KUBE_DELETED);
        CU_ASSERT_EQUAL(s.types[2], JB_KUBE_BOOKMARK);
        CU_ASSERT_EQUAL(s.types[3], JB_KUBE_ERROR);
        CU_ASSERT_EQUAL(jb_kube_watch_oversized(p), 1);
        CU_ASSERT_EQUAL(jb_kube_watch_malformed(p), 3);
        jb_kube_watch_parser_destroy(p);
    }
}

/* An API server that cannot be reached: the reason names the Secret once, then the
 * transport's error (the message was once formatted over itself). */
static void test_secret_unreachable(void)
{
    char dir[] = "/tmp/jb-kube-unit.XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128], kc[1024];
    snprintf(path, sizeof(path), "%s/kubeconfig", dir);
    snprintf(kc, sizeof(kc), KC_HEAD "users:\n- name: u1\n  user: {token: SECRETTOKEN}\n",
             "http://127.0.0.1:1");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(kc, f);
    fclose(f);
    jb_cfg *cfg = jb_cfg_defaults();
    free(cfg->kubeconfig);
    cfg->kubeconfig = strdup(path);
    atomic_bool stop = false;
    jb_kube_secrets *s = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_kube_secrets_create(cfg, &stop, &s, &err), JB_OK);
    char *value = NULL;
    size_t len = 0;
    CU_ASSERT_NOT_EQUAL(jb_kube_secret_read(s, "ns1", "creds", "token", &value, &len, &err), JB_OK);
    CU_ASSERT_PTR_NULL(value);
    CU_ASSERT_EQUAL(strncmp(err.msg, "Secret ns1/creds: ", 18), 0);
    CU_ASSERT_PTR_NULL(strstr(err.msg + 18, "Secret ns1/creds"));
    CU_ASSERT(strlen(err.msg) > 18);
    CU_ASSERT_PTR_NULL(strstr(err.msg, "SECRETTOKEN"));
    jb_kube_secrets_destroy(s);
    jb_cfg_destroy(cfg);
    jb_rm_tree(dir);
}

int main(void)
{
    jb_log_setup(JB_LOG_ERROR, true);
    static const jb_test_case cases[] = {
        {"kubeconfig: current context, data fields, refusals", test_kubeconfig_table},
        {"watch stream: split anywhere, bad lines skipped", test_watch_stream},
        {"Secret read, API server unreachable: one clear reason", test_secret_unreachable},
    };
    return jb_cunit_main("kube_parsers", NULL, NULL, cases, JB_CASES_N(cases));
}
