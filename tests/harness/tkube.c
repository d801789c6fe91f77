/*
 * A real Kubernetes API server per test: etcd plus kube-apiserver v1.20.2 on free loopback ports
 * with a temporary data directory, started as children that die with the test process.
 * Users authenticate with static bearer tokens (--token-auth-file); RBAC decides what each may do.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "jb_testenv.h"
#include "th_internal.h"

#define TKUBE_READY_MS       120000 /* a loaded 2-core machine can take a minute */
#define TKUBE_ETCD_READY_MS  60000
#define TKUBE_STOP_GRACE_MS  10000
#define TKUBE_KUBECTL_MS     120000
#define TKUBE_TOOLS_MS       (30 * 60 * 1000) /* a build from source takes about 6 minutes */
#define TKUBE_CRD_READY_MS   60000
#define TKUBE_START_ATTEMPTS 3
#define TKUBE_OUTPUT_MAX     (8u << 20)
#define TKUBE_NUSERS         3
#define TKUBE_TOKEN_BYTES    24
#define TKUBE_PATH_MAX       512
#define TKUBE_SA_KEY_BITS    2048
#define TKUBE_LOG_TAIL       4000

/* The test users (KUBE_HARNESS contract): name used by tests, Kubernetes user name, groups. */
static const struct {
    const char *name;
    const char *user;
    const char *groups; /* "" for none */
} tkube_users[TKUBE_NUSERS] = {
    {"admin", "admin", "system:masters"},
    {"controller", "jetbridge-controller", ""},
    {"norbac", "jetbridge-norbac", ""},
};

/* Every watch goes straight to etcd: with the API server's watch cache, a watch from an older
 * resourceVersion is served from the cache's window whatever etcd compacted, and version 1.20
 * ignores --watch-cache-sizes for custom resources. Without the cache, jb_tkube_compact makes
 * such a watch fail with 410 Gone at once, as the tests of relisting need. The price: no BOOKMARK
 * events (only the cache sends them; clients must work without them anyway). */
#define TKUBE_NO_WATCH_CACHE "--watch-cache=false"

struct jb_tkube {
    pid_t etcd_pid; /* -1 while stopped */
    pid_t api_pid;
    int etcd_port;
    int peer_port;
    int api_port;
    unsigned kubectl_runs; /* names each kubectl's output file */
    char url[64];
    char dir[128];
    char path_buf[TKUBE_PATH_MAX]; /* scratch for paths built on the fly */
    char etcd_exe[TKUBE_PATH_MAX];
    char api_exe[TKUBE_PATH_MAX];
    char kubectl_exe[TKUBE_PATH_MAX];
    char ca_file[TKUBE_PATH_MAX];
    char tokens[TKUBE_NUSERS][TKUBE_TOKEN_BYTES * 2 + 1];
    char kubeconfigs[TKUBE_NUSERS][TKUBE_PATH_MAX];
    bool watch_cache;
    char client_ca[TKUBE_PATH_MAX]; /* "" unless opts.client_ca_file */
    char audit_log[TKUBE_PATH_MAX]; /* "" unless opts.audit */
};

/* What the audit log records (opts.audit): list and watch of Subscriptions, at the stage the
 * answer starts (a watch is logged when it begins, not when it ends). */
static const char audit_policy[] = "apiVersion: audit.k8s.io/v1\n"
                                   "kind: Policy\n"
                                   "omitStages: [RequestReceived, ResponseComplete, Panic]\n"
                                   "rules:\n"
                                   "- level: Metadata\n"
                                   "  verbs: [list, watch]\n"
                                   "  resources:\n"
                                   "  - group: eventing.kyma-project.io\n"
                                   "    resources: [subscriptions]\n"
                                   "- level: None\n";

static const char *const etcd_fallbacks[] = {"/usr/bin/etcd", "/usr/local/bin/etcd", NULL};
static const char *const kubectl_fallbacks[] = {"/usr/bin/kubectl", "/usr/local/bin/kubectl", NULL};

/* dir/name into out; false when it does not fit. */
static bool in_dir(const jb_tkube *k, const char *name, char *out, size_t outsz)
{
    return (size_t)snprintf(out, outsz, "%s/%s", k->dir, name) < outsz;
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static void print_log_tail(const jb_tkube *k, const char *name)
{
    char path[TKUBE_PATH_MAX];
    size_t len = 0;
    if (!in_dir(k, name, path, sizeof(path)))
        return;
    char *log = jb_th_read_file(path, TKUBE_OUTPUT_MAX, &len);
    if (log == NULL)
        return;
    const char *tail = len > TKUBE_LOG_TAIL ? log + len - TKUBE_LOG_TAIL : log;
    fprintf(stderr, "harness: %s (tail):\n%s\n", path, tail);
    free(log);
}

/* Runs exe with argv (argv[0] included) to completion, output to the test's stderr or to
 * out_path. Returns the exit code, -1 when it could not start or ran past timeout_ms (killed). */
static int run_wait(const char *exe, const char *const *argv, const char *out_path,
                    const char *in_path, int timeout_ms)
{
    jb_th_spawn sp = {.exe = exe,
                      .argv = argv,
                      .env_add = NULL,
                      .out_path = out_path,
                      .err_path = out_path,
                      .in_path = in_path};
    pid_t pid = jb_th_spawn_child(&sp);
    if (pid < 0)
        return -1;
    int st;
    if (!jb_th_wait_pid(pid, timeout_ms, &st)) {
        fprintf(stderr, "harness: %s did not finish within %d ms, killed\n", exe, timeout_ms);
        jb_th_kill_reap(pid, 0);
        return -1;
    }
    return jb_th_decode_status(st);
}

/* Finds etcd, kube-apiserver and kubectl; runs scripts/kube-tools once when one is missing. */
static bool find_tools(jb_tkube *k)
{
    const char *api = getenv("JB_KUBE_APISERVER");
    if (api == NULL || api[0] == '\0')
        api = JB_SOURCE_DIR "/build/tools/kube-apiserver";
    for (int attempt = 0; attempt < 2; attempt++) {
        bool have_api = jb_th_find_exe(api, NULL, k->api_exe, sizeof(k->api_exe));
        bool have_etcd = jb_th_find_exe("etcd", etcd_fallbacks, k->etcd_exe, sizeof(k->etcd_exe));
        bool have_kubectl =
            jb_th_find_exe("kubectl", kubectl_fallbacks, k->kubectl_exe, sizeof(k->kubectl_exe));
        if (have_api && have_etcd && have_kubectl)
            return true;
        if (attempt > 0)
            break;
        fprintf(stderr, "harness: running scripts/kube-tools (missing:%s%s%s)\n",
                have_api ? "" : " kube-apiserver", have_etcd ? "" : " etcd",
                have_kubectl ? "" : " kubectl");
        const char *argv[] = {"kube-tools", NULL};
        if (run_wait(JB_SOURCE_DIR "/scripts/kube-tools", argv, NULL, NULL, TKUBE_TOOLS_MS) != 0)
            break;
    }
    fprintf(stderr,
            "harness: kube-apiserver (%s), etcd or kubectl missing and scripts/kube-tools "
            "could not provide them\n",
            api);
    return false;
}

static bool random_hex(char *out, size_t nbytes)
{
    unsigned char raw[TKUBE_TOKEN_BYTES];
    static const char hex[] = "0123456789abcdef";
    if (nbytes > sizeof(raw) || RAND_bytes(raw, (int)nbytes) != 1)
        return false;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return true;
}

/* The key that signs and verifies service-account tokens (TokenRequest needs both). */
static bool write_sa_key(const char *path)
{
    bool ok = false;
    FILE *f = NULL;
    EVP_PKEY *key = EVP_RSA_gen(TKUBE_SA_KEY_BITS);
    if (key == NULL)
        goto out;
    f = fopen(path, "w");
    if (f == NULL)
        goto out;
    ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
out:
    if (f != NULL && fclose(f) != 0)
        ok = false;
    EVP_PKEY_free(key);
    return ok;
}

/* tokens.csv: token,user,uid[,"group,..."] as --token-auth-file reads it. */
static bool write_tokens(jb_tkube *k)
{
    char path[TKUBE_PATH_MAX], text[1024];
    size_t n = 0;
    for (int i = 0; i < TKUBE_NUSERS; i++) {
        if (!random_hex(k->tokens[i], TKUBE_TOKEN_BYTES))
            return false;
        int w = snprintf(text + n, sizeof(text) - n, "%s,%s,%s%s%s%s\n", k->tokens[i],
                         tkube_users[i].user, tkube_users[i].user,
                         tkube_users[i].groups[0] != '\0' ? ",\"" : "", tkube_users[i].groups,
                         tkube_users[i].groups[0] != '\0' ? "\"" : "");
        if (w < 0 || (size_t)w >= sizeof(text) - n)
            return false;
        n += (size_t)w;
    }
    return in_dir(k, "tokens.csv", path, sizeof(path)) && write_text(path, text);
}

/* One kubeconfig per user; the CA file appears when the API server first starts (it writes its
 * self-signed certificate into --cert-dir and keeps it across restarts). */
static bool write_kubeconfigs(jb_tkube *k)
{
    for (int i = 0; i < TKUBE_NUSERS; i++) {
        char name[64], text[2048];
        snprintf(name, sizeof(name), "kubeconfig-%s", tkube_users[i].name);
        if (!in_dir(k, name, k->kubeconfigs[i], sizeof(k->kubeconfigs[i])))
            return false;
        int w = snprintf(text, sizeof(text),
                         "apiVersion: v1\n"
                         "kind: Config\n"
                         "clusters:\n"
                         "- name: jb-test\n"
                         "  cluster:\n"
                         "    server: %s\n"
                         "    certificate-authority: %s\n"
                         "users:\n"
                         "- name: %s\n"
                         "  user:\n"
                         "    token: %s\n"
                         "contexts:\n"
                         "- name: %s\n"
                         "  context:\n"
                         "    cluster: jb-test\n"
                         "    user: %s\n"
                         "    namespace: default\n"
                         "current-context: %s\n",
                         k->url, k->ca_file, tkube_users[i].name, k->tokens[i], tkube_users[i].name,
                         tkube_users[i].name, tkube_users[i].name);
        if (w < 0 || (size_t)w >= sizeof(text) || !write_text(k->kubeconfigs[i], text))
            return false;
    }
    return true;
}

/* A response body growing up to TKUBE_OUTPUT_MAX; NULL data after an overflow. */
typedef struct body_buf {
    char *data;
    size_t len;
    bool keep;
} body_buf;

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;
    if (!b->keep)
        return n;
    if (b->len + n > TKUBE_OUTPUT_MAX)
        return 0; /* curl fails the transfer: an answer this large is a bug */
    char *grown = realloc(b->data, b->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* method path as the user with token (NULL: none), TLS verified with the server's certificate;
 * the HTTP status or -1. */
static long https_call(const jb_tkube *k, const char *token, const char *method, const char *path,
                       const char *content_type, const char *body, char **out)
{
    char url[1024], auth[128], ctype[128];
    long code = -1;
    body_buf buf = {.data = NULL, .len = 0, .keep = out != NULL};
    struct curl_slist *hdrs = NULL;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    if ((size_t)snprintf(url, sizeof(url), "%s%s", k->url, path) >= sizeof(url))
        goto out;
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (content_type != NULL) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ctype);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 0 && out != NULL) {
        *out = buf.data != NULL ? buf.data : strdup("");
        buf.data = NULL;
    }
out:
    free(buf.data);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return code;
}

static long https_status(const jb_tkube *k, const char *path)
{
    return https_call(k, k->tokens[0], "GET", path, NULL, NULL, NULL);
}

/* True when pid (our child) has exited; reaps it and sets *pid to -1. */
static bool child_gone(pid_t *pid)
{
    int st;
    if (*pid < 0)
        return true;
    if (!jb_th_wait_pid(*pid, 0, &st))
        return false;
    *pid = -1;
    return true;
}

static bool etcd_healthy(const jb_tkube *k)
{
    char *body = NULL;
    int code = jb_http(k->etcd_port, "GET", "/health", NULL, NULL, 0, &body, NULL, NULL);
    bool healthy = code == 200 && body != NULL && strstr(body, "\"true\"") != NULL;
    free(body);
    return healthy;
}

static bool apiserver_ready(const jb_tkube *k)
{
    struct stat st;
    /* The CA file exists once the server generated its certificate; before, TLS cannot be
     * verified and curl would only report a missing file. */
    return stat(k->ca_file, &st) == 0 && https_status(k, "/readyz") == 200;
}

/* Polls probe until it holds or timeout_ms passed; kills and reaps *pid on timeout. False also
 * when *pid exited meanwhile (its port taken, bad flags). */
static bool wait_ready(jb_tkube *k, pid_t *pid, bool (*probe)(const jb_tkube *), int timeout_ms,
                       const char *what, int port)
{
    int64_t deadline = jb_now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    while (jb_now_monotonic_ns() < deadline) {
        bool ready = probe(k);
        /* Checked after the probe: if our child died, whoever answered is someone else's. */
        if (child_gone(pid))
            return false;
        if (ready)
            return true;
        jb_sleep_ms(100);
    }
    fprintf(stderr, "harness: %s on port %d not ready after %d ms\n", what, port, timeout_ms);
    jb_th_kill_reap(*pid, 0);
    *pid = -1;
    return false;
}

static bool start_etcd(jb_tkube *k)
{
    char data[TKUBE_PATH_MAX], log[TKUBE_PATH_MAX], client[64], peer[64], cluster[96];
    if (!in_dir(k, "etcd", data, sizeof(data)) || !in_dir(k, "etcd.log", log, sizeof(log)))
        return false;
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", k->etcd_port);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", k->peer_port);
    snprintf(cluster, sizeof(cluster), "jb=%s", peer);
    const char *argv[] = {k->etcd_exe, "--name",
                          "jb",        "--data-dir",
                          data,        "--listen-client-urls",
                          client,      "--advertise-client-urls",
                          client,      "--listen-peer-urls",
                          peer,        "--initial-advertise-peer-urls",
                          peer,        "--initial-cluster",
                          cluster,     NULL};
    jb_th_spawn sp = {.exe = k->etcd_exe, .argv = argv, .out_path = log, .err_path = log};
    k->etcd_pid = jb_th_spawn_child(&sp);
    if (k->etcd_pid < 0)
        return false;
    return wait_ready(k, &k->etcd_pid, etcd_healthy, TKUBE_ETCD_READY_MS, "etcd", k->etcd_port);
}

/* Spawns kube-apiserver on k->api_port and waits for /readyz. */
static bool start_apiserver(jb_tkube *k)
{
    char etcd[64], port[16], certs[TKUBE_PATH_MAX], sa[TKUBE_PATH_MAX], tokens[TKUBE_PATH_MAX],
        log[TKUBE_PATH_MAX], etcd_arg[96], certs_arg[TKUBE_PATH_MAX + 16],
        sa_arg[TKUBE_PATH_MAX + 40], sa_sign_arg[TKUBE_PATH_MAX + 40],
        tokens_arg[TKUBE_PATH_MAX + 24], port_arg[40], ca_arg[TKUBE_PATH_MAX + 24],
        audit_arg[TKUBE_PATH_MAX + 24], policy_arg[TKUBE_PATH_MAX + 32], policy[TKUBE_PATH_MAX];
    if (!in_dir(k, "certs", certs, sizeof(certs)) || !in_dir(k, "sa.key", sa, sizeof(sa)) ||
        !in_dir(k, "tokens.csv", tokens, sizeof(tokens)) ||
        !in_dir(k, "apiserver.log", log, sizeof(log)))
        return false;
    snprintf(etcd, sizeof(etcd), "http://127.0.0.1:%d", k->etcd_port);
    snprintf(port, sizeof(port), "%d", k->api_port);
    snprintf(etcd_arg, sizeof(etcd_arg), "--etcd-servers=%s", etcd);
    snprintf(port_arg, sizeof(port_arg), "--secure-port=%s", port);
    snprintf(certs_arg, sizeof(certs_arg), "--cert-dir=%s", certs);
    snprintf(sa_arg, sizeof(sa_arg), "--service-account-key-file=%s", sa);
    snprintf(sa_sign_arg, sizeof(sa_sign_arg), "--service-account-signing-key-file=%s", sa);
    snprintf(tokens_arg, sizeof(tokens_arg), "--token-auth-file=%s", tokens);
    snprintf(ca_arg, sizeof(ca_arg), "--client-ca-file=%s", k->client_ca);
    snprintf(audit_arg, sizeof(audit_arg), "--audit-log-path=%s", k->audit_log);
    if (!in_dir(k, "audit-policy.yaml", policy, sizeof(policy)))
        return false;
    snprintf(policy_arg, sizeof(policy_arg), "--audit-policy-file=%s", policy);
    const char *argv[] = {k->api_exe, etcd_arg, "--bind-address=127.0.0.1",
                          "--advertise-address=127.0.0.1", port_arg, certs_arg, sa_arg, sa_sign_arg,
                          "--service-account-issuer=https://kubernetes.default.svc", tokens_arg,
                          "--authorization-mode=RBAC", "--service-cluster-ip-range=10.0.0.0/24",
                          "--enable-priority-and-fairness=false", "--profiling=false",
                          /* the options: each slot is an argument or the end */
                          k->watch_cache ? "--watch-cache=true" : TKUBE_NO_WATCH_CACHE,
                          k->client_ca[0] != '\0' ? ca_arg : NULL, NULL, NULL, NULL};
    size_t end = sizeof(argv) / sizeof(argv[0]) - 4;
    while (argv[end] != NULL)
        end++;
    if (k->audit_log[0] != '\0') {
        if (!write_text(policy, audit_policy))
            return false;
        argv[end++] = audit_arg;
        argv[end++] = policy_arg;
    }
    jb_th_spawn sp = {.exe = k->api_exe, .argv = argv, .out_path = log, .err_path = log};
    k->api_pid = jb_th_spawn_child(&sp);
    if (k->api_pid < 0)
        return false;
    return wait_ready(k, &k->api_pid, apiserver_ready, TKUBE_READY_MS, "kube-apiserver",
                      k->api_port);
}

static void set_api_port(jb_tkube *k, int port)
{
    k->api_port = port;
    snprintf(k->url, sizeof(k->url), "https://127.0.0.1:%d", port);
}

/* Creates the directory and every file the processes read. */
static bool prepare_dir(jb_tkube *k)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(k->dir, sizeof(k->dir), "%s/jb-kube-XXXXXX",
             tmp != NULL && strlen(tmp) < 64 ? tmp : "/tmp");
    if (mkdtemp(k->dir) == NULL) {
        perror("harness: mkdtemp");
        k->dir[0] = '\0';
        return false;
    }
    char sa[TKUBE_PATH_MAX], cache[TKUBE_PATH_MAX];
    if (!in_dir(k, "certs/apiserver.crt", k->ca_file, sizeof(k->ca_file)) ||
        !in_dir(k, "sa.key", sa, sizeof(sa)) || !in_dir(k, "kube-cache", cache, sizeof(cache)))
        return false;
    if (mkdir(cache, 0700) != 0 || !write_sa_key(sa) || !write_tokens(k)) {
        fprintf(stderr, "harness: cannot prepare %s\n", k->dir);
        return false;
    }
    return true;
}

jb_tkube *jb_tkube_start(void)
{
    static const jb_tkube_opts none = {false, NULL, false};
    return jb_tkube_start_opts(&none);
}

jb_tkube *jb_tkube_start_opts(const jb_tkube_opts *o)
{
    jb_tkube *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->etcd_pid = -1;
    k->api_pid = -1;
    k->watch_cache = o->watch_cache;
    if (o->client_ca_file != NULL && (size_t)snprintf(k->client_ca, sizeof(k->client_ca), "%s",
                                                      o->client_ca_file) >= sizeof(k->client_ca))
        goto fail;
    if (!find_tools(k) || !prepare_dir(k))
        goto fail;
    if (o->audit && !in_dir(k, "audit.log", k->audit_log, sizeof(k->audit_log)))
        goto fail;
    /* Another process may take a free port between probe and bind: try again with new ones. */
    for (int i = 0; i < TKUBE_START_ATTEMPTS && k->etcd_pid < 0; i++) {
        k->etcd_port = jb_free_port();
        k->peer_port = jb_free_port();
        if (k->etcd_port > 0 && k->peer_port > 0 && k->etcd_port != k->peer_port)
            start_etcd(k);
    }
    if (k->etcd_pid < 0) {
        fprintf(stderr, "harness: etcd did not start\n");
        print_log_tail(k, "etcd.log");
        goto fail;
    }
    for (int i = 0; i < TKUBE_START_ATTEMPTS && k->api_pid < 0; i++) {
        int port = jb_free_port();
        if (port <= 0)
            continue;
        set_api_port(k, port);
        if (write_kubeconfigs(k))
            start_apiserver(k);
    }
    if (k->api_pid < 0) {
        fprintf(stderr, "harness: kube-apiserver did not start\n");
        print_log_tail(k, "apiserver.log");
        goto fail;
    }
    return k;
fail:
    jb_tkube_stop(k);
    return NULL;
}

static int user_index(const char *user)
{
    for (int i = 0; user != NULL && i < TKUBE_NUSERS; i++)
        if (strcmp(user, tkube_users[i].name) == 0)
            return i;
    return -1;
}

const char *jb_tkube_url(const jb_tkube *k)
{
    return k->url;
}

const char *jb_tkube_kubeconfig(const jb_tkube *k, const char *user)
{
    int i = user_index(user);
    return i < 0 ? NULL : k->kubeconfigs[i];
}

const char *jb_tkube_token(const jb_tkube *k, const char *user)
{
    int i = user_index(user);
    return i < 0 ? NULL : k->tokens[i];
}

const char *jb_tkube_ca_file(const jb_tkube *k)
{
    return k->ca_file;
}

const char *jb_tkube_dir(const jb_tkube *k)
{
    return k->dir;
}

const char *jb_tkube_audit_log(const jb_tkube *k)
{
    return k->audit_log[0] != '\0' ? k->audit_log : NULL;
}

int jb_tkube_kubectl(jb_tkube *k, const char *args, const char *stdin_text, char **out)
{
    int rc = -1;
    char *cmd = NULL, out_path[TKUBE_PATH_MAX], in_path[TKUBE_PATH_MAX], name[64];
    unsigned run = k->kubectl_runs++;
    snprintf(name, sizeof(name), "kubectl-%u.out", run);
    if (!in_dir(k, name, out_path, sizeof(out_path)))
        return -1;
    snprintf(name, sizeof(name), "kubectl-%u.in", run);
    if (!in_dir(k, name, in_path, sizeof(in_path)))
        return -1;
    if (stdin_text != NULL && !write_text(in_path, stdin_text)) {
        fprintf(stderr, "harness: cannot write %s\n", in_path);
        return -1;
    }
    /* The temporary directory's name is ours (no quotes or spaces): it needs no shell quoting. */
    size_t len = strlen(args) + 3 * TKUBE_PATH_MAX + 64;
    cmd = malloc(len);
    if (cmd == NULL)
        goto out;
    snprintf(cmd, len, "exec '%s' --kubeconfig '%s' --cache-dir '%s/kube-cache' %s", k->kubectl_exe,
             k->kubeconfigs[0], k->dir, args);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    rc = run_wait("/bin/sh", argv, out_path, stdin_text != NULL ? in_path : NULL, TKUBE_KUBECTL_MS);
    if (out != NULL) {
        *out = jb_th_read_file(out_path, TKUBE_OUTPUT_MAX, NULL);
        if (*out == NULL)
            *out = strdup("");
    }
out:
    free(cmd);
    unlink(out_path);
    unlink(in_path);
    return rc;
}

int jb_tkube_request(jb_tkube *k, const char *user, const char *method, const char *path,
                     const char *content_type, const char *body, char **out)
{
    const char *token = NULL;
    if (user != NULL) {
        int i = user_index(user);
        if (i < 0)
            return -1;
        token = k->tokens[i];
    }
    return (int)https_call(k, token, method, path, content_type, body, out);
}

/* kubectl as admin, its output dropped; true on exit 0. */
static bool kubectl_ok(jb_tkube *k, const char *args)
{
    char *out = NULL;
    int rc = jb_tkube_kubectl(k, args, NULL, &out);
    if (rc != 0)
        fprintf(stderr, "harness: kubectl %s failed (%d):\n%s\n", args, rc, out ? out : "");
    free(out);
    return rc == 0;
}

bool jb_tkube_grant_shipped_rbac(jb_tkube *k)
{
    return kubectl_ok(k, "apply -f '" JB_SOURCE_DIR
                         "/deploy/kubernetes/namespace.yaml' -f '" JB_SOURCE_DIR
                         "/deploy/kubernetes/rbac.yaml'") &&
           kubectl_ok(k, "create clusterrolebinding jb-test --clusterrole=jetbridge "
                         "--user=jetbridge-controller") &&
           kubectl_ok(k,
                      "create rolebinding jb-test -n kyma-system --role=jetbridge-leader-election "
                      "--user=jetbridge-controller");
}

bool jb_tkube_install_crds(jb_tkube *k)
{
    char *out = NULL;
    int rc = jb_tkube_kubectl(k, "apply -f '" JB_SOURCE_DIR "/deploy/kubernetes/crds'", NULL, &out);
    if (rc != 0) {
        fprintf(stderr, "harness: kubectl apply of the CRDs failed (%d):\n%s\n", rc, out);
        free(out);
        return false;
    }
    free(out);
    /* Established means the API server serves the resources; kubectl also has to rediscover
     * them, so then wait until a plain get of each works as a user's would. */
    rc = jb_tkube_kubectl(k,
                          "wait --for condition=established --timeout=60s "
                          "crd/subscriptions.eventing.kyma-project.io "
                          "crd/applications.applicationconnector.kyma-project.io",
                          NULL, &out);
    if (rc != 0) {
        fprintf(stderr, "harness: the CRDs were not established (%d):\n%s\n", rc, out);
        free(out);
        return false;
    }
    free(out);
    int64_t deadline = jb_now_monotonic_ns() + (int64_t)TKUBE_CRD_READY_MS * 1000000;
    while (jb_now_monotonic_ns() < deadline) {
        if (jb_tkube_kubectl(k, "get subscriptions.eventing.kyma-project.io -A", NULL, NULL) == 0 &&
            jb_tkube_kubectl(k, "get applications.applicationconnector.kyma-project.io", NULL,
                             NULL) == 0)
            return true;
        jb_sleep_ms(500);
    }
    fprintf(stderr, "harness: the CRDs were not served within %d ms\n", TKUBE_CRD_READY_MS);
    return false;
}

bool jb_tkube_apiserver_kill(jb_tkube *k)
{
    if (k == NULL || k->api_pid < 0)
        return false;
    jb_th_kill_reap(k->api_pid, TKUBE_STOP_GRACE_MS);
    k->api_pid = -1;
    return true;
}

bool jb_tkube_apiserver_restart(jb_tkube *k)
{
    if (k == NULL || k->etcd_pid < 0)
        return false;
    if (k->api_pid >= 0)
        jb_tkube_apiserver_kill(k);
    if (start_apiserver(k))
        return true;
    fprintf(stderr, "harness: kube-apiserver did not restart on port %d\n", k->api_port);
    print_log_tail(k, "apiserver.log");
    return false;
}

/* etcd's JSON gateway (v3 API over HTTP): POST path with body, the parsed answer or NULL. */
static cJSON *etcd_post(const jb_tkube *k, const char *path, const char *body)
{
    char *resp = NULL;
    size_t len = 0;
    int code = jb_http(k->etcd_port, "POST", path, "Content-Type: application/json\r\n", body,
                       strlen(body), &resp, &len, NULL);
    cJSON *doc = code == 200 && resp != NULL ? cJSON_ParseWithLength(resp, len) : NULL;
    if (doc == NULL)
        fprintf(stderr, "harness: etcd %s answered %d: %s\n", path, code, resp ? resp : "");
    free(resp);
    return doc;
}

bool jb_tkube_compact(jb_tkube *k)
{
    bool ok = false;
    char body[96];
    /* A range read of any key returns the store's current revision in its header; int64 values
     * travel as JSON strings. "AA==" is the key "\0", base64. */
    cJSON *range = etcd_post(k, "/v3/kv/range", "{\"key\":\"AA==\"}");
    cJSON *compacted = NULL;
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(range, "header"), "revision");
    if (!cJSON_IsString(rev) || rev->valuestring[0] == '\0' ||
        strspn(rev->valuestring, "0123456789") != strlen(rev->valuestring) ||
        strlen(rev->valuestring) > 19) {
        fprintf(stderr, "harness: no revision in etcd's range answer\n");
        goto out;
    }
    snprintf(body, sizeof(body), "{\"revision\":\"%s\",\"physical\":true}", rev->valuestring);
    compacted = etcd_post(k, "/v3/kv/compaction", body);
    ok = compacted != NULL;
out:
    cJSON_Delete(range);
    cJSON_Delete(compacted);
    return ok;
}

void jb_tkube_stop(jb_tkube *k)
{
    if (k == NULL)
        return;
    if (k->api_pid >= 0)
        jb_th_kill_reap(k->api_pid, TKUBE_STOP_GRACE_MS);
    if (k->etcd_pid >= 0)
        jb_th_kill_reap(k->etcd_pid, TKUBE_STOP_GRACE_MS);
    if (getenv("JB_TEST_LOGS") != NULL && k->dir[0] != '\0') {
        print_log_tail(k, "etcd.log");
        print_log_tail(k, "apiserver.log");
    }
    if (k->dir[0] != '\0')
        jb_th_rm_tree(k->dir);
    free(k);
}
