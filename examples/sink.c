/*
 * sink: the example event receiver from the README. Prints every CloudEvent it
 * receives on one line (binary mode ce-* headers, structured JSON, or a structured
 * batch) and answers a configurable status, optionally failing every Nth request
 * so the dispatcher's retries can be watched.
 *
 *   sink [--port 8081] [--addr 127.0.0.1] [--status 200] [--fail-every N]
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SINK_MAX_BODY    (1024 * 1024)
#define SINK_MAX_HEADERS (64 * 1024)
#define SINK_TIMEOUT_S   30
#define SINK_DATA_SHOWN  200 /* bytes of data printed per event */
#define SINK_VALUE_SHOWN 256 /* bytes of one attribute printed */

struct sink {
    int status;
    unsigned long fail_every;
    unsigned long requests;
    bool fixed; /* POST /fix: the /status/NNN routes answer `status` too */
    struct event_base *base;
};

/* Writes s[0..len) with control characters and non-ASCII escaped, so an event cannot
 * mess up the terminal; at most max bytes, then "...". */
static void put_safe(const char *s, size_t len, size_t max)
{
    size_t shown = len < max ? len : max;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    if (len > max)
        printf("...(%zu bytes)", len);
}

static int hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* Prints " key=value" when value is present; decodes %XX as the CloudEvents HTTP
 * binding percent-encodes header values. */
static void put_attr(const char *key, const char *value, bool percent_decode)
{
    if (value == NULL)
        return;
    char buf[SINK_VALUE_SHOWN + 1] = {0};
    size_t n = 0, len = strlen(value);
    for (size_t i = 0; i < len && n < SINK_VALUE_SHOWN; i++) {
        if (percent_decode && value[i] == '%' && i + 2 < len &&
            isxdigit((unsigned char)value[i + 1]) && isxdigit((unsigned char)value[i + 2])) {
            buf[n++] = (char)(hexval(value[i + 1]) * 16 + hexval(value[i + 2]));
            i += 2;
        } else {
            buf[n++] = value[i];
        }
    }
    printf(" %s=", key);
    put_safe(buf, n, SINK_VALUE_SHOWN);
    if (n == SINK_VALUE_SHOWN && len > n)
        printf("...");
}

static void put_prefix(unsigned long nr, int status)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s #%lu -> %d", ts, nr, status);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One structured event (a JSON object). */
static void print_structured(const cJSON *ev, unsigned long nr, int status)
{
    put_prefix(nr, status);
    printf(" structured");
    put_attr("type", json_str(ev, "type"), false);
    put_attr("source", json_str(ev, "source"), false);
    put_attr("id", json_str(ev, "id"), false);
    put_attr("time", json_str(ev, "time"), false);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const char *b64 = json_str(ev, "data_base64");
    if (data != NULL) {
        char *txt = cJSON_PrintUnformatted(data);
        if (txt != NULL) {
            printf(" data=");
            put_safe(txt, strlen(txt), SINK_DATA_SHOWN);
            free(txt);
        }
    } else if (b64 != NULL) {
        printf(" data_base64=");
        put_safe(b64, strlen(b64), SINK_DATA_SHOWN);
    }
    putchar('\n');
}

static void print_json_body(const char *body, size_t len, bool batch, unsigned long nr, int status)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    if (doc == NULL || (batch ? !cJSON_IsArray(doc) : !cJSON_IsObject(doc))) {
        put_prefix(nr, status);
        printf(" invalid %s JSON (%zu bytes)\n", batch ? "batch" : "structured", len);
    } else if (batch) {
        const cJSON *ev;
        cJSON_ArrayForEach(ev, doc) print_structured(ev, nr, status);
        if (cJSON_GetArraySize(doc) == 0) {
            put_prefix(nr, status);
            printf(" empty batch\n");
        }
    } else {
        print_structured(doc, nr, status);
    }
    cJSON_Delete(doc);
}

static void print_binary(struct evkeyvalq *h, const char *body, size_t len, unsigned long nr,
                         int status)
{
    put_prefix(nr, status);
    if (evhttp_find_header(h, "ce-type") == NULL) {
        printf(" not a CloudEvent (no ce-type header)");
    } else {
        printf(" binary");
        put_attr("type", evhttp_find_header(h, "ce-type"), true);
        put_attr("source", evhttp_find_header(h, "ce-source"), true);
        put_attr("id", evhttp_find_header(h, "ce-id"), true);
        put_attr("time", evhttp_find_header(h, "ce-time"), true);
    }
    printf(" data=");
    put_safe(body, len, SINK_DATA_SHOWN);
    putchar('\n');
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct sink *s = arg;
    const char *path = evhttp_request_get_uri(req);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET &&
        (strcmp(path, "/healthz") == 0 || strcmp(path, "/") == 0)) {
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    /* The README's dead-letter demo "fixes the sink" before replaying: POST /fix
     * makes every /status/NNN route answer like the rest, POST /break undoes it. */
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST &&
        (strcmp(path, "/fix") == 0 || strcmp(path, "/break") == 0)) {
        s->fixed = strcmp(path, "/fix") == 0;
        printf("sink: /status/NNN routes now answer %s\n", s->fixed ? "like /" : "NNN");
        fflush(stdout);
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    unsigned long nr = ++s->requests;
    int status = s->status;
    if (s->fail_every > 0 && nr % s->fail_every == 0)
        status = 500;
    /* A sink URL ending in /status/NNN answers NNN: one sink process can play a
     * healthy and a failing subscriber (the README's dead-letter demo). */
    const char *st = strstr(path, "/status/");
    if (st != NULL && !s->fixed && strlen(st) == 11 && st[8] >= '1' && st[8] <= '5' &&
        st[9] >= '0' && st[9] <= '9' && st[10] >= '0' && st[10] <= '9')
        status = (st[8] - '0') * 100 + (st[9] - '0') * 10 + (st[10] - '0');
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *ct = evhttp_find_header(h, "content-type");
    if (ct != NULL && strncasecmp(ct, "application/cloudevents-batch+json", 34) == 0)
        print_json_body(body, len, true, nr, status);
    else if (ct != NULL && strncasecmp(ct, "application/cloudevents+json", 28) == 0)
        print_json_body(body, len, false, nr, status);
    else
        print_binary(h, body, len, nr, status);
    fflush(stdout);
    evhttp_send_reply(req, status, NULL, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct sink *s = arg;
    event_base_loopbreak(s->base);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: sink [--port 8081] [--addr 127.0.0.1] [--status 200] [--fail-every N]\n"
               "Prints every CloudEvent it receives, one line each, and answers --status\n"
               "(500 for every Nth request with --fail-every N). A path ending in /status/NNN\n"
               "answers NNN until `POST /fix` (undone by `POST /break`).\n");
}

/* Parses a decimal in [min, max]; the whole string must be the number. */
static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return false;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_args(int argc, char **argv, struct sink *s, long *port, const char **addr)
{
    /* Every option takes one value, so each turn consumes two arguments. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--port") == 0 && parse_long(v, 1, 65535, &n)) {
            *port = n;
        } else if (strcmp(a, "--status") == 0 && parse_long(v, 100, 599, &n)) {
            s->status = (int)n;
        } else if (strcmp(a, "--fail-every") == 0 && parse_long(v, 0, 1000000, &n)) {
            s->fail_every = (unsigned long)n;
        } else if (strcmp(a, "--addr") == 0 && v != NULL) {
            *addr = v;
        } else {
            fprintf(stderr, "sink: bad argument \"%s\"%s%s\n", a, v ? " " : "", v ? v : "");
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    struct sink s = {.status = 200};
    long port = 8081;
    const char *addr = "127.0.0.1";
    int rc = 1;
    struct evhttp *http = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    if (!parse_args(argc, argv, &s, &port, &addr)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    s.base = event_base_new();
    http = s.base ? evhttp_new(s.base) : NULL;
    if (http == NULL)
        goto out;
    evhttp_set_max_body_size(http, SINK_MAX_BODY);
    evhttp_set_max_headers_size(http, SINK_MAX_HEADERS);
    evhttp_set_timeout(http, SINK_TIMEOUT_S);
    evhttp_set_gencb(http, on_request, &s);
    if (evhttp_bind_socket(http, addr, (ev_uint16_t)port) != 0) {
        fprintf(stderr, "sink: cannot listen on %s:%ld\n", addr, port);
        goto out;
    }
    sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
    sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
    if (sigint == NULL || sigterm == NULL || event_add(sigint, NULL) != 0 ||
        event_add(sigterm, NULL) != 0)
        goto out;
    printf("sink: listening on http://%s:%ld/ (status %d", addr, port, s.status);
    if (s.fail_every > 0)
        printf(", 500 every %lu requests", s.fail_every);
    printf(")\n");
    fflush(stdout);
    event_base_dispatch(s.base);
    printf("sink: stopped after %lu requests\n", s.requests);
    fflush(stdout);
    rc = 0;
out:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    if (http != NULL)
        evhttp_free(http);
    if (s.base != NULL)
        event_base_free(s.base);
    return rc;
}
