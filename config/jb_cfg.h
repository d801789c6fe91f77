/*
 * config/: every configuration key of jetbridge, with its default, read once at
 * start from (lowest to highest precedence) built-in defaults, an optional YAML
 * file (--config FILE), the environment (Kyma's variable names) and --flags.
 * The result is a read-only jb_cfg passed to every module.
 *
 * The key table in config/keys.c is the single list of keys: `jetbridge help`, the
 * README's configuration reference and docs/ are generated from it.
 */
#ifndef JB_CFG_H
#define JB_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/jb_status.h"

typedef enum jb_cfg_storage { JB_STORAGE_FILE, JB_STORAGE_MEMORY } jb_cfg_storage;
typedef enum jb_cfg_retention {
    JB_RETENTION_INTEREST,
    JB_RETENTION_LIMITS,
    JB_RETENTION_WORKQUEUE
} jb_cfg_retention;
typedef enum jb_cfg_discard { JB_DISCARD_NEW, JB_DISCARD_OLD } jb_cfg_discard;
typedef enum jb_cfg_deliver { JB_DELIVER_NEW, JB_DELIVER_ALL } jb_cfg_deliver;
typedef enum jb_cfg_sink_validation {
    JB_SINK_URL,
    JB_SINK_KUBERNETES,
    JB_SINK_ALLOWLIST
} jb_cfg_sink_validation;
typedef enum jb_cfg_sink_client { JB_SINK_CLIENT_BUILTIN, JB_SINK_CLIENT_CURL } jb_cfg_sink_client;

/* All durations are in milliseconds, all sizes in bytes. Strings are owned by the
 * jb_cfg and never NULL (empty when unset). */
typedef struct jb_cfg {
    /* publisher */
    int ingress_port;             /* INGRESS_PORT 8080 */
    char *ingress_addr;           /* INGRESS_ADDR 0.0.0.0 */
    int64_t max_request_size;     /* MAX_REQUEST_SIZE 65536 */
    int64_t request_timeout_ms;   /* REQUEST_TIMEOUT 5s */
    char *event_type_prefix;      /* EVENT_TYPE_PREFIX sap.kyma.custom */
    char *legacy_namespace;       /* LEGACY_NAMESPACE kyma */
    int publish_max_in_flight;    /* PUBLISH_MAX_IN_FLIGHT 4096: JetStream publishes awaiting ack */
    int publisher_threads;        /* PUBLISHER_THREADS 0 = one per core */
    int max_connections;          /* MAX_CONNECTIONS 10000 */
    int64_t max_header_size;      /* MAX_HEADER_SIZE 16Ki */
    int64_t http_read_timeout_ms; /* HTTP_READ_TIMEOUT 30s */
    int64_t http_idle_timeout_ms; /* HTTP_IDLE_TIMEOUT 60s */
    int retry_after_seconds;      /* RETRY_AFTER_SECONDS 1: Retry-After on 429/503 */
    char *ingress_tls_cert;       /* INGRESS_TLS_CERT "" */
    char *ingress_tls_key;        /* INGRESS_TLS_KEY "" */
    char *ingress_tls_client_ca;  /* INGRESS_TLS_CLIENT_CA "" */
    char *ingress_auth;           /* INGRESS_AUTH none|required */
    char *ingress_jwks;           /* INGRESS_JWKS "" (file or https URL) */
    char *ingress_jwks_ca;        /* INGRESS_JWKS_CA "" (PEM file) */
    char *ingress_jwt_issuer;     /* INGRESS_JWT_ISSUER "" */
    char *ingress_jwt_audience;   /* INGRESS_JWT_AUDIENCE "" */
    char *ingress_jwt_app_claim;  /* INGRESS_JWT_APP_CLAIM sub */
    char *admin_token;            /* ADMIN_TOKEN "": /metrics needs it when set */

    /* NATS and the stream */
    char *nats_url;                         /* NATS_URL "" (run starts a local server when empty) */
    char *nats_creds;                       /* NATS_CREDS "" (.creds file) */
    char *nats_nkey_seed;                   /* NATS_NKEY_SEED "" (seed file) */
    char *nats_user;                        /* NATS_USER "" */
    char *nats_password_file;               /* NATS_PASSWORD_FILE "" */
    char *nats_token_file;                  /* NATS_TOKEN_FILE "" */
    char *nats_tls_ca;                      /* NATS_TLS_CA "" */
    char *nats_tls_cert;                    /* NATS_TLS_CERT "" */
    char *nats_tls_key;                     /* NATS_TLS_KEY "" */
    int max_reconnects;                     /* MAX_RECONNECTS -1 (forever) */
    int64_t reconnect_wait_ms;              /* RECONNECT_WAIT 5s */
    char *stream_name;                      /* JS_STREAM_NAME sap */
    char *stream_subject_prefix;            /* JS_STREAM_SUBJECT_PREFIX kyma */
    jb_cfg_storage stream_storage;          /* JS_STREAM_STORAGE_TYPE file */
    int stream_replicas;                    /* JS_STREAM_REPLICAS 1 */
    jb_cfg_retention stream_retention;      /* JS_STREAM_RETENTION_POLICY interest */
    jb_cfg_discard stream_discard;          /* JS_STREAM_DISCARD_POLICY new */
    int64_t stream_max_msgs;                /* JS_STREAM_MAX_MSGS -1 */
    int64_t stream_max_bytes;               /* JS_STREAM_MAX_BYTES 700Mi */
    int64_t stream_max_msgs_per_subject;    /* JS_STREAM_MAX_MSGS_PER_TOPIC 1000000 */
    int64_t stream_duplicate_window_ms;     /* JS_STREAM_DUPLICATE_WINDOW 2m */
    jb_cfg_deliver consumer_deliver_policy; /* JS_CONSUMER_DELIVER_POLICY new */
    char *dlq_stream_name;                  /* JS_DLQ_STREAM_NAME sap-dlq */

    /* subscriptions and dispatcher */
    int default_max_in_flight;              /* DEFAULT_MAX_IN_FLIGHT_MESSAGES 10 */
    jb_cfg_sink_validation sink_validation; /* SINK_VALIDATION url */
    char *sink_allowed_hosts;               /* SINK_ALLOWED_HOSTS "" comma-separated */
    char *sink_ca_bundle;                   /* SINK_CA_BUNDLE "" (extra CAs for sinks) */
    char *sink_deny_networks;               /* SINK_DENY_NETWORKS 169.254.0.0/16,fe80::/10 */
    jb_cfg_sink_client sink_http_client;    /* SINK_HTTP_CLIENT builtin */
    char *subscriptions_dir;                /* SUBSCRIPTIONS "" (--subscriptions DIR) */
    int64_t ack_wait_ms;                    /* JS_CONSUMER_ACK_WAIT 30s */
    int dispatcher_max_concurrent; /* DISPATCHER_MAX_CONCURRENT 1024: HTTP requests in flight per
                                      process */
    int64_t shutdown_grace_ms;     /* SHUTDOWN_GRACE 25s */

    /* process */
    char *metrics_addr;   /* METRICS_ADDR :9090 */
    bool log_json;        /* APP_LOG_FORMAT auto|json|text */
    bool log_format_auto; /* APP_LOG_FORMAT auto: text when stderr is a terminal */
    char *log_level;      /* APP_LOG_LEVEL info */
    char *data_dir;       /* DATA_DIR ./.jetbridge (run's local nats-server store) */

    /* Kubernetes mode */
    int kubernetes;                  /* KUBERNETES false (0) | true (1) */
    char *kubeconfig;                /* KUBECONFIG "" (in-cluster) */
    char *watch_namespaces;          /* WATCH_NAMESPACES "" (all) */
    char *pod_namespace;             /* POD_NAMESPACE default */
    char *pod_name;                  /* POD_NAME "" (HOSTNAME) */
    int64_t kube_max_event_bytes;    /* KUBE_MAX_EVENT_BYTES 1Mi */
    int64_t kube_request_timeout_ms; /* KUBE_REQUEST_TIMEOUT 10s */
    int64_t kube_watch_timeout_ms;   /* KUBE_WATCH_TIMEOUT 5m */
    int64_t kube_secret_refresh_ms;  /* KUBE_SECRET_REFRESH 60s (sink credential Secrets) */
    int dispatch_prefetch;           /* DISPATCH_PREFETCH 0: per consumer beyond maxInFlight */
    int dispatch_loops;              /* DISPATCH_LOOPS 1: dispatcher loop threads */
} jb_cfg;

/* The NATS server the client commands (sub, dlq, stats, ...) use when NATS_URL is
 * empty and no `run` of this DATA_DIR wrote DATA_DIR/nats.url. */
#define JB_CFG_CLI_NATS_URL "nats://127.0.0.1:4222"
/* Files `jetbridge run` writes into DATA_DIR while it runs with its own nats-server:
 * the server's URL and the admin listener's address, for the client commands. */
#define JB_CFG_NATS_URL_FILE     "nats.url"
#define JB_CFG_METRICS_ADDR_FILE "metrics.addr"

/* One key of the table, for help texts and generated docs. */
typedef struct jb_cfg_key_info {
    const char *env;     /* INGRESS_PORT */
    const char *flag;    /* --ingress-port */
    const char *def;     /* "8080" */
    const char *allowed; /* "integer 1..65535" */
    const char *help;    /* one sentence */
} jb_cfg_key_info;

/* The table of keys; *n receives the count. Static storage. */
const jb_cfg_key_info *jb_cfg_keys(size_t *n);

/* Builds a configuration from defaults, then the YAML file named by --config (if
 * any), then envp (NULL-terminated "KEY=value" strings; NULL means none), then the
 * flags in argv[0..argc). Flags are "--flag value" or "--flag=value". Arguments
 * that are not configuration flags are left for the caller: their indexes are
 * written to rest[0..*nrest) (rest has room for argc entries).
 * On a bad value returns JB_ERR_CONFIG and err says, in one line, the key, the
 * value and what is allowed: `INGRESS_PORT: invalid value "abc": want integer 1..65535`.
 * On success *out is a new configuration to free with jb_cfg_destroy. */
jb_status jb_cfg_load(int argc, char **argv, char **envp, jb_cfg **out, int *rest, int *nrest,
                      jb_err *err);

/* Applies a YAML document (a flat mapping of env-name keys to scalar values) from
 * buf[0..len) onto cfg, the way --config FILE does; name is used in error messages
 * ("name:LINE: KEY: invalid value ..."). Unknown keys, non-scalar values and
 * duplicate keys are errors (JB_ERR_CONFIG). cfg may be partly updated on error.
 * Exposed for the fuzz target and tests. */
jb_status jb_cfg_apply_yaml(jb_cfg *cfg, const char *name, const void *buf, size_t len,
                            jb_err *err);

/* Writes the key table as a Markdown table (Environment | Flag | Default |
 * Allowed | Meaning) to f: the reference in docs/configuration.md. */
void jb_cfg_print_markdown(FILE *f);

/* For the client commands (sub, dlq, stats): fills an empty NATS_URL from
 * DATA_DIR/nats.url (the nats-server a `run` of this DATA_DIR started), else with
 * JB_CFG_CLI_NATS_URL; a METRICS_ADDR left at its default is replaced by
 * DATA_DIR/metrics.addr when that file exists. The one place these lookups live.
 * Returns JB_ERR_NOMEM only. */
jb_status jb_cfg_resolve_client(jb_cfg *cfg, jb_err *err);

/* The NATS settings of cfg for jb_nats_connect (common/jb_common.h); the strings
 * stay cfg's. jb_cfg_nats_connect is jb_nats_connect with them, for hosts. */
struct jb_nats_opts;
struct event_base;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;
void jb_cfg_nats_opts(const jb_cfg *cfg, struct jb_nats_opts *out);
jb_status jb_cfg_nats_connect(const jb_cfg *cfg, struct event_base *base, const char *name,
                              bool retry_on_failed_connect, natsConnection **nc, jsCtx **js,
                              jb_err *err);

/* Defaults only (for tests and tools). */
jb_cfg *jb_cfg_defaults(void);
void jb_cfg_destroy(jb_cfg *cfg);

/* Parsers, exposed for tests and for spec.config values. Each reads exactly
 * s[0..len) (no NUL needed), is overflow-safe, and sets *out only on success.
 * jb_cfg_parse_duration_ms: Go style ("5s", "1m30s", "250ms", "1.5h", "0"), ISO 8601
 *   ("PT5S", "PT1M30S", "P1D", "P1W", "PT0.5S"), or a bare integer = seconds. No sign.
 *   Sub-millisecond parts are truncated; at most 2^63-1 ns.
 * jb_cfg_parse_iso8601_duration_ms: ISO 8601 only (Go style and bare integers are
 *   refused): P[nW][nD][T[nH][nM][nS]], fraction on the last part only, no Y/M.
 * jb_cfg_parse_size: integer bytes or Kubernetes quantities ("700Mi", "1Gi", "5k",
 *   "1M", "1e3", "1.5Gi" when the result is whole bytes); never negative.
 * jb_cfg_parse_bool: true/false, 1/0, yes/no, on/off, case-insensitive. */
bool jb_cfg_parse_duration_ms(const char *s, size_t len, int64_t *out_ms);
bool jb_cfg_parse_iso8601_duration_ms(const char *s, size_t len, int64_t *out_ms);
bool jb_cfg_parse_size(const char *s, size_t len, int64_t *out_bytes);
bool jb_cfg_parse_bool(const char *s, size_t len, bool *out);

#endif
