/*
 * Test environment: real parts, no mocks.
 *  - jb_tnats: a real `nats-server -js` on a free loopback port with a temporary
 *    store, stopped (and its store removed) by jb_tnats_stop even after a failed test.
 *  - jb_tsink: an HTTP sink on a free loopback port, on its own thread, that records
 *    every request and answers from a script of status codes.
 *  - jb_tproc: the real `jetbridge` binary started with arguments and environment.
 *  - jb_tkube: a real etcd + kube-apiserver (v1.20.2) on free loopback ports.
 */
#ifndef JB_TESTENV_H
#define JB_TESTENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------ nats-server */

typedef struct jb_tnats jb_tnats;

/* Starts nats-server -js on 127.0.0.1 with a free port and a fresh store directory;
 * waits until it accepts connections and answers a JetStream request (at most
 * 10 s). NULL on failure (reason and the server's log on stderr). The server gets
 * PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that started it, so start it
 * from the test's main thread. */
jb_tnats *jb_tnats_start(void);
/* The same with a nats-server configuration file whose text is conf (NULL: none),
 * for limits such as "jetstream { max_file_store: 1MB }". The port, address and
 * store directory are still the harness's (flags win over the file). */
jb_tnats *jb_tnats_start_with(const char *conf);
/* "nats://127.0.0.1:<port>" */
const char *jb_tnats_url(const jb_tnats *n);
int jb_tnats_port(const jb_tnats *n);
/* Stops the server (SIGTERM then SIGKILL) and keeps the store; jb_tnats_restart
 * starts it again on the same port and store. Both return true on success. */
bool jb_tnats_kill(jb_tnats *n);
bool jb_tnats_restart(jb_tnats *n);
/* Stops the server and removes the store; NULL is fine. */
void jb_tnats_stop(jb_tnats *n);
/* A client of n, as the suites that use the store directly need it: *cfg the
 * defaults with NATS_URL set to n (reconnect every 100 ms), *nc and *js a
 * connection with nats.c's own threads. Each out-pointer is set as soon as it
 * exists, so jb_tnats_client_close frees what there is after a failure too. True
 * when connected; otherwise the reason is printed. */
struct jb_cfg;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;
bool jb_tnats_client(jb_tnats *n, struct jb_cfg **cfg, natsConnection **nc, jsCtx **js);
void jb_tnats_client_close(struct jb_cfg *cfg, natsConnection *nc, jsCtx *js);
/* Kills the server with SIGKILL (no clean shutdown: a crash) and keeps the store;
 * jb_tnats_restart brings it back. True when a server was running. */
bool jb_tnats_crash(jb_tnats *n);
/* The temporary directory holding the store ("store/") and the server's log
 * ("nats.log"); removed by jb_tnats_stop. */
const char *jb_tnats_dir(const jb_tnats *n);
/* The server's pid, or -1 while it is stopped. */
pid_t jb_tnats_pid(const jb_tnats *n);

/* ------------------------------------------------------------------- sink */

typedef struct jb_tsink jb_tsink;

/* One recorded request. Strings are NUL-terminated copies. */
typedef struct jb_treq {
    char method[8];
    char *path;
    char **header_names; /* lower-case */
    char **header_values;
    size_t nheaders;
    unsigned char *body;
    size_t body_len;
    int64_t received_ns; /* monotonic */
    int status;          /* what the sink answered */
} jb_treq;

/* Starts a sink. Answers 200 unless a script was set. */
jb_tsink *jb_tsink_start(void);
/* "http://127.0.0.1:<port>/" */
const char *jb_tsink_url(const jb_tsink *s);
int jb_tsink_port(const jb_tsink *s);
/* Answers the next n requests with codes[0..n), then `then` forever. retry_after,
 * when > 0, is sent as Retry-After (seconds) with 429/503 answers. delay_ms delays
 * every answer (to test timeouts and concurrency); -1 never answers. */
void jb_tsink_script(jb_tsink *s, const int *codes, size_t n, int then, int retry_after,
                     int delay_ms);
/* Answers with an empty body (default: "sink answered <code>\n"), for answers
 * whose dead letter carries an empty errordata. */
void jb_tsink_empty_body(jb_tsink *s, bool empty);
/* Number of requests recorded so far. Recording stops at 1,000,000 requests (a
 * memory bound); later requests are still answered and counted by jb_tsink_total. */
size_t jb_tsink_count(jb_tsink *s);
size_t jb_tsink_total(jb_tsink *s);
/* Waits until at least n requests were recorded, at most timeout_ms; returns the count. */
size_t jb_tsink_wait(jb_tsink *s, size_t n, int timeout_ms);
/* Copy of request i (0-based) into *out; false when i is out of range. Free with
 * jb_treq_free. */
bool jb_tsink_get(jb_tsink *s, size_t i, jb_treq *out);
void jb_treq_free(jb_treq *r);
/* Header value of a recorded request (name lower-case), or NULL. */
const char *jb_treq_header(const jb_treq *r, const char *name);
/* Largest number of requests in progress at the same time so far. */
size_t jb_tsink_max_concurrent(jb_tsink *s);
/* Answers every request held back by delay_ms (including -1) now, with its scripted
 * code; the sink keeps running. Asynchronous: returns before the answers are sent. */
void jb_tsink_release(jb_tsink *s);
/* Requests received and not answered yet. */
size_t jb_tsink_in_progress(jb_tsink *s);
/* Stops the sink: requests still held back (delay) are answered 503 first. Frees
 * every record. NULL is fine. */
void jb_tsink_stop(jb_tsink *s);

/* ---------------------------------------------------------------- process */

typedef struct jb_tproc jb_tproc;

/* Starts JB_BINARY (PR_SET_PDEATHSIG as for jb_tnats) with argv (NULL-terminated, argv[0] is the
 * subcommand) and extra environment entries env (NULL-terminated "K=V", added to the test's
 * environment; an entry "K" without '=' removes K, e.g. "NATS_URL"). stdout/stderr go to a temp log
 * file. When wait_port > 0, waits until something listens on 127.0.0.1:wait_port (at most 15 s).
 * NULL on failure. */
jb_tproc *jb_tproc_start(const char *const *argv, const char *const *env, int wait_port);
/* The same for another program (absolute path exe; argv excludes the program name). */
jb_tproc *jb_tproc_start_exe(const char *exe, const char *const *argv, const char *const *env,
                             int wait_port);
/* Path of a program built next to JB_BINARY (e.g. "sink" from examples/); false
 * when it is not there. */
bool jb_built_program(const char *name, char *out, size_t outsz);
pid_t jb_tproc_pid(const jb_tproc *p);
/* Sends sig; jb_tproc_wait waits for exit up to timeout_ms and returns the exit
 * status (as from waitpid, decoded: exit code, or 128+signal), -1 on timeout. */
void jb_tproc_signal(jb_tproc *p, int sig);
int jb_tproc_wait(jb_tproc *p, int timeout_ms);
/* The process's log so far: stdout and stderr interleaved (malloc'd, caller frees).
 * The log file is removed by jb_tproc_stop; JB_TEST_LOGS=1 prints it there first. */
char *jb_tproc_log(jb_tproc *p);
/* SIGTERM, wait up to 10 s, then SIGKILL; frees. NULL is fine. */
void jb_tproc_stop(jb_tproc *p);

/* Runs JB_BINARY to completion (argv as above), capturing stdout into *out (malloc'd)
 * when out is not NULL. Returns the exit code. */
int jb_trun(const char *const *argv, const char *const *env, char **out, int timeout_ms);
/* The same, capturing stderr separately into *err when err is not NULL (else it goes
 * to the test's stderr). Returns the exit code, -1 when it did not finish in
 * timeout_ms (it is then killed). */
int jb_trun_capture(const char *const *argv, const char *const *env, char **out, char **err,
                    int timeout_ms);

/* ------------------------------------------------------------- Kubernetes */

typedef struct jb_tkube jb_tkube;

/* Starts etcd and kube-apiserver on free loopback ports with a temporary data directory; both
 * get PR_SET_PDEATHSIG(SIGKILL) like jb_tnats, so start it from the test's main thread. Waits for
 * /readyz (at most 120 s: the machine may be loaded). The API server is build/tools/kube-apiserver
 * (JB_KUBE_APISERVER overrides); when it or etcd is missing, scripts/kube-tools is run once to
 * provide them. Writes a token file with these users and one kubeconfig per user (server URL,
 * the server's certificate as certificate-authority, the user's token):
 *   "admin"      group system:masters: may do anything
 *   "controller" user jetbridge-controller, no groups: RBAC decides (tests apply the RBAC of
 *                deploy/kubernetes bound to this user or to a ServiceAccount)
 *   "norbac"     user jetbridge-norbac, never granted anything
 * The API server runs without its watch cache (1.20 cannot switch it off per custom resource):
 * every watch is served by etcd, so after jb_tkube_compact a watch from an older resourceVersion
 * fails with 410 Gone at once; the price is that no watch receives BOOKMARK events.
 * NULL on failure (reason and log tails on stderr): a test that needs it then FAILS, never skips.
 */
jb_tkube *jb_tkube_start(void);
/* What jb_tkube_start_opts changes from jb_tkube_start (all false/NULL: the same). */
typedef struct jb_tkube_opts {
    bool watch_cache;           /* the API server's watch cache on: BOOKMARK events are sent (one
                                 * 2 s before a watch's timeoutSeconds ends), but a compacted
                                 * version no longer gives 410 at once */
    const char *client_ca_file; /* --client-ca-file: client certificates signed by this CA
                                 * authenticate (user = CN, groups = O) */
    bool audit;                 /* an audit log of every list and watch of Subscriptions, one JSON
                                 * line each with its requestURI: jb_tkube_audit_log */
} jb_tkube_opts;
jb_tkube *jb_tkube_start_opts(const jb_tkube_opts *o);
/* Path of the audit log (JSON lines, written by the API server), NULL without opts.audit. */
const char *jb_tkube_audit_log(const jb_tkube *k);
/* "https://127.0.0.1:<port>" */
const char *jb_tkube_url(const jb_tkube *k);
/* Path of the kubeconfig of user ("admin", "controller", "norbac"), NULL for another name. */
const char *jb_tkube_kubeconfig(const jb_tkube *k, const char *user);
/* The bearer token of user, NULL for another name. */
const char *jb_tkube_token(const jb_tkube *k, const char *user);
/* Path of the PEM file that verifies the API server's certificate (a CA bundle: what a pod finds
 * at /var/run/secrets/kubernetes.io/serviceaccount/ca.crt). */
const char *jb_tkube_ca_file(const jb_tkube *k);
/* The temporary directory (etcd data, certificates, logs "etcd.log" and "apiserver.log");
 * removed by jb_tkube_stop. */
const char *jb_tkube_dir(const jb_tkube *k);
/* Runs `kubectl --kubeconfig <admin kubeconfig> ARGS` through /bin/sh (args is a shell-quoted
 * string) and returns its exit code (-1: could not run or no exit within 120 s; it is then
 * killed). out, when not NULL, receives stdout and stderr interleaved (malloc'd, caller frees).
 * stdin_text, when not NULL, is kubectl's standard input (e.g. a manifest for "apply -f -").
 * kubectl's discovery cache lives in the temporary directory, never in $HOME. */
int jb_tkube_kubectl(jb_tkube *k, const char *args, const char *stdin_text, char **out);
/* One HTTPS request to the API server as user ("admin", "controller", "norbac"; NULL: no token),
 * TLS verified with jb_tkube_ca_file. path starts with '/'; body (may be NULL) is sent with
 * content_type (e.g. "application/merge-patch+json"). Returns the HTTP status, -1 when there was
 * no answer (10 s timeout). out, when not NULL, receives the body (malloc'd; at most 8 MiB).
 * For what kubectl 1.20 cannot do (PATCH of a status subresource, TokenRequest). */
int jb_tkube_request(jb_tkube *k, const char *user, const char *method, const char *path,
                     const char *content_type, const char *body, char **out);
/* Applies the CRDs of deploy/kubernetes/crds (Subscription, Application) and waits until both
 * are established and served (at most 60 s). */
bool jb_tkube_install_crds(jb_tkube *k);
/* Applies the shipped deploy/kubernetes/namespace.yaml and rbac.yaml and binds their
 * roles to the user jetbridge-controller (jb_tkube_kubeconfig(k, "controller")), so
 * the controller runs with exactly the rights the manifests grant; true on success. */
bool jb_tkube_grant_shipped_rbac(jb_tkube *k);
/* Stops kube-apiserver only (SIGTERM, then SIGKILL after 10 s); etcd keeps the data. */
bool jb_tkube_apiserver_kill(jb_tkube *k);
/* Starts kube-apiserver again on the same port and data; waits for /readyz (at most 120 s). */
bool jb_tkube_apiserver_restart(jb_tkube *k);
/* Compacts etcd at its current revision (physically), so a watch from an older
 * resourceVersion gets 410 Gone (an ERROR event with code 410, reason Expired). */
bool jb_tkube_compact(jb_tkube *k);
/* Stops both processes and removes the temporary directory; NULL is fine. */
void jb_tkube_stop(jb_tkube *k);

/* ------------------------------------------------------------------ misc */

/* A free TCP port on 127.0.0.1 (bind to 0, read, close). */
int jb_free_port(void);
/* Minimal HTTP/1.1 client for tests: sends one request to 127.0.0.1:port and
 * reads the answer. headers is "Name: value\r\n..." or NULL; Host, Connection:
 * close and Content-Length (when there is a body or the method is not GET/HEAD)
 * are added unless headers has them. Socket timeouts 10 s. Returns the status code
 * (or -1: no connection, timeout, malformed or short answer), with the body
 * (NUL-terminated, chunked decoded) copied into *resp (malloc'd) and its length
 * into *resp_len, and the raw response head into *resp_headers (malloc'd), each
 * when not NULL; they are set only on success. */
int jb_http(int port, const char *method, const char *path, const char *headers, const void *body,
            size_t body_len, char **resp, size_t *resp_len, char **resp_headers);
/* Sends request (raw bytes, e.g. a malformed request or a lying Content-Length) to
 * 127.0.0.1:port, half-closes, and parses the answer as jb_http does. */
int jb_http_raw(int port, const void *request, size_t len, char **resp, size_t *resp_len,
                char **resp_headers);
void jb_sleep_ms(int ms);
/* Removes a directory tree (nftw, no shell); a missing path is fine. */
void jb_rm_tree(const char *path);

#endif
