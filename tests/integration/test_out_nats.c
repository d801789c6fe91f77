/* jetbridge's NATS connection with TLS, client certificates and least-privilege
 * users: the documented server configuration (examples/nats/jetbridge-nats.conf)
 * with certificates made by openssl here, each role running the real binary end
 * to end, a publisher credential refused what it must not do, and nkey and token
 * authentication against servers configured for them. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "common/jb_common.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "test_out_env.h"

#define TYPE        "order.created.v1"
#define NATS_SERVER "/usr/sbin/nats-server"
#define PASSWORD    "Op3rat0r-pw"

typedef struct tenv {
    char dir[64];
    char path[8][160]; /* ca.pem server.pem server.key client.pem client.key pw files */
    int port;
    jb_tproc *server;
    char url[64];
    jb_tsink *sink;
} tenv;

enum { CA, SRV_CERT, SRV_KEY, CLI_CERT, CLI_KEY, PW_PUB, PW_DISP, PW_OP };

static const char *in_dir(tenv *e, int slot, const char *name)
{
    snprintf(e->path[slot], sizeof(e->path[slot]), "%s/%s", e->dir, name);
    return e->path[slot];
}

static bool make_certs(tenv *e)
{
    in_dir(e, CA, "ca.pem");
    in_dir(e, SRV_CERT, "server.pem");
    in_dir(e, SRV_KEY, "server.key");
    in_dir(e, CLI_CERT, "client.pem");
    in_dir(e, CLI_KEY, "client.key");
    return out_make_certs(e->dir);
}

/* nats-server with conf_path; env adds the variables the configuration names. */
static bool start_server(tenv *e, const char *conf_path, const char *const *env)
{
    char store[128], port[16];
    snprintf(store, sizeof(store), "%s/store", e->dir);
    e->port = jb_free_port();
    snprintf(port, sizeof(port), "%d", e->port);
    const char *argv[] = {"-a", "127.0.0.1", "-p", port, "-sd", store, "-c", conf_path, NULL};
    e->server = jb_tproc_start_exe(NATS_SERVER, argv, env, e->port);
    return e->server != NULL;
}

static bool tenv_start(tenv *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/jb-out-nats-XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return false;
    e->sink = jb_tsink_start();
    return e->sink != NULL;
}

static void tenv_stop(tenv *e)
{
    jb_tproc_stop(e->server);
    jb_tsink_stop(e->sink);
    jb_rm_tree(e->dir);
}

/* The environment of a role: TLS files and the role's user. */
typedef struct role {
    char v[8][200];
    const char *env[10];
} role;

static void role_env(tenv *e, role *r, const char *user, int pw_slot, const char *extra)
{
    snprintf(r->v[0], sizeof(r->v[0]), "NATS_URL=tls://127.0.0.1:%d", e->port);
    snprintf(r->v[1], sizeof(r->v[1]), "NATS_TLS_CA=%s", e->path[CA]);
    snprintf(r->v[2], sizeof(r->v[2]), "NATS_TLS_CERT=%s", e->path[CLI_CERT]);
    snprintf(r->v[3], sizeof(r->v[3]), "NATS_TLS_KEY=%s", e->path[CLI_KEY]);
    snprintf(r->v[4], sizeof(r->v[4]), "NATS_USER=%s", user);
    snprintf(r->v[5], sizeof(r->v[5]), "NATS_PASSWORD_FILE=%s", e->path[pw_slot]);
    snprintf(r->v[6], sizeof(r->v[6]), "%s", extra != NULL ? extra : "APP_LOG_LEVEL=info");
    for (int i = 0; i < 7; i++)
        r->env[i] = r->v[i];
    r->env[7] = NULL;
}

/* Certificates, password files and the documented server configuration. */
static bool start_secured(tenv *e)
{
    if (!tenv_start(e) || !make_certs(e) ||
        !out_write_file(in_dir(e, PW_PUB, "pub.pw"), "Publ1sher-pw\n") ||
        !out_write_file(in_dir(e, PW_DISP, "disp.pw"), "D1spatcher-pw\n") ||
        !out_write_file(in_dir(e, PW_OP, "op.pw"), PASSWORD "\n"))
        return false;
    char v[6][200];
    snprintf(v[0], sizeof(v[0]), "JB_NATS_SERVER_CERT=%s", e->path[SRV_CERT]);
    snprintf(v[1], sizeof(v[1]), "JB_NATS_SERVER_KEY=%s", e->path[SRV_KEY]);
    snprintf(v[2], sizeof(v[2]), "JB_NATS_CA=%s", e->path[CA]);
    snprintf(v[3], sizeof(v[3]), "JB_PUBLISHER_PASSWORD=Publ1sher-pw");
    snprintf(v[4], sizeof(v[4]), "JB_DISPATCHER_PASSWORD=D1spatcher-pw");
    snprintf(v[5], sizeof(v[5]), "JB_OPERATOR_PASSWORD=" PASSWORD);
    const char *env[] = {v[0], v[1], v[2], v[3], v[4], v[5], NULL};
    return start_server(e, JB_SOURCE_DIR "/examples/nats/jetbridge-nats.conf", env);
}

static int run_role(const role *r, const char *const *argv, char **out, char **err)
{
    return jb_trun_capture(argv, r->env, out, err, 30000);
}

/* A nats.c client of the secured server as user (mutual TLS), with JetStream. */
typedef struct client {
    natsOptions *o;
    natsConnection *nc;
    jsCtx *js;
} client;

static bool client_connect(tenv *e, client *c, const char *user, const char *password)
{
    char url[64];
    snprintf(url, sizeof(url), "tls://127.0.0.1:%d", e->port);
    memset(c, 0, sizeof(*c));
    return natsOptions_Create(&c->o) == NATS_OK && natsOptions_SetURL(c->o, url) == NATS_OK &&
           natsOptions_SetSecure(c->o, true) == NATS_OK &&
           natsOptions_LoadCATrustedCertificates(c->o, e->path[CA]) == NATS_OK &&
           natsOptions_LoadCertificatesChain(c->o, e->path[CLI_CERT], e->path[CLI_KEY]) ==
               NATS_OK &&
           natsOptions_SetUserInfo(c->o, user, password) == NATS_OK &&
           natsConnection_Connect(&c->nc, c->o) == NATS_OK &&
           natsConnection_JetStream(&c->js, c->nc, NULL) == NATS_OK;
}

static void client_close(client *c)
{
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
    natsOptions_Destroy(c->o);
}

/* The number of consumers on stream, read with the operator's STREAM.INFO; -1 when
 * it cannot be read. */
static int64_t stream_consumers(tenv *e, const char *stream)
{
    client c;
    int64_t n = -1;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (client_connect(e, &c, "operator", PASSWORD) &&
        js_GetStreamInfo(&si, c.js, stream, NULL, &jerr) == NATS_OK)
        n = (int64_t)si->State.Consumers;
    jsStreamInfo_Destroy(si);
    client_close(&c);
    return n;
}

static bool publish_event(int port, const char *id)
{
    char hdr[256];
    snprintf(hdr, sizeof(hdr),
             "ce-specversion: 1.0\r\nce-id: %s\r\nce-source: myapp\r\nce-type: " TYPE
             "\r\nContent-Type: application/json\r\n",
             id);
    for (int i = 0; i < 100; i++) {
        int st = jb_http(port, "POST", "/publish", hdr, "{}", 2, NULL, NULL, NULL);
        if (st == 204)
            return true;
        jb_sleep_ms(200); /* the publisher waits for its stream */
    }
    return false;
}

/* Each role with the documented permissions, over mutual TLS: the operator applies
 * a subscription, the publisher stores events, the dispatcher delivers them and
 * dead-letters one, the operator lists and republishes it. nats-server logs no
 * permission violation. */
static void test_roles_end_to_end(void)
{
    tenv e;
    CU_ASSERT_TRUE_FATAL(start_secured(&e));
    role op, disp, pub;
    char metrics[64], ingress[64], dmetrics[64];
    int ingress_port = jb_free_port(), admin = jb_free_port();
    snprintf(metrics, sizeof(metrics), "METRICS_ADDR=127.0.0.1:%d", admin);
    snprintf(dmetrics, sizeof(dmetrics), "METRICS_ADDR=127.0.0.1:%d", jb_free_port());
    snprintf(ingress, sizeof(ingress), "INGRESS_PORT=%d", ingress_port);
    role_env(&e, &op, "operator", PW_OP, NULL);
    role_env(&e, &disp, "dispatcher", PW_DISP, dmetrics);
    role_env(&e, &pub, "publisher", PW_PUB, metrics);
    pub.env[7] = ingress;
    pub.env[8] = NULL;

    char manifest[512], mpath[128];
    snprintf(mpath, sizeof(mpath), "%s/sub.yaml", e.dir);
    snprintf(manifest, sizeof(manifest),
             "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
             "metadata: {name: orders, namespace: default}\n"
             "spec:\n  sink: %s\n  source: myapp\n  types: [" TYPE "]\n",
             jb_tsink_url(e.sink));
    CU_ASSERT_TRUE_FATAL(out_write_file(mpath, manifest));
    const char *apply[] = {"sub", "apply", "-f", mpath, NULL};
    CU_ASSERT_EQUAL_FATAL(run_role(&op, apply, NULL, NULL), 0);
    /* The operator lists the store (jb_kv_each: an ephemeral pull consumer on
     * KV_jetbridge-subscriptions, its info, a fetch, its deletion): the subscription
     * comes back, and no consumer is left on the bucket's stream. */
    const char *get[] = {"sub", "get", NULL};
    char *out = NULL;
    CU_ASSERT_EQUAL(run_role(&op, get, &out, NULL), 0);
    CU_ASSERT_TRUE(out != NULL && strstr(out, "orders") != NULL);
    free(out);
    out = NULL;
    CU_ASSERT_EQUAL(stream_consumers(&e, "KV_jetbridge-subscriptions"), 0);

    const char *dargv[] = {"dispatcher", NULL};
    const char *pargv[] = {"publisher", NULL};
    jb_tproc *d = jb_tproc_start(dargv, disp.env, 0);
    jb_tproc *p = jb_tproc_start(pargv, pub.env, ingress_port);
    CU_ASSERT_TRUE_FATAL(d != NULL && p != NULL);
    /* The first event may come before the consumer exists (deliver policy new):
     * publish until one arrives. */
    size_t got = 0;
    for (int i = 0; i < 30 && got == 0; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ok-%d", i);
        CU_ASSERT_TRUE(publish_event(ingress_port, id));
        got = jb_tsink_wait(e.sink, 1, 1000);
    }
    CU_ASSERT_TRUE_FATAL(got >= 1);
    static const int codes[] = {400};
    jb_tsink_script(e.sink, codes, 1, 200, 0, 0);
    size_t before = jb_tsink_count(e.sink);
    CU_ASSERT_TRUE(publish_event(ingress_port, "dead-1"));
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, before + 1, 15000) >= before + 1);

    const char *list[] = {"dlq", "list", NULL};
    for (int i = 0; i < 50; i++) {
        free(out);
        out = NULL;
        run_role(&op, list, &out, NULL);
        if (out != NULL && strstr(out, "dead-1") != NULL)
            break;
        jb_sleep_ms(200);
    }
    CU_ASSERT_TRUE(out != NULL && strstr(out, "dead-1") != NULL);
    free(out);
    before = jb_tsink_count(e.sink);
    const char *rep[] = {"dlq", "replay", "--republish", NULL};
    CU_ASSERT_EQUAL(run_role(&op, rep, NULL, NULL), 0);
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, before + 1, 15000) >= before + 1);
    const char *stats[] = {"stats", NULL};
    CU_ASSERT_EQUAL(run_role(&op, get, NULL, NULL), 0);
    CU_ASSERT_EQUAL(run_role(&op, stats, NULL, NULL), 0);
    /* The dispatcher's reconciler listed the store at start (its first full pass). */
    char *dlog = jb_tproc_log(d);
    CU_ASSERT_TRUE(dlog != NULL && strstr(dlog, "listing subscriptions") == NULL);
    free(dlog);

    char *slog = jb_tproc_log(e.server);
    CU_ASSERT_TRUE(slog != NULL && strstr(slog, "Violation") == NULL);
    if (slog != NULL && strstr(slog, "Violation") != NULL)
        fprintf(stderr, "%s\n", strstr(slog, "Violation"));
    free(slog);
    char *plog = jb_tproc_log(p);
    CU_ASSERT_TRUE(plog != NULL && strstr(plog, "Publ1sher-pw") == NULL);
    free(plog);
    jb_tproc_stop(p);
    jb_tproc_stop(d);
    tenv_stop(&e);
}

/* The publisher's credential publishes events, and nothing else that matters: no
 * consumer, no read of the subscription store, no dead letters. */
static void test_publisher_least_privilege(void)
{
    tenv e;
    CU_ASSERT_TRUE_FATAL(start_secured(&e));
    role op, pub;
    role_env(&e, &op, "operator", PW_OP, NULL);
    role_env(&e, &pub, "publisher", PW_PUB, NULL);
    /* The operator makes the store; the publisher may make its stream. */
    const char *get[] = {"sub", "get", NULL};
    CU_ASSERT_EQUAL(run_role(&op, get, NULL, NULL), 0);

    client c;
    CU_ASSERT_TRUE_FATAL(client_connect(&e, &c, "publisher", "Publ1sher-pw"));
    jsCtx *js = c.js;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = "sap";
    const char *subj[] = {"kyma.>"};
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_MemoryStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    CU_ASSERT_EQUAL(js_AddStream(&si, js, &sc, NULL, &jerr), NATS_OK);
    jsStreamInfo_Destroy(si);
    CU_ASSERT_EQUAL(js_Publish(NULL, js, "kyma.myapp." TYPE, "{}", 2, NULL, &jerr), NATS_OK);
    /* Refused: creating a consumer (and so reading events), reading the KV store. */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "thief";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo *ci = NULL;
    CU_ASSERT_NOT_EQUAL(js_AddConsumer(&ci, js, "sap", &cc, NULL, &jerr), NATS_OK);
    jsConsumerInfo_Destroy(ci);
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, js, "jetbridge-subscriptions");
    CU_ASSERT_NOT_EQUAL(s, NATS_OK);
    kvStore_Destroy(kv);
    natsMsg *m = NULL;
    CU_ASSERT_NOT_EQUAL(js_GetMsg(&m, js, "KV_jetbridge-subscriptions", 1, NULL, &jerr), NATS_OK);
    natsMsg_Destroy(m);
    client_close(&c);
    /* And the CLI with it cannot list subscriptions. */
    char *err = NULL;
    CU_ASSERT_NOT_EQUAL(run_role(&pub, get, NULL, &err), 0);
    free(err);
    tenv_stop(&e);
}

/* tls:// insists on TLS and verification: without the CA the server's certificate
 * is refused; a password in NATS_URL never appears in the error. */
static void test_tls_verified_and_url_password_hidden(void)
{
    tenv e;
    CU_ASSERT_TRUE_FATAL(start_secured(&e));
    char url[128], cert[200], key[200];
    snprintf(url, sizeof(url), "NATS_URL=tls://operator:" PASSWORD "@127.0.0.1:%d", e.port);
    snprintf(cert, sizeof(cert), "NATS_TLS_CERT=%s", e.path[CLI_CERT]);
    snprintf(key, sizeof(key), "NATS_TLS_KEY=%s", e.path[CLI_KEY]);
    const char *env[] = {url, cert, key, "NATS_TLS_CA", NULL};
    const char *get[] = {"sub", "get", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(get, env, &out, &err, 30000), 0);
    CU_ASSERT_TRUE(err != NULL && strstr(err, PASSWORD) == NULL);
    CU_ASSERT_TRUE(err != NULL && strstr(err, "tls://redacted@127.0.0.1") != NULL);
    free(out);
    free(err);
    /* With the CA it connects, and the log still hides the password. */
    char ca[200];
    snprintf(ca, sizeof(ca), "NATS_TLS_CA=%s", e.path[CA]);
    const char *env2[] = {url, cert, key, ca, "APP_LOG_LEVEL=debug", NULL};
    out = err = NULL;
    CU_ASSERT_EQUAL(jb_trun_capture(get, env2, &out, &err, 30000), 0);
    CU_ASSERT_TRUE(err != NULL && strstr(err, PASSWORD) == NULL);
    free(out);
    free(err);
    tenv_stop(&e);
}

/* A password in NATS_URL of the long-running processes: the dispatcher's "started"
 * log line and `run`'s banner name the server without it. */
static void test_url_password_hidden_in_logs_and_banner(void)
{
    tenv e;
    CU_ASSERT_TRUE_FATAL(tenv_start(&e));
    char store[160], port[16];
    snprintf(store, sizeof(store), "%s/store", e.dir);
    e.port = jb_free_port();
    snprintf(port, sizeof(port), "%d", e.port);
    const char *sargv[] = {"-js", "-a",     "127.0.0.1", "-p",     port,     "-sd",
                           store, "--user", "op",        "--pass", PASSWORD, NULL};
    const char *senv[] = {NULL};
    e.server = jb_tproc_start_exe(NATS_SERVER, sargv, senv, e.port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e.server);
    char url[128], admin[64], ingress[64], data[200];
    snprintf(url, sizeof(url), "NATS_URL=nats://op:" PASSWORD "@127.0.0.1:%d", e.port);
    snprintf(admin, sizeof(admin), "METRICS_ADDR=127.0.0.1:%d", jb_free_port());
    snprintf(ingress, sizeof(ingress), "INGRESS_PORT=%d", jb_free_port());
    snprintf(data, sizeof(data), "DATA_DIR=%s", e.dir);
    const char *env[] = {url, admin, ingress, data, "INGRESS_ADDR=127.0.0.1", NULL};
    const char *roles[][2] = {{"dispatcher", NULL}, {"run", NULL}};
    const char *want[] = {"\"msg\":\"started\"", "jetbridge is running"};
    for (size_t i = 0; i < 2; i++) {
        jb_tproc *proc = jb_tproc_start(roles[i], env, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(proc);
        char *log = NULL;
        for (int t = 0; t < 300; t++) {
            free(log);
            log = jb_tproc_log(proc);
            if (log != NULL && strstr(log, want[i]) != NULL && strstr(log, "redacted@") != NULL)
                break;
            jb_sleep_ms(100);
        }
        CU_ASSERT_TRUE(log != NULL && strstr(log, want[i]) != NULL);
        CU_ASSERT_TRUE(log != NULL && strstr(log, "nats://redacted@127.0.0.1") != NULL);
        CU_ASSERT_TRUE(log != NULL && strstr(log, PASSWORD) == NULL);
        free(log);
        jb_tproc_stop(proc);
    }
    tenv_stop(&e);
}

/* nkey (the public key derived from the seed file) and token authentication. */
static void test_nkey_and_token(void)
{
    tenv e;
    CU_ASSERT_TRUE_FATAL(tenv_start(&e));
    uint8_t raw[32], other[32];
    CU_ASSERT_TRUE_FATAL(RAND_bytes(raw, 32) == 1 && RAND_bytes(other, 32) == 1);
    char seed[JB_NKEY_SEED_LEN + 1], wrong[JB_NKEY_SEED_LEN + 1], pub[JB_NKEY_PUBLIC_LEN + 1];
    CU_ASSERT_TRUE_FATAL(jb_nkey_user_seed(raw, seed) && jb_nkey_user_seed(other, wrong));
    CU_ASSERT_TRUE_FATAL(jb_nkey_user_public(seed, strlen(seed), pub));
    CU_ASSERT_EQUAL(pub[0], 'U');
    char conf[512], cpath[128], spath[128], wpath[128], tpath[128];
    snprintf(conf, sizeof(conf), "jetstream {}\nauthorization { users = [ {nkey: %s} ] }\n", pub);
    snprintf(cpath, sizeof(cpath), "%s/nkey.conf", e.dir);
    snprintf(spath, sizeof(spath), "%s/user.nk", e.dir);
    snprintf(wpath, sizeof(wpath), "%s/wrong.nk", e.dir);
    snprintf(tpath, sizeof(tpath), "%s/token", e.dir);
    char seedline[80], wrongline[80];
    snprintf(seedline, sizeof(seedline), "%s\n", seed);
    snprintf(wrongline, sizeof(wrongline), "%s\n", wrong);
    CU_ASSERT_TRUE_FATAL(out_write_file(cpath, conf) && out_write_file(spath, seedline) &&
                         out_write_file(wpath, wrongline));
    CU_ASSERT_TRUE_FATAL(start_server(&e, cpath, NULL));
    char url[64], s1[160], s2[160];
    snprintf(url, sizeof(url), "NATS_URL=nats://127.0.0.1:%d", e.port);
    snprintf(s1, sizeof(s1), "NATS_NKEY_SEED=%s", spath);
    snprintf(s2, sizeof(s2), "NATS_NKEY_SEED=%s", wpath);
    const char *get[] = {"sub", "get", NULL};
    const char *ok_env[] = {url, s1, NULL};
    const char *bad_env[] = {url, s2, NULL};
    const char *none_env[] = {url, NULL};
    CU_ASSERT_EQUAL(jb_trun_capture(get, ok_env, NULL, NULL, 30000), 0);
    char *err = NULL;
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(get, bad_env, NULL, &err, 30000), 0);
    CU_ASSERT_TRUE(err != NULL && strstr(err, seed) == NULL && strstr(err, wrong) == NULL);
    free(err);
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(get, none_env, NULL, NULL, 30000), 0);
    jb_tproc_stop(e.server);
    e.server = NULL;

    /* Token. */
    snprintf(conf, sizeof(conf), "jetstream {}\nauthorization { token: \"T0ken-secret\" }\n");
    CU_ASSERT_TRUE_FATAL(out_write_file(cpath, conf) && out_write_file(tpath, "T0ken-secret\n"));
    CU_ASSERT_TRUE_FATAL(start_server(&e, cpath, NULL));
    snprintf(url, sizeof(url), "NATS_URL=nats://127.0.0.1:%d", e.port);
    snprintf(s1, sizeof(s1), "NATS_TOKEN_FILE=%s", tpath);
    const char *tok_env[] = {url, s1, NULL};
    CU_ASSERT_EQUAL(jb_trun_capture(get, tok_env, NULL, NULL, 30000), 0);
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(get, none_env, NULL, NULL, 30000), 0);
    /* Two ways at once is a configuration error naming the keys. */
    const char *both_env[] = {url, s1, "NATS_USER=x", "NATS_PASSWORD_FILE=/dev/null", NULL};
    err = NULL;
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(get, both_env, NULL, &err, 30000), 0);
    CU_ASSERT_TRUE(err != NULL && strstr(err, "NATS_TOKEN_FILE") != NULL);
    free(err);
    tenv_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"roles_end_to_end", test_roles_end_to_end},
        {"publisher_least_privilege", test_publisher_least_privilege},
        {"tls_verified_and_url_password_hidden", test_tls_verified_and_url_password_hidden},
        {"url_password_hidden_in_logs_and_banner", test_url_password_hidden_in_logs_and_banner},
        {"nkey_and_token", test_nkey_and_token},
    };
    return jb_cunit_main("out_nats", NULL, NULL, cases, JB_CASES_N(cases));
}
