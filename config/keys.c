/*
 * The one list of configuration keys. Everything about a key is on its line: the
 * environment name (Kyma's), the flag, the default (parsed by the same code as
 * user input, so the documented default is the real one), what is allowed, a help
 * sentence, and how it is parsed and stored. `jetbridge help`, jb_cfg_defaults()
 * and docs/configuration.md all come from here.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

#define KIB    INT64_C(1024)
#define MIB    (KIB * 1024)
#define GIB    (MIB * 1024)
#define SEC    INT64_C(1000)
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define DUR    " (5s, 1m30s, 250ms, PT5S; an integer is seconds)"
#define SIZE   " (bytes, or a quantity such as 64Ki, 700Mi, 1G)"
#define TOKEN  "a name without spaces, '.', '*', '>', '/' or '\\'"

/* X(env, flag, default, allowed, help, kind, field, min, max, choices) */
#define JB_CFG_KEYS(X)                                                                             \
    X("INGRESS_PORT", "--ingress-port", "8080", "integer 1..65535",                                \
      "Port of the publisher's HTTP ingress.", CFG_INT, ingress_port, 1, 65535, NULL)              \
    X("INGRESS_ADDR", "--ingress-addr", "0.0.0.0",                                                 \
      "IPv4 or IPv6 address (0.0.0.0, 127.0.0.1, ::)",                                             \
      "Address the publisher's HTTP ingress binds.", CFG_IP, ingress_addr, 0, 0, NULL)             \
    X("MAX_REQUEST_SIZE", "--max-request-size", "65536", "size 1..1Gi" SIZE,                       \
      "Largest accepted request body; larger ones get 413.", CFG_SIZE, max_request_size, 1, GIB,   \
      NULL)                                                                                        \
    X("REQUEST_TIMEOUT", "--request-timeout", "5s", "duration 1ms..1h" DUR,                        \
      "How long a publish waits for the JetStream acknowledgement before answering 504.",          \
      CFG_DURATION, request_timeout_ms, 1, HOUR, NULL)                                             \
    X("EVENT_TYPE_PREFIX", "--event-type-prefix", "sap.kyma.custom", "non-empty string",           \
      "Event types starting with this prefix take the prefixed (legacy) enrichment path.",         \
      CFG_NONEMPTY, event_type_prefix, 0, 0, NULL)                                                 \
    X("LEGACY_NAMESPACE", "--legacy-namespace", "kyma", "non-empty string",                        \
      "Source of the second copy of a legacy event.", CFG_NONEMPTY, legacy_namespace, 0, 0, NULL)  \
    X("PUBLISH_MAX_IN_FLIGHT", "--publish-max-in-flight", "4096", "integer 1..1000000",            \
      "JetStream publishes awaiting their ack; when full the publisher answers 429/503.", CFG_INT, \
      publish_max_in_flight, 1, 1000000, NULL)                                                     \
    X("PUBLISHER_THREADS", "--publisher-threads", "0", "integer 0..256",                           \
      "Publisher event-loop threads; 0 means one per CPU core.", CFG_INT, publisher_threads, 0,    \
      256, NULL)                                                                                   \
    X("MAX_CONNECTIONS", "--max-connections", "10000", "integer 1..1000000",                       \
      "Open client connections the publisher accepts at once.", CFG_INT, max_connections, 1,       \
      1000000, NULL)                                                                               \
    X("MAX_HEADER_SIZE", "--max-header-size", "16Ki", "size 1Ki..1Mi" SIZE,                        \
      "Largest accepted size of all request headers together.", CFG_SIZE, max_header_size, KIB,    \
      MIB, NULL)                                                                                   \
    X("HTTP_READ_TIMEOUT", "--http-read-timeout", "30s", "duration 1ms..1h" DUR,                   \
      "Time a client has to send a whole request.", CFG_DURATION, http_read_timeout_ms, 1, HOUR,   \
      NULL)                                                                                        \
    X("HTTP_IDLE_TIMEOUT", "--http-idle-timeout", "60s", "duration 1ms..24h" DUR,                  \
      "Idle keep-alive connections are closed after this time.", CFG_DURATION,                     \
      http_idle_timeout_ms, 1, 24 * HOUR, NULL)                                                    \
    X("RETRY_AFTER_SECONDS", "--retry-after-seconds", "1", "integer 1..3600",                      \
      "Retry-After sent with 429/503 when the publisher is overloaded.", CFG_INT,                  \
      retry_after_seconds, 1, 3600, NULL)                                                          \
    X("INGRESS_TLS_CERT", "--ingress-tls-cert", "", "PEM file path",                               \
      "Server certificate (chain) of the ingress; with INGRESS_TLS_KEY it serves HTTPS only.",     \
      CFG_STRING, ingress_tls_cert, 0, 0, NULL)                                                    \
    X("INGRESS_TLS_KEY", "--ingress-tls-key", "", "PEM file path",                                 \
      "Private key of INGRESS_TLS_CERT; both files are re-read when they change.", CFG_STRING,     \
      ingress_tls_key, 0, 0, NULL)                                                                 \
    X("INGRESS_TLS_CLIENT_CA", "--ingress-tls-client-ca", "", "PEM file path",                     \
      "CA bundle that client certificates must chain to; asks clients for one (optional).",        \
      CFG_STRING, ingress_tls_client_ca, 0, 0, NULL)                                               \
    X("INGRESS_AUTH", "--ingress-auth", "none", "none|required",                                   \
      "required: every publish must identify an application (client certificate, token or JWT).",  \
      CFG_CHOICE, ingress_auth, 0, 0, "none|required")                                             \
    X("INGRESS_JWKS", "--ingress-jwks", "", "file path or https URL",                              \
      "JSON Web Key Set that verifies JWT bearer tokens (RS256, ES256); empty disables JWTs.",     \
      CFG_STRING, ingress_jwks, 0, 0, NULL)                                                        \
    X("INGRESS_JWKS_CA", "--ingress-jwks-ca", "", "file path (PEM)",                               \
      "CA certificates trusted for an https INGRESS_JWKS in addition to the system's.",            \
      CFG_STRING, ingress_jwks_ca, 0, 0, NULL)                                                     \
    X("INGRESS_JWT_ISSUER", "--ingress-jwt-issuer", "", "string",                                  \
      "Required iss claim of JWTs (empty: not checked).", CFG_STRING, ingress_jwt_issuer, 0, 0,    \
      NULL)                                                                                        \
    X("INGRESS_JWT_AUDIENCE", "--ingress-jwt-audience", "", "string",                              \
      "Required aud claim of JWTs (string or array; empty: not checked).", CFG_STRING,             \
      ingress_jwt_audience, 0, 0, NULL)                                                            \
    X("INGRESS_JWT_APP_CLAIM", "--ingress-jwt-app-claim", "sub", "claim name",                     \
      "JWT claim that names the application.", CFG_NONEMPTY, ingress_jwt_app_claim, 0, 0, NULL)    \
    X("ADMIN_TOKEN", "--admin-token", "", "string (a secret)",                                     \
      "When set, /metrics on METRICS_ADDR needs Authorization: Bearer <token>.", CFG_STRING,       \
      admin_token, 0, 0, NULL)                                                                     \
    X("NATS_URL", "--nats-url", "", "NATS URL(s), comma-separated",                                \
      "NATS server(s) to use; empty: `run` starts a local nats-server, the other commands use "    \
      "the "                                                                                       \
      "one `run` started (DATA_DIR/nats.url), else " JB_CFG_CLI_NATS_URL ".",                      \
      CFG_STRING, nats_url, 0, 0, NULL)                                                            \
    X("NATS_CREDS", "--nats-creds", "", "file path",                                               \
      "NATS user credentials file (.creds: user JWT and nkey seed).", CFG_STRING, nats_creds, 0,   \
      0, NULL)                                                                                     \
    X("NATS_NKEY_SEED", "--nats-nkey-seed", "", "file path",                                       \
      "File holding a NATS user nkey seed (SU...); the public key is derived from it.",            \
      CFG_STRING, nats_nkey_seed, 0, 0, NULL)                                                      \
    X("NATS_USER", "--nats-user", "", "string",                                                    \
      "NATS user name; the password comes from NATS_PASSWORD_FILE.", CFG_STRING, nats_user, 0, 0,  \
      NULL)                                                                                        \
    X("NATS_PASSWORD_FILE", "--nats-password-file", "", "file path",                               \
      "File holding the password of NATS_USER (one line).", CFG_STRING, nats_password_file, 0, 0,  \
      NULL)                                                                                        \
    X("NATS_TOKEN_FILE", "--nats-token-file", "", "file path",                                     \
      "File holding a NATS authentication token (one line).", CFG_STRING, nats_token_file, 0, 0,   \
      NULL)                                                                                        \
    X("NATS_TLS_CA", "--nats-tls-ca", "", "file path (PEM)",                                       \
      "CA certificates that verify the NATS server; setting it requires TLS.", CFG_STRING,         \
      nats_tls_ca, 0, 0, NULL)                                                                     \
    X("NATS_TLS_CERT", "--nats-tls-cert", "", "file path (PEM)",                                   \
      "Client certificate for NATS mutual TLS (with NATS_TLS_KEY); requires TLS.", CFG_STRING,     \
      nats_tls_cert, 0, 0, NULL)                                                                   \
    X("NATS_TLS_KEY", "--nats-tls-key", "", "file path (PEM)", "Private key of NATS_TLS_CERT.",    \
      CFG_STRING, nats_tls_key, 0, 0, NULL)                                                        \
    X("MAX_RECONNECTS", "--max-reconnects", "-1", "integer -1..2147483647 (-1: forever)",          \
      "Reconnect attempts after losing NATS before giving up.", CFG_INT, max_reconnects, -1,       \
      INT32_MAX, NULL)                                                                             \
    X("RECONNECT_WAIT", "--reconnect-wait", "5s", "duration 0..1h" DUR,                            \
      "Pause between reconnect attempts to the same NATS server.", CFG_DURATION,                   \
      reconnect_wait_ms, 0, HOUR, NULL)                                                            \
    X("JS_STREAM_NAME", "--js-stream-name", "sap", TOKEN,                                          \
      "JetStream stream that stores the events.", CFG_TOKEN, stream_name, 0, 0, NULL)              \
    X("JS_STREAM_SUBJECT_PREFIX", "--js-stream-subject-prefix", "kyma", TOKEN,                     \
      "First subject token of every event; the stream listens on <prefix>.>.", CFG_TOKEN,          \
      stream_subject_prefix, 0, 0, NULL)                                                           \
    X("JS_STREAM_STORAGE_TYPE", "--js-stream-storage-type", "file", "file|memory",                 \
      "Storage of the stream.", CFG_ENUM, stream_storage, 0, 0, "file|memory")                     \
    X("JS_STREAM_REPLICAS", "--js-stream-replicas", "1", "integer 1..5",                           \
      "Replicas of the stream (3 in a NATS cluster for fault tolerance).", CFG_INT,                \
      stream_replicas, 1, 5, NULL)                                                                 \
    X("JS_STREAM_RETENTION_POLICY", "--js-stream-retention-policy", "interest",                    \
      "interest|limits|workqueue", "Retention of the stream.", CFG_ENUM, stream_retention, 0, 0,   \
      "interest|limits|workqueue")                                                                 \
    X("JS_STREAM_DISCARD_POLICY", "--js-stream-discard-policy", "new", "new|old",                  \
      "What the stream discards when full: new refuses publishes, old drops the oldest.",          \
      CFG_ENUM, stream_discard, 0, 0, "new|old")                                                   \
    X("JS_STREAM_MAX_MSGS", "--js-stream-max-msgs", "-1",                                          \
      "integer -1..9223372036854775807 (-1: unlimited)", "Most messages the stream keeps.",        \
      CFG_I64, stream_max_msgs, -1, INT64_MAX, NULL)                                               \
    X("JS_STREAM_MAX_BYTES", "--js-stream-max-bytes", "700Mi", "size, or -1 for unlimited" SIZE,   \
      "Most bytes the stream keeps.", CFG_SIZE, stream_max_bytes, -1, INT64_MAX, NULL)             \
    X("JS_STREAM_MAX_MSGS_PER_TOPIC", "--js-stream-max-msgs-per-topic", "1000000",                 \
      "integer -1..9223372036854775807 (-1: unlimited)",                                           \
      "Most messages the stream keeps per subject.", CFG_I64, stream_max_msgs_per_subject, -1,     \
      INT64_MAX, NULL)                                                                             \
    X("JS_STREAM_DUPLICATE_WINDOW", "--js-stream-duplicate-window", "2m", "duration 1s..24h" DUR,  \
      "Window in which a re-sent event (same Nats-Msg-Id) is stored once.", CFG_DURATION,          \
      stream_duplicate_window_ms, SEC, 24 * HOUR, NULL)                                            \
    X("JS_CONSUMER_DELIVER_POLICY", "--js-consumer-deliver-policy", "new", "new|all",              \
      "Where a new consumer starts: new events only, or all stored ones.", CFG_ENUM,               \
      consumer_deliver_policy, 0, 0, "new|all")                                                    \
    X("JS_DLQ_STREAM_NAME", "--js-dlq-stream-name", "sap-dlq", TOKEN,                              \
      "Stream that keeps dead-lettered events.", CFG_TOKEN, dlq_stream_name, 0, 0, NULL)           \
    X("DEFAULT_MAX_IN_FLIGHT_MESSAGES", "--default-max-in-flight-messages", "10",                  \
      "integer 1..100000", "maxInFlightMessages of a subscription that does not set it.", CFG_INT, \
      default_max_in_flight, 1, 100000, NULL)                                                      \
    X("SINK_VALIDATION", "--sink-validation", "url", "url|kubernetes|allowlist",                   \
      "How sinks are checked: any http(s) URL, Kyma's cluster-local rule, or an allowlist.",       \
      CFG_ENUM, sink_validation, 0, 0, "url|kubernetes|allowlist")                                 \
    X("SINK_ALLOWED_HOSTS", "--sink-allowed-hosts", "", "comma-separated host names",              \
      "Hosts sinks may point to when SINK_VALIDATION is allowlist.", CFG_STRING,                   \
      sink_allowed_hosts, 0, 0, NULL)                                                              \
    X("SINK_CA_BUNDLE", "--sink-ca-bundle", "", "file path (PEM)",                                 \
      "CA certificates trusted for HTTPS sinks in addition to the system's.", CFG_STRING,          \
      sink_ca_bundle, 0, 0, NULL)                                                                  \
    X("SINK_DENY_NETWORKS", "--sink-deny-networks", "169.254.0.0/16,fe80::/10",                    \
      "comma-separated CIDR networks (IPv4 or IPv6); empty denies none",                           \
      "Addresses sinks, dead-letter sinks and token URLs may not connect to (SSRF guard).",        \
      CFG_STRING, sink_deny_networks, 0, 0, NULL)                                                  \
    X("SINK_HTTP_CLIENT", "--sink-http-client", "builtin", "builtin|curl",                         \
      "Who carries plain http:// deliveries: the dispatcher's own HTTP/1.1 client (curl opens "    \
      "the connection) or curl alone; https and everything else always go through curl.",          \
      CFG_ENUM, sink_http_client, 0, 0, "builtin|curl")                                            \
    X("SUBSCRIPTIONS", "--subscriptions", "", "directory path",                                    \
      "Directory of Subscription manifests that run/dispatcher apply and watch.", CFG_STRING,      \
      subscriptions_dir, 0, 0, NULL)                                                               \
    X("JS_CONSUMER_ACK_WAIT", "--js-consumer-ack-wait", "30s", "duration 1s..24h" DUR,             \
      "AckWait of the consumers: an unacknowledged delivery is redelivered after it.",             \
      CFG_DURATION, ack_wait_ms, SEC, 24 * HOUR, NULL)                                             \
    X("DISPATCHER_MAX_CONCURRENT", "--dispatcher-max-concurrent", "1024", "integer 1..1000000",    \
      "HTTP deliveries in flight per dispatcher process.", CFG_INT, dispatcher_max_concurrent, 1,  \
      1000000, NULL)                                                                               \
    X("SHUTDOWN_GRACE", "--shutdown-grace", "25s", "duration 0..1h" DUR,                           \
      "On SIGTERM, time to finish in-flight work before exiting; 0 NAKs it at once.",              \
      CFG_DURATION, shutdown_grace_ms, 0, HOUR, NULL)                                              \
    X("METRICS_ADDR", "--metrics-addr", ":9090", "host:port or :port (port 0..65535)",             \
      "Admin listener with /metrics, /healthz and /readyz.", CFG_ADDR, metrics_addr, 0, 0, NULL)   \
    X("APP_LOG_FORMAT", "--app-log-format", "auto", "auto|json|text",                              \
      "Log line format; auto is text when stderr is a terminal, else JSON (console means text).",  \
      CFG_LOGFMT, log_json, 0, 0, NULL)                                                            \
    X("APP_LOG_LEVEL", "--app-log-level", "info", "debug|info|warn|error",                         \
      "Least severe level that is logged.", CFG_CHOICE, log_level, 0, 0, "debug|info|warn|error")  \
    X("DATA_DIR", "--data-dir", "./.jetbridge", "directory path",                                  \
      "Store of the local nats-server that `run` starts.", CFG_STRING, data_dir, 0, 0, NULL)       \
    X("KUBERNETES", "--kubernetes", "false", "true|false",                                         \
      "Embed the Kubernetes controller in `run` and `dispatcher`.", CFG_ENUM, kubernetes, 0, 0,    \
      "false|true")                                                                                \
    X("KUBECONFIG", "--kubeconfig", "", "file path (first of a ':' list)",                         \
      "kubeconfig for the API server; empty means in-cluster (service account).", CFG_STRING,      \
      kubeconfig, 0, 0, NULL)                                                                      \
    X("WATCH_NAMESPACES", "--watch-namespaces", "", "comma-separated namespaces (at most 32)",     \
      "Namespaces whose Subscriptions the controller mirrors; empty means all.", CFG_STRING,       \
      watch_namespaces, 0, 0, NULL)                                                                \
    X("POD_NAMESPACE", "--pod-namespace", "default", "non-empty string",                           \
      "Namespace of the controller's leader-election Lease.", CFG_NONEMPTY, pod_namespace, 0, 0,   \
      NULL)                                                                                        \
    X("POD_NAME", "--pod-name", "", "string", "Lease holder name prefix; empty means HOSTNAME.",   \
      CFG_STRING, pod_name, 0, 0, NULL)                                                            \
    X("KUBE_MAX_EVENT_BYTES", "--kube-max-event-bytes", "1Mi", "size 4Ki..64Mi" SIZE,              \
      "Largest watch event or list page object the controller accepts; larger ones are skipped.",  \
      CFG_SIZE, kube_max_event_bytes, 4 * KIB, 64 * MIB, NULL)                                     \
    X("KUBE_REQUEST_TIMEOUT", "--kube-request-timeout", "10s", "duration 1s..5m" DUR,              \
      "Timeout of one Kubernetes API request (watches excepted).", CFG_DURATION,                   \
      kube_request_timeout_ms, SEC, 5 * MINUTE, NULL)                                              \
    X("KUBE_WATCH_TIMEOUT", "--kube-watch-timeout", "5m", "duration 5s..1h" DUR,                   \
      "How long the API server keeps one watch open before the controller starts the next.",       \
      CFG_DURATION, kube_watch_timeout_ms, 5 * SEC, HOUR, NULL)                                    \
    X("KUBE_SECRET_REFRESH", "--kube-secret-refresh", "60s", "duration 1s..1h" DUR,                \
      "How often a Secret holding sink credentials is read again (rotation).", CFG_DURATION,       \
      kube_secret_refresh_ms, SEC, HOUR, NULL)                                                     \
    X("DISPATCH_PREFETCH", "--dispatch-prefetch", "0", "integer 0..10000",                         \
      "Messages a consumer may request beyond maxInFlightMessages (they wait in the dispatcher; "  \
      "the sink never sees more than maxInFlightMessages); 0: Kyma's behaviour.",                  \
      CFG_INT, dispatch_prefetch, 0, 10000, NULL)                                                  \
    X("DISPATCH_LOOPS", "--dispatch-loops", "1", "integer 1..64",                                  \
      "Dispatcher event-loop threads; consumers are spread over them by a hash of their name. "    \
      "DISPATCHER_MAX_CONCURRENT is split between them.",                                          \
      CFG_INT, dispatch_loops, 1, 64, NULL)

#define INFO(env, flag, def, allowed, help, kind, field, min, max, choices)                        \
    {env, flag, def, allowed, help},
#define SPEC(env, flag, def, allowed, help, kind, field, min, max, choices)                        \
    {kind, offsetof(jb_cfg, field), min, max, choices},

static const jb_cfg_key_info infos[] = {JB_CFG_KEYS(INFO)};
static const cfg_spec specs[] = {JB_CFG_KEYS(SPEC)};

_Static_assert(sizeof(infos) / sizeof(infos[0]) == sizeof(specs) / sizeof(specs[0]),
               "one spec per key");

const jb_cfg_key_info *jb_cfg_keys(size_t *n)
{
    *n = sizeof(infos) / sizeof(infos[0]);
    return infos;
}

const cfg_spec *cfg_specs(size_t *n)
{
    *n = sizeof(specs) / sizeof(specs[0]);
    return specs;
}

int cfg_find_env(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(infos) / sizeof(infos[0]); i++)
        if (strlen(infos[i].env) == len && memcmp(infos[i].env, name, len) == 0)
            return (int)i;
    return -1;
}

int cfg_find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(infos) / sizeof(infos[0]); i++)
        if (strlen(infos[i].flag + 2) == len && memcmp(infos[i].flag + 2, name, len) == 0)
            return (int)i;
    return -1;
}

/* Markdown table cells: '|' would end the cell, so it is escaped. */
static void md_cell(FILE *f, const char *s, bool code)
{
    fputs(code ? " `" : " ", f);
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
    fputs(code ? "` |" : " |", f);
}

void jb_cfg_print_markdown(FILE *f)
{
    fputs("| Environment | Flag | Default | Allowed | Meaning |\n", f);
    fputs("|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < sizeof(infos) / sizeof(infos[0]); i++) {
        fputs("|", f);
        md_cell(f, infos[i].env, true);
        md_cell(f, infos[i].flag, true);
        if (infos[i].def[0] == '\0')
            fputs(" (empty) |", f);
        else
            md_cell(f, infos[i].def, true);
        md_cell(f, infos[i].allowed, false);
        md_cell(f, infos[i].help, false);
        fputs("\n", f);
    }
}
