/*
 * common/: what every jetbridge command shares. Structured logging, a bounded
 * Prometheus registry, the admin HTTP listener (/metrics, /healthz, /readyz), the
 * NATS connection set-up, and small helpers (UUIDs, hashing, time).
 */
#ifndef JB_COMMON_H
#define JB_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

struct event_base;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;
typedef struct __natsMsg natsMsg;

/* ---------------------------------------------------------------- logging */

typedef enum jb_log_level {
    JB_LOG_DEBUG = 0,
    JB_LOG_INFO,
    JB_LOG_WARN,
    JB_LOG_ERROR,
} jb_log_level;

/* Sets the minimum level and the format (json != 0: one JSON object per line,
 * else "time level component event key=value ..."). Call once at start, before
 * any thread exists; the setting is read-only afterwards. Default: info, json. */
void jb_log_setup(jb_log_level min_level, bool json);

/* Parses "debug", "info", "warn", "error"; returns false on anything else. */
bool jb_log_level_parse(const char *s, jb_log_level *out);

/* Writes one line to stderr: {"ts":"...","level":"info","component":"publisher",
 * "msg":"listening","addr":"0.0.0.0:8080"}. After msg come key/value string pairs,
 * terminated by NULL. Values are JSON-escaped; never pass secrets. Thread-safe: a
 * line is written with one write(2). */
void jb_log(jb_log_level level, const char *component, const char *msg, ...)
    __attribute__((sentinel));

/* ---------------------------------------------------------------- metrics */

/* A registry of metric families. Thread-safe. Each family has a cap on label
 * series; past it, no new series is created: the update counts into the family's
 * one overflow series, whose every label value is "other", and
 * jetbridge_metrics_series_dropped_total counts it, so no label set grows without
 * bound and totals stay right. */
typedef struct jb_metrics jb_metrics;
typedef struct jb_metric jb_metric;

/* Creates a registry whose families each hold at most max_series series. */
jb_metrics *jb_metrics_create(size_t max_series);
void jb_metrics_destroy(jb_metrics *m);

/* Registers a family. label_names has nlabels entries (copied). For histograms,
 * buckets are the upper bounds in increasing order (copied), without +Inf.
 * Returns a pointer owned by the registry, valid until jb_metrics_destroy, or NULL
 * when out of memory or when a name is not a valid Prometheus name (or a histogram
 * label is "le"). Registering the same name twice returns the first family (NULL
 * when the type differs). A family without labels shows its one series (0) from
 * the start; a labelled family appears once it has a series. Output is ordered by
 * family name, then label values. Label values are cut at 512 bytes. */
jb_metric *jb_metrics_counter(jb_metrics *m, const char *name, const char *help, size_t nlabels,
                              const char *const *label_names);
jb_metric *jb_metrics_gauge(jb_metrics *m, const char *name, const char *help, size_t nlabels,
                            const char *const *label_names);
jb_metric *jb_metrics_histogram(jb_metrics *m, const char *name, const char *help, size_t nlabels,
                                const char *const *label_names, const double *buckets,
                                size_t nbuckets);

/* label_values has the family's nlabels entries (may be NULL when nlabels is 0;
 * a NULL entry means ""). Calls on the wrong family type, negative counter adds and
 * NaN observations are ignored. f may be NULL (no-op), so a failed registration
 * does not need checks at every call site. */
void jb_metric_add(jb_metric *f, const char *const *label_values, double v);     /* counter/gauge */
void jb_metric_set(jb_metric *f, const char *const *label_values, double v);     /* gauge */
void jb_metric_observe(jb_metric *f, const char *const *label_values, double v); /* histogram */
/* jb_metric_add(counter, ...) and jb_metric_observe(hist, ...) with the same label
 * values, hashed once (a delivery's count and its duration). */
void jb_metric_add_observe(jb_metric *counter, jb_metric *hist, const char *const *label_values,
                           double add, double observe);
/* Drops every series of a gauge family (for gauges rebuilt from scratch, such as
 * per-consumer pending counts). */
void jb_metric_reset(jb_metric *f);

/* Renders the Prometheus text exposition format (version 0.0.4). On success *out
 * is a malloc'd buffer the caller frees, *len its length. */
jb_status jb_metrics_render(jb_metrics *m, char **out, size_t *len);

/* ------------------------------------------------------------ admin HTTP */

/* The admin listener on METRICS_ADDR: GET /metrics, /healthz (always 200),
 * /readyz (200 when ready(ud) returns true, else 503; ready NULL means ready).
 * HEAD works like GET; other methods on these paths 405; other paths 404.
 * Limits: 8 KiB headers, 1 KiB body, 10 s timeout, 16 connections at once (more
 * wait in the backlog), at most 4 rendered /metrics pages alive (concurrent
 * scrapes share one page by reference). ready is called on base's
 * loop thread. jb_admin_stop must run on that thread or after the loop stopped. */
typedef struct jb_admin jb_admin;
typedef bool (*jb_ready_fn)(void *ud);

/* addr is "host:port" or ":port". Binds on base's loop. Returns NULL and fills err
 * when the address cannot be bound. The registry and ud must outlive the admin. */
jb_admin *jb_admin_start(struct event_base *base, const char *addr, jb_metrics *metrics,
                         jb_ready_fn ready, void *ud, jb_err *err);
/* A second readiness check that says why it is not ready (reason[0..cap), one line,
 * no secrets): /readyz answers 503 "not ready: <reason>" when it returns false. fn
 * runs on the admin's loop thread and must be thread-safe. Call before the loop runs. */
typedef bool (*jb_ready_reason_fn)(void *ud, char *reason, size_t cap);
void jb_admin_set_ready_reason(jb_admin *a, jb_ready_reason_fn fn, void *ud);
/* The port actually bound (useful with ":0"). */
int jb_admin_port(const jb_admin *a);
/* With a non-empty token (copied), GET /metrics needs "Authorization: Bearer
 * <token>", else 401 with WWW-Authenticate: Bearer; /healthz and /readyz stay
 * open. NULL or "" opens /metrics again. */
void jb_admin_set_token(jb_admin *a, const char *token);
void jb_admin_stop(jb_admin *a);

/* ------------------------------------------------------------------- NATS */

/* What jb_nats_connect needs, filled by the host from its configuration
 * (jb_cfg_nats_opts in config/): common/ does not read the configuration itself.
 * Strings are borrowed for the call; "" means unset. */
typedef struct jb_nats_opts {
    const char *url;            /* NATS_URL: one URL or a comma-separated list */
    const char *creds;          /* NATS_CREDS */
    const char *nkey_seed;      /* NATS_NKEY_SEED (a file) */
    const char *user;           /* NATS_USER */
    const char *password_file;  /* NATS_PASSWORD_FILE */
    const char *token_file;     /* NATS_TOKEN_FILE */
    const char *tls_ca;         /* NATS_TLS_CA */
    const char *tls_cert;       /* NATS_TLS_CERT */
    const char *tls_key;        /* NATS_TLS_KEY */
    int max_reconnects;         /* MAX_RECONNECTS (-1: forever) */
    int64_t reconnect_wait_ms;  /* RECONNECT_WAIT */
    int64_t request_timeout_ms; /* REQUEST_TIMEOUT: the JetStream API wait */
    int publish_max_in_flight;  /* PUBLISH_MAX_IN_FLIGHT: nats.c's async publish window */
} jb_nats_opts;

/* Connects to no->url with no's reconnect settings, TLS and credentials (at most
 * one way; errors name the key), logging disconnects and reconnects. When base is
 * not NULL the connection's I/O runs on that libevent loop through nats.c's
 * adapter; else nats.c uses its own threads. On success *nc and *js are set; the
 * caller destroys them with jb_nats_close. The connection is usable even when the
 * server is down at start only if retry_on_failed_connect is true: then nats.c
 * keeps trying in the background and this returns JB_OK. */
jb_status jb_nats_connect(const jb_nats_opts *no, struct event_base *base, const char *name,
                          bool retry_on_failed_connect, natsConnection **nc, jsCtx **js,
                          jb_err *err);
/* Closes and destroys both (either may be NULL). With a libevent loop, call it
 * before the event_base is freed: the adapter removes its events from the base. */
void jb_nats_close(natsConnection *nc, jsCtx *js);

/* A connection owned by one libevent loop: nats.c reads and writes on that loop
 * (no read-loop or flusher thread), published data is sent once per loop turn
 * (nats.c's "send as soon as possible" mode, one write for everything published
 * in the turn), and after_read(ud) runs on the loop each time nats.c has
 * processed incoming data, so that the owner can take the messages of its
 * synchronous subscriptions there (natsSubscription_NextMsg with timeout 0)
 * without any thread hand-off. The struct is copied at the first attach; base
 * must have been created after jb_event_threads_init (nats.c's reconnect and
 * ping threads add write interest from their own threads). */
typedef struct jb_nats_loop {
    struct event_base *base;
    void (*after_read)(void *ud); /* may be NULL */
    void *ud;
} jb_nats_loop;

/* As jb_nats_connect, without a JetStream context, on loop (not NULL; *loop must
 * stay valid until the connection is connected, retry_on_failed_connect may
 * connect later). Close with jb_nats_close(nc, NULL) on the loop's thread while
 * the loop is not running, before the event_base is freed. */
jb_status jb_nats_connect_loop(const jb_nats_opts *no, const jb_nats_loop *loop, const char *name,
                               bool retry_on_failed_connect, natsConnection **nc, jb_err *err);

/* Makes libevent thread-safe (evthread_use_pthreads, through nats.c's adapter).
 * Call once at process start, before creating any event_base that a NATS
 * connection will use: bases created earlier have no locks, and nats.c touches
 * the base from its own threads. Idempotent (pthread_once); jb_nats_connect calls
 * it too, but by then it may be too late for an existing base. */
void jb_event_threads_init(void);

/* True when the connection is currently connected. */
bool jb_nats_connected(natsConnection *nc);

/* True when jb_nats_msg_free frees on the calling thread: this libnats is 3.4.x and
 * exports natsMsg_free (the function its collector thread runs per message). */
bool jb_nats_msg_free_direct(void);
/* Frees a message nats.c received or natsMsg_Create made (NULL: nothing), once
 * nats.c is done with it: on this thread, now, when
 * jb_nats_msg_free_direct(), else natsMsg_Destroy, which hands it to nats.c's
 * collector thread and wakes it when it sleeps (at low rates, once per message). */
void jb_nats_msg_free(natsMsg *msg);

/* ---------------------------------------------------------------- helpers */

/* Writes a random (version 4) UUID in lower-case 8-4-4-4-12 form plus NUL into out. */
void jb_uuid_v4(char out[37]);
/* True when s[0..len) is 8-4-4-4-12 hex digits. */
bool jb_uuid_valid(const char *s, size_t len);

/* Writes the lower-case hex SHA-256 of data (64 chars plus NUL) into out. */
void jb_sha256_hex(const void *data, size_t len, char out[65]);
/* SHA-256 fetched once from OpenSSL's default provider (an EVP_MD for EVP_Digest*
 * calls on hot paths); never freed, shared by every thread. */
struct evp_md_st;
const struct evp_md_st *jb_sha256_md(void);

/* A copy of url (or a comma-separated list of URLs) with the userinfo of each
 * ("user:password@") replaced by "redacted@": what logs, metrics, status, dead
 * letters and CLI output show of a URL. malloc'd (caller frees); NULL when out of
 * memory or url is NULL. */
char *jb_redact_url(const char *url);
/* True when url has userinfo ("scheme://user[:password]@host..."). */
bool jb_url_has_userinfo(const char *url);

/* A NUL-terminated, malloc'd copy of s[0..len) fit for a terminal: printable ASCII
 * and valid UTF-8 (except C1 controls) stay, every other byte becomes "\xNN", so
 * stored text cannot move the cursor, recolour or retitle an operator's terminal.
 * NULL when out of memory. s may be NULL when len is 0. */
char *jb_escape_text(const char *s, size_t len);

/* A bounded, growing byte buffer for answers read from the network (key sets, token
 * endpoints). jb_capbuf_append keeps data NUL-terminated and refuses (setting
 * too_big) past max bytes; its signature is libcurl's CURLOPT_WRITEFUNCTION, so it
 * serves as one. Zero-initialize with max set; free data when done. */
typedef struct jb_capbuf {
    char *data;
    size_t len, max;
    bool too_big;
} jb_capbuf;
size_t jb_capbuf_append(char *p, size_t size, size_t n, void *capbuf);

/* Reads a secret from a file: one line (a trailing line break is dropped), at most
 * JB_SECRET_MAX bytes, no NUL. On success *out is malloc'd (free with
 * jb_secret_free, which clears it) and *len (may be NULL) its length. Errors name
 * the file, never its content (JB_ERR_CONFIG). */
#define JB_SECRET_MAX 8192
jb_status jb_secret_read_file(const char *path, char **out, size_t *len, jb_err *err);
void jb_secret_free(char *s);

/* NATS user nkeys. jb_nkey_user_public: the public key ("U...", 56 characters) of
 * the user seed seed[0..len) ("SU...", 58 characters); false when it is not a valid
 * user seed. jb_nkey_user_seed: the seed text of 32 raw bytes (for tests and
 * tools). */
#define JB_NKEY_PUBLIC_LEN 56
#define JB_NKEY_SEED_LEN   58
bool jb_nkey_user_public(const char *seed, size_t len, char out[JB_NKEY_PUBLIC_LEN + 1]);
bool jb_nkey_user_seed(const uint8_t raw_seed[32], char out[JB_NKEY_SEED_LEN + 1]);

/* Room for one more element in an array of n elements of elem bytes whose capacity
 * is *cap (growing by doubling, from 8): returns the array, maybe moved, and
 * updates *cap; NULL when out of memory (the array and *cap are unchanged). */
void *jb_array_grow(void *items, size_t n, size_t *cap, size_t elem);

/* v in decimal ("%" PRIu64 / "%" PRId64 without the printf family, for hot paths),
 * NUL-terminated, at out (room for JB_DEC_MAX bytes); returns the length without the
 * NUL. */
#define JB_DEC_MAX 21
size_t jb_dec_u64(char *out, uint64_t v);
size_t jb_dec_i64(char *out, int64_t v);

/* Monotonic and wall-clock time. */
int64_t jb_now_monotonic_ns(void);
int64_t jb_now_wall_ms(void);

/* ------------------------------------------------------- Prometheus text */

/* One sample line of the Prometheus text format, `name{labels} value [timestamp]`, as
 * read back by `jetbridge stats`. name and labels point into the text read (not
 * NUL-terminated); labels is what lies between the braces (labels_len 0 without). */
typedef struct jb_prom_sample {
    const char *name;
    size_t name_len;
    const char *labels;
    size_t labels_len;
    double value;
} jb_prom_sample;

/* Reads the next sample line of text[*pos..len) into *out and moves *pos past it.
 * Comments, blank lines and malformed lines (a bad name, an unterminated label block
 * or quoted value, no value, a value strtod does not take whole or longer than 63
 * bytes) are skipped. Never reads past len; text needs no NUL. False at the end. */
bool jb_prom_next(const char *text, size_t len, size_t *pos, jb_prom_sample *out);

/* Copies the value of label key of s, unescaped (\\, \" and \n, as the writer
 * escapes them), into out[0..cap), NUL-terminated and cut to fit (cap > 0). False
 * when s has no label key. */
bool jb_prom_label(const jb_prom_sample *s, const char *key, char *out, size_t cap);

#endif
