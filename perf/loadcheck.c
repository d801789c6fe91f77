/*
 * loadcheck: loss and duplicate accounting for jetbridge, end to end.
 *
 * One process, one libevent loop, two halves:
 *  - a publisher client that POSTs numbered CloudEvents (binary mode, ce-id
 *    "<run>-<seq>", body {"seq":N,"sent_ns":T}) at a set rate over C keep-alive
 *    connections to one or more publisher URLs, and records per sequence number
 *    whether it was acknowledged (204), rejected (status) or failed in transport;
 *  - an HTTP recording sink (the subscription's sink) that counts how often each
 *    sequence number arrived, in which order, and the latency from send to receipt.
 * After the load and a drain period it prints one JSON line on stdout and a table on
 * stderr: sent, acked, rejected by code, delivered, lost (acked and never
 * delivered), duplicated, out of order, latency percentiles. Exit 0 when nothing
 * acknowledged was lost, 1 otherwise, 2 on usage errors, 3 when the pipeline never
 * delivered a probe event before the load (see --wait-ready).
 *
 * The sink can misbehave on purpose for fault scenarios: answer a fraction of
 * requests with 503 for a period (--sink-fail-ratio, --sink-fail-seconds) or never
 * answer for a period (--sink-hang-seconds). Periods start with the load (or with
 * the sink in --sink-only mode) plus --sink-fault-after.
 *
 * Memory is bounded: per-event arrays are sized by rate * duration, capped at
 * LC_MAX_EVENTS; requests in flight are a fixed pool (connections * max-queue).
 *
 * Integrity: every event also carries the extensions of lc_attrs (an empty value,
 * Unicode, percent signs, quotes), percent-encoded as the CloudEvents HTTP binding
 * writes them; the sink checks each delivery of this run for them byte for byte and
 * counts a delivery that lacks one or holds another value as "corrupted" (exit 1).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LC_MAX_EVENTS      4000000 /* ~21 bytes each: under 100 MB */
#define LC_MAX_URLS        8
#define LC_MAX_CONNECTIONS 1024
#define LC_MAX_QUEUE       64
#define LC_TICK_US         2000 /* rate timer period */
#define LC_SINK_MAX_BODY   (1024 * 1024)
#define LC_SINK_MAX_HEAD   (64 * 1024)
#define LC_RUN_MAX         32
#define LC_CODES           600
#define LC_LOST_SHOWN      20
#define LC_QUIET_NS        (1500LL * 1000000) /* drain ends this long after the last delivery */

enum lc_state { ST_NONE = 0, ST_INFLIGHT, ST_ACKED, ST_REJECTED, ST_ERROR };
enum lc_phase { PH_READY, PH_LOAD, PH_WAIT_ACKS, PH_DRAIN, PH_DONE };

struct lc_opts {
    const char *urls[LC_MAX_URLS];
    size_t nurls;
    double rate, duration, drain, wait_ready;
    int connections, max_queue, timeout_s;
    const char *sink_addr;
    int sink_port;
    bool sink_only, no_sink, quiet;
    double fail_ratio, fail_seconds, hang_seconds, fault_after;
    int fail_code, fail_retry_after, ok_code;
    const char *source, *type, *run_id, *json_path;
    long long min_acked;
    long long max_events; /* sink-only: size of the arrays */
};

struct lc_url {
    char host[256];
    int port;
    char path[512];
    char hostport[300];
};

struct lc_conn {
    struct evhttp_connection *evcon;
    int pending;
    int url;
};

/* A request in flight. A fixed pool: evhttp may call the completion callback and
 * then still report failure from evhttp_make_request, so ownership is a flag in a
 * slot we own, never a malloc'd context freed in a callback. */
struct lc_slot {
    struct lc *lc;
    struct lc_conn *conn;
    uint32_t seq;
    bool in_use, probe;
};

struct lc {
    struct lc_opts o;
    struct event_base *base;
    struct evhttp *sink;
    struct event *tick, *sigint, *sigterm;
    struct lc_url urls[LC_MAX_URLS];
    struct lc_conn *conns;
    struct lc_slot *slots;
    size_t nslots;
    char run[LC_RUN_MAX + 1];
    enum lc_phase phase;
    uint64_t rng;

    /* per event, indexed by sequence number */
    size_t cap;
    int64_t *sent_ns;
    uint8_t *state;
    uint16_t *code;
    uint16_t *deliveries;
    uint32_t *ack_us;
    uint32_t *e2e_us;

    size_t sent, inflight, backlog_ticks;
    size_t probes_sent, probes_seen;
    int64_t t_start, t_load, t_phase, t_last_delivery, t_progress;
    size_t acked_so_far, delivered_so_far;
    long long max_seq_seen;
    size_t out_of_order, foreign, sink_requests, sink_failed, sink_hung, deliveries_total;
    size_t corrupted; /* deliveries whose lc_attrs did not arrive byte for byte */
    size_t rr;        /* round-robin start for the next connection */
    int64_t t_last_probe, t_last_scan;
    bool interrupted, not_ready;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double rnd01(struct lc *lc)
{
    /* xorshift64*: good enough to pick which requests fail */
    lc->rng ^= lc->rng >> 12;
    lc->rng ^= lc->rng << 25;
    lc->rng ^= lc->rng >> 27;
    return (double)((lc->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: loadcheck --publish-url URL [--publish-url URL2 ...] --sink-port P [options]\n"
        "       loadcheck --sink-only --sink-port P [--duration S] [sink options]\n"
        "Load:\n"
        "  --rate N           events per second (default 100)\n"
        "  --duration S       seconds of load (default 10; sink-only: 0 = until SIGTERM)\n"
        "  --connections C    keep-alive connections, spread over the URLs (default 8)\n"
        "  --max-queue Q      requests queued per connection (default 2)\n"
        "  --timeout S        per-request timeout (default 10)\n"
        "  --drain S          wait at most S seconds for deliveries after the load (default 30)\n"
        "  --wait-ready S     before the load, probe until one event reaches the sink "
        "(default 30; 0 = no probe)\n"
        "  --source SRC --type TYPE   ce-source / ce-type (default loadcheck, "
        "loadcheck.event.v1)\n"
        "  --run-id ID        ce-id prefix (default random)\n"
        "  --min-acked N      also fail (exit 1) when fewer than N events were acknowledged\n"
        "  --no-sink          publish only (no delivery accounting)\n"
        "  --json FILE        also write the JSON summary line to FILE\n"
        "  --quiet            no progress lines\n"
        "Sink:\n"
        "  --sink-addr A      listen address (default 127.0.0.1)\n"
        "  --sink-port P      listen port\n"
        "  --sink-fail-ratio R --sink-fail-seconds S   answer a fraction R with 503 for S s\n"
        "  --sink-status N    status of normal answers (default 200; 204 lets loadcheck\n"
        "                     publish to its own sink, a self-test of the accounting)\n"
        "  --sink-fail-code C  status for failed answers (default 503)\n"
        "  --sink-retry-after S  Retry-After on failed answers (default none)\n"
        "  --sink-hang-seconds S   never answer requests arriving in the first S s\n"
        "  --sink-fault-after S    faults start S s after the load starts (default 0)\n"
        "  --max-events N     sink-only: highest sequence number tracked (default 1000000)\n");
}

static bool parse_double(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void opts_default(struct lc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->rate = 100;
    o->duration = -1;
    o->drain = 30;
    o->wait_ready = 30;
    o->connections = 8;
    o->max_queue = 2;
    o->timeout_s = 10;
    o->sink_addr = "127.0.0.1";
    o->fail_code = 503;
    o->ok_code = 200;
    o->source = "loadcheck";
    o->type = "loadcheck.event.v1";
    o->max_events = 1000000;
}

/* One option with a value; returns false on a bad value. */
static bool opt_value(struct lc_opts *o, const char *name, const char *v)
{
    long long n = 0;
    if (strcmp(name, "--publish-url") == 0) {
        if (o->nurls == LC_MAX_URLS)
            return false;
        o->urls[o->nurls++] = v;
        return true;
    }
    if (strcmp(name, "--rate") == 0)
        return parse_double(v, &o->rate) && o->rate > 0;
    if (strcmp(name, "--duration") == 0)
        return parse_double(v, &o->duration);
    if (strcmp(name, "--drain") == 0)
        return parse_double(v, &o->drain);
    if (strcmp(name, "--wait-ready") == 0)
        return parse_double(v, &o->wait_ready);
    if (strcmp(name, "--sink-fail-ratio") == 0)
        return parse_double(v, &o->fail_ratio) && o->fail_ratio <= 1;
    if (strcmp(name, "--sink-fail-seconds") == 0)
        return parse_double(v, &o->fail_seconds);
    if (strcmp(name, "--sink-hang-seconds") == 0)
        return parse_double(v, &o->hang_seconds);
    if (strcmp(name, "--sink-fault-after") == 0)
        return parse_double(v, &o->fault_after);
    if (strcmp(name, "--sink-addr") == 0)
        return (o->sink_addr = v) != NULL;
    if (strcmp(name, "--source") == 0)
        return *(o->source = v) != '\0';
    if (strcmp(name, "--type") == 0)
        return *(o->type = v) != '\0';
    if (strcmp(name, "--run-id") == 0)
        return *(o->run_id = v) != '\0' && strlen(v) <= LC_RUN_MAX && strchr(v, '-') == NULL;
    if (strcmp(name, "--json") == 0)
        return (o->json_path = v) != NULL;
    if (strcmp(name, "--connections") == 0 && parse_int(v, 1, LC_MAX_CONNECTIONS, &n))
        return (o->connections = (int)n) > 0;
    if (strcmp(name, "--max-queue") == 0 && parse_int(v, 1, LC_MAX_QUEUE, &n))
        return (o->max_queue = (int)n) > 0;
    if (strcmp(name, "--timeout") == 0 && parse_int(v, 1, 3600, &n))
        return (o->timeout_s = (int)n) > 0;
    if (strcmp(name, "--sink-port") == 0 && parse_int(v, 1, 65535, &n))
        return (o->sink_port = (int)n) > 0;
    if (strcmp(name, "--sink-fail-code") == 0 && parse_int(v, 100, 599, &n))
        return (o->fail_code = (int)n) > 0;
    if (strcmp(name, "--sink-status") == 0 && parse_int(v, 200, 299, &n))
        return (o->ok_code = (int)n) > 0;
    if (strcmp(name, "--sink-retry-after") == 0 && parse_int(v, 0, 3600, &n))
        return (o->fail_retry_after = (int)n) >= 0;
    if (strcmp(name, "--min-acked") == 0)
        return parse_int(v, 0, LLONG_MAX, &o->min_acked);
    if (strcmp(name, "--max-events") == 0)
        return parse_int(v, 1, LC_MAX_EVENTS, &o->max_events);
    return false;
}

static bool opts_parse(struct lc_opts *o, int argc, char **argv)
{
    opts_default(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--sink-only") == 0) {
            o->sink_only = true;
        } else if (strcmp(a, "--no-sink") == 0) {
            o->no_sink = true;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (i + 1 < argc && strncmp(a, "--", 2) == 0) {
            if (!opt_value(o, a, argv[i + 1])) {
                fprintf(stderr, "loadcheck: bad value for %s: \"%s\"\n", a, argv[i + 1]);
                return false;
            }
            i++;
        } else {
            fprintf(stderr, "loadcheck: unknown or incomplete argument \"%s\"\n", a);
            return false;
        }
    }
    if (o->duration < 0)
        o->duration = o->sink_only ? 0 : 10;
    if (!o->no_sink && o->sink_port == 0) {
        fprintf(stderr, "loadcheck: --sink-port is required (or --no-sink)\n");
        return false;
    }
    if (!o->sink_only && o->nurls == 0) {
        fprintf(stderr, "loadcheck: --publish-url is required (or --sink-only)\n");
        return false;
    }
    if (o->sink_only && o->no_sink) {
        fprintf(stderr, "loadcheck: --sink-only and --no-sink exclude each other\n");
        return false;
    }
    return true;
}

static bool url_parse(const char *s, struct lc_url *u)
{
    struct evhttp_uri *uri = evhttp_uri_parse(s);
    bool ok = false;
    if (uri == NULL)
        goto out;
    const char *scheme = evhttp_uri_get_scheme(uri), *host = evhttp_uri_get_host(uri);
    const char *path = evhttp_uri_get_path(uri);
    if (scheme == NULL || strcasecmp(scheme, "http") != 0 || host == NULL ||
        strlen(host) >= sizeof(u->host))
        goto out;
    int port = evhttp_uri_get_port(uri);
    u->port = port > 0 ? port : 80;
    snprintf(u->host, sizeof(u->host), "%s", host);
    snprintf(u->path, sizeof(u->path), "%s", path != NULL && *path != '\0' ? path : "/");
    snprintf(u->hostport, sizeof(u->hostport), "%s:%d", u->host, u->port);
    ok = true;
out:
    if (uri != NULL)
        evhttp_uri_free(uri);
    return ok;
}

/* ------------------------------------------------------------------- client */

static void finish_load(struct lc *lc);

static void record_answer(struct lc *lc, struct lc_slot *sl, int status)
{
    uint32_t seq = sl->seq;
    if (sl->probe)
        return;
    lc->state[seq] = status == 204 ? ST_ACKED : status > 0 ? ST_REJECTED : ST_ERROR;
    lc->code[seq] = (uint16_t)(status > 0 && status < LC_CODES ? status : 0);
    int64_t us = (mono_ns() - lc->sent_ns[seq]) / 1000;
    lc->ack_us[seq] = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
    if (status == 204)
        lc->acked_so_far++;
}

static void slot_done(struct lc_slot *sl, int status)
{
    struct lc *lc = sl->lc;
    if (!sl->in_use)
        return;
    record_answer(lc, sl, status);
    sl->in_use = false;
    sl->conn->pending--;
    lc->inflight--;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    /* req is NULL (or has code 0) on connection errors and timeouts. */
    slot_done(arg, req != NULL ? evhttp_request_get_response_code(req) : 0);
}

static struct lc_slot *slot_get(struct lc *lc)
{
    for (size_t i = 0; i < lc->nslots; i++)
        if (!lc->slots[i].in_use)
            return &lc->slots[i];
    return NULL;
}

/* Extensions every event carries, as the HTTP binding writes them (values
 * percent-encoded with upper-case hex, as jetbridge re-encodes them for the sink):
 * an empty value, Unicode, percent signs and quotes. */
static const struct {
    const char *name, *value;
} lc_attrs[] = {
    {"ce-lcempty", ""},
    {"ce-lcuni", "%C3%A9t%C3%A9%20%E2%82%AC%20%F0%9F%98%80"},
    {"ce-lcpct", "100%25%20%25zz%25"},
    {"ce-lcquote", "%22%22"},
};

static void add_lc_attrs(struct evkeyvalq *h)
{
    for (size_t i = 0; i < sizeof(lc_attrs) / sizeof(lc_attrs[0]); i++)
        evhttp_add_header(h, lc_attrs[i].name, lc_attrs[i].value);
}

/* Did every lc_attrs extension arrive unchanged? (binary mode deliveries) */
static bool lc_attrs_intact(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    if (evhttp_find_header(h, "ce-id") == NULL)
        return true; /* structured mode: not checked here */
    for (size_t i = 0; i < sizeof(lc_attrs) / sizeof(lc_attrs[0]); i++) {
        const char *v = evhttp_find_header(h, lc_attrs[i].name);
        if (v == NULL || strcmp(v, lc_attrs[i].value) != 0)
            return false;
    }
    return true;
}

/* Sends one event with sequence number seq (or a probe) on c. */
static void send_event(struct lc *lc, struct lc_conn *c, uint32_t seq, bool probe)
{
    struct lc_slot *sl = slot_get(lc);
    if (sl == NULL)
        return; /* cannot happen: slots = connections * max_queue */
    const struct lc_url *u = &lc->urls[c->url];
    int64_t now = mono_ns();
    char id[LC_RUN_MAX + 32], body[96];
    if (probe)
        snprintf(id, sizeof(id), "%s-p%u", lc->run, seq);
    else
        snprintf(id, sizeof(id), "%s-%u", lc->run, seq);
    int blen = snprintf(body, sizeof(body), "{\"seq\":%u,\"sent_ns\":%" PRId64 "}", seq, now);

    *sl = (struct lc_slot){.lc = lc, .conn = c, .seq = seq, .in_use = true, .probe = probe};
    if (!probe) {
        lc->sent_ns[seq] = now;
        lc->state[seq] = ST_INFLIGHT;
    }
    c->pending++;
    lc->inflight++;
    struct evhttp_request *req = evhttp_request_new(on_response, sl);
    if (req == NULL) {
        slot_done(sl, 0);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", u->hostport);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "ce-specversion", "1.0");
    evhttp_add_header(h, "ce-id", id);
    evhttp_add_header(h, "ce-source", lc->o.source);
    evhttp_add_header(h, "ce-type", lc->o.type);
    add_lc_attrs(h);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, (size_t)blen);
    /* On failure evhttp has freed req (and may or may not have called back). */
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, u->path) != 0)
        slot_done(sl, 0);
}

static struct lc_conn *conn_free(struct lc *lc)
{
    for (int k = 0; k < lc->o.connections; k++) {
        struct lc_conn *c = &lc->conns[(lc->rr + (size_t)k) % (size_t)lc->o.connections];
        if (c->pending < lc->o.max_queue) {
            lc->rr = (lc->rr + (size_t)k + 1) % (size_t)lc->o.connections;
            return c;
        }
    }
    return NULL;
}

static void send_due(struct lc *lc, int64_t now)
{
    double elapsed = (double)(now - lc->t_load) / 1e9;
    double target = elapsed * lc->o.rate;
    if (target > (double)lc->cap)
        target = (double)lc->cap;
    while ((double)lc->sent < target) {
        struct lc_conn *c = conn_free(lc);
        if (c == NULL) {
            /* Every connection is busy: the publisher is slower than the offered
             * rate. The events are not invented later; "sent" shows the shortfall. */
            lc->backlog_ticks++;
            return;
        }
        send_event(lc, c, (uint32_t)lc->sent, false);
        lc->sent++;
    }
}

static bool conns_create(struct lc *lc)
{
    lc->conns = calloc((size_t)lc->o.connections, sizeof(*lc->conns));
    lc->nslots = (size_t)lc->o.connections * (size_t)lc->o.max_queue;
    lc->slots = calloc(lc->nslots, sizeof(*lc->slots));
    if (lc->conns == NULL || lc->slots == NULL)
        return false;
    for (int i = 0; i < lc->o.connections; i++) {
        struct lc_conn *c = &lc->conns[i];
        c->url = i % (int)lc->o.nurls;
        const struct lc_url *u = &lc->urls[c->url];
        c->evcon = evhttp_connection_base_new(lc->base, NULL, u->host, (unsigned short)u->port);
        if (c->evcon == NULL)
            return false;
        evhttp_connection_set_timeout(c->evcon, lc->o.timeout_s);
        evhttp_connection_set_retries(c->evcon, 0);
        evhttp_connection_set_max_headers_size(c->evcon, LC_SINK_MAX_HEAD);
        evhttp_connection_set_max_body_size(c->evcon, LC_SINK_MAX_BODY);
    }
    return true;
}

/* -------------------------------------------------------------------- sink */

/* Splits "<run>-<n>" or "<run>-p<n>"; false when it is not one of ours. */
static bool parse_id(const char *id, char *run, size_t runsz, long long *seq, bool *probe)
{
    const char *dash = strrchr(id, '-');
    if (dash == NULL || (size_t)(dash - id) >= runsz || dash == id)
        return false;
    const char *num = dash + 1;
    *probe = *num == 'p';
    if (*probe)
        num++;
    if (!parse_int(num, 0, UINT32_MAX, seq))
        return false;
    memcpy(run, id, (size_t)(dash - id));
    run[dash - id] = '\0';
    return true;
}

/* sent_ns from the body {"seq":N,"sent_ns":T}, for --sink-only mode. */
static int64_t body_sent_ns(struct evhttp_request *req)
{
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    const char *p = (const char *)evbuffer_pullup(b, -1);
    int64_t v = 0;
    if (p == NULL || len == 0)
        return 0;
    cJSON *j = cJSON_ParseWithLength(p, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "sent_ns");
    if (cJSON_IsNumber(t))
        v = (int64_t)t->valuedouble;
    cJSON_Delete(j);
    return v;
}

/* The event id: ce-id in binary mode, "id" of the JSON body in structured mode. */
static bool event_id(struct evhttp_request *req, char *out, size_t outsz)
{
    const char *id = evhttp_find_header(evhttp_request_get_input_headers(req), "ce-id");
    if (id != NULL) {
        snprintf(out, outsz, "%s", id);
        return strlen(id) < outsz;
    }
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    const char *p = (const char *)evbuffer_pullup(b, -1);
    bool ok = false;
    cJSON *j = p != NULL ? cJSON_ParseWithLength(p, len) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (cJSON_IsString(v) && strlen(v->valuestring) < outsz) {
        snprintf(out, outsz, "%s", v->valuestring);
        ok = true;
    }
    cJSON_Delete(j);
    return ok;
}

static void record_delivery(struct lc *lc, struct evhttp_request *req, long long seq, int64_t now)
{
    if ((size_t)seq >= lc->cap) {
        lc->foreign++;
        return;
    }
    lc->deliveries_total++;
    lc->t_last_delivery = now;
    if (!lc_attrs_intact(req))
        lc->corrupted++;
    if (lc->deliveries[seq] < UINT16_MAX)
        lc->deliveries[seq]++;
    if (lc->deliveries[seq] != 1)
        return;
    lc->delivered_so_far++;
    int64_t sent = lc->o.sink_only ? body_sent_ns(req) : lc->sent_ns[seq];
    int64_t us = sent > 0 && now > sent ? (now - sent) / 1000 : 0;
    lc->e2e_us[seq] = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
    if (seq < lc->max_seq_seen)
        lc->out_of_order++;
    else
        lc->max_seq_seen = seq;
}

/* True when the request arrived inside a fault window [after, after+len). */
static bool in_window(const struct lc *lc, int64_t now, double len)
{
    if (len <= 0 || lc->t_load == 0)
        return false;
    double t = (double)(now - lc->t_load) / 1e9 - lc->o.fault_after;
    return t >= 0 && t < len;
}

static void on_sink(struct evhttp_request *req, void *arg)
{
    struct lc *lc = arg;
    int64_t now = mono_ns();
    lc->sink_requests++;
    if (in_window(lc, now, lc->o.hang_seconds)) {
        /* Never answered: evhttp frees the request when the client gives up and
         * closes the connection. */
        lc->sink_hung++;
        return;
    }
    if (in_window(lc, now, lc->o.fail_seconds) && rnd01(lc) < lc->o.fail_ratio) {
        lc->sink_failed++;
        if (lc->o.fail_retry_after > 0) {
            char ra[16];
            snprintf(ra, sizeof(ra), "%d", lc->o.fail_retry_after);
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        }
        evhttp_send_reply(req, lc->o.fail_code, "Injected failure", NULL);
        return;
    }
    char id[128], run[LC_RUN_MAX + 1];
    long long seq = 0;
    bool probe = false;
    if (!event_id(req, id, sizeof(id)) || !parse_id(id, run, sizeof(run), &seq, &probe)) {
        lc->foreign++;
    } else if (lc->run[0] == '\0' && lc->o.sink_only) {
        snprintf(lc->run, sizeof(lc->run), "%s", run); /* sink-only: adopt the first run */
        probe ? (void)lc->probes_seen++ : record_delivery(lc, req, seq, now);
    } else if (strcmp(run, lc->run) != 0) {
        lc->foreign++;
    } else if (probe) {
        lc->probes_seen++;
    } else {
        record_delivery(lc, req, seq, now);
    }
    evhttp_send_reply(req, lc->o.ok_code, "OK", NULL);
}

static bool sink_create(struct lc *lc)
{
    lc->sink = evhttp_new(lc->base);
    if (lc->sink == NULL)
        return false;
    /* libevent's defaults are unlimited: set every limit. */
    evhttp_set_max_body_size(lc->sink, LC_SINK_MAX_BODY);
    evhttp_set_max_headers_size(lc->sink, LC_SINK_MAX_HEAD);
    evhttp_set_timeout(lc->sink, 120);
    evhttp_set_allowed_methods(lc->sink, EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
    evhttp_set_gencb(lc->sink, on_sink, lc);
    if (evhttp_bind_socket_with_handle(lc->sink, lc->o.sink_addr, (uint16_t)lc->o.sink_port) ==
        NULL) {
        fprintf(stderr, "loadcheck: cannot listen on %s:%d: %s\n", lc->o.sink_addr, lc->o.sink_port,
                strerror(errno));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ phases */

static size_t unacked_undelivered(const struct lc *lc)
{
    size_t n = 0;
    for (size_t i = 0; i < lc->sent; i++)
        if (lc->state[i] == ST_ACKED && lc->deliveries[i] == 0)
            n++;
    return n;
}

static void set_phase(struct lc *lc, enum lc_phase p, int64_t now)
{
    lc->phase = p;
    lc->t_phase = now;
    if (p == PH_LOAD) {
        lc->t_load = now;
        if (!lc->o.quiet && !lc->o.sink_only)
            fprintf(stderr, "loadcheck: load started\n"); /* scenario scripts wait for it */
    }
    if (p == PH_DONE)
        event_base_loopexit(lc->base, NULL);
}

static void finish_load(struct lc *lc)
{
    set_phase(lc, PH_WAIT_ACKS, mono_ns());
    if (!lc->o.quiet)
        fprintf(stderr, "loadcheck: load finished\n"); /* scenario scripts wait for it */
}

static void progress(struct lc *lc, int64_t now)
{
    if (lc->o.quiet || now - lc->t_progress < 1000000000LL)
        return;
    lc->t_progress = now;
    static const char *names[] = {"ready", "load", "wait-acks", "drain", "done"};
    fprintf(stderr,
            "loadcheck: t=%.0fs phase=%s sent=%zu acked=%zu inflight=%zu delivered=%zu "
            "sink_requests=%zu failed=%zu hung=%zu\n",
            (double)(now - lc->t_start) / 1e9, names[lc->phase], lc->sent, lc->acked_so_far,
            lc->inflight, lc->delivered_so_far, lc->sink_requests, lc->sink_failed, lc->sink_hung);
}

/* Before the load: one probe event every 500 ms until one reaches the sink, so the
 * measured run does not start before the subscription's consumer exists (with
 * interest retention, events published before that are not kept for it). */
static void tick_ready(struct lc *lc, int64_t now)
{
    if (lc->o.no_sink || lc->o.wait_ready <= 0 || lc->probes_seen > 0) {
        set_phase(lc, PH_LOAD, now);
        return;
    }
    if ((double)(now - lc->t_phase) / 1e9 > lc->o.wait_ready) {
        fprintf(stderr, "loadcheck: no probe event reached the sink in %.0f s\n", lc->o.wait_ready);
        lc->not_ready = true;
        set_phase(lc, PH_DONE, now);
        return;
    }
    if (now - lc->t_last_probe >= 500000000LL) {
        struct lc_conn *c = conn_free(lc);
        if (c != NULL) {
            send_event(lc, c, (uint32_t)lc->probes_sent++, true);
            lc->t_last_probe = now;
        }
    }
}

static void tick_drain(struct lc *lc, int64_t now)
{
    if ((double)(now - lc->t_phase) / 1e9 >= lc->o.drain) {
        set_phase(lc, PH_DONE, now);
        return;
    }
    if (now - lc->t_last_scan < 250000000LL)
        return;
    lc->t_last_scan = now;
    /* Done early when every acknowledged event arrived and the sink has been quiet
     * for a while (late duplicates would still count). */
    if (unacked_undelivered(lc) == 0 && now - lc->t_last_delivery > LC_QUIET_NS &&
        now - lc->t_phase > LC_QUIET_NS)
        set_phase(lc, PH_DONE, now);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lc *lc = arg;
    int64_t now = mono_ns();
    (void)fd, (void)what;
    progress(lc, now);
    switch (lc->phase) {
    case PH_READY:
        tick_ready(lc, now);
        break;
    case PH_LOAD:
        if (lc->o.sink_only) {
            if (lc->o.duration > 0 && (double)(now - lc->t_load) / 1e9 >= lc->o.duration)
                set_phase(lc, PH_DONE, now);
        } else if ((double)(now - lc->t_load) / 1e9 >= lc->o.duration || lc->sent >= lc->cap) {
            send_due(lc, lc->t_load + (int64_t)(lc->o.duration * 1e9)); /* the last tick's share */
            finish_load(lc);
        } else {
            send_due(lc, now);
        }
        break;
    case PH_WAIT_ACKS:
        if (lc->inflight == 0 || now - lc->t_phase > (int64_t)(lc->o.timeout_s + 2) * 1000000000LL)
            set_phase(lc, lc->o.no_sink ? PH_DONE : PH_DRAIN, now);
        break;
    case PH_DRAIN:
        tick_drain(lc, now);
        break;
    case PH_DONE:
        break;
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct lc *lc = arg;
    (void)sig, (void)what;
    lc->interrupted = true;
    set_phase(lc, PH_DONE, mono_ns());
}

/* ----------------------------------------------------------------- summary */

struct lc_pct {
    double p50, p99, max; /* milliseconds */
};

struct lc_sum {
    size_t sent, acked, rejected, errors, delivered, lost, duplicated, dup_deliveries;
    size_t delivered_unacked;
    size_t codes[LC_CODES];
    size_t lost_shown[LC_LOST_SHOWN], nlost_shown;
    struct lc_pct e2e, ack;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles of v[0..n) (microseconds); sorts v. */
static struct lc_pct percentiles(uint32_t *v, size_t n)
{
    struct lc_pct p = {0, 0, 0};
    if (n == 0)
        return p;
    qsort(v, n, sizeof(*v), cmp_u32);
    p.p50 = v[(size_t)ceil(0.50 * (double)n) - 1] / 1000.0;
    p.p99 = v[(size_t)ceil(0.99 * (double)n) - 1] / 1000.0;
    p.max = v[n - 1] / 1000.0;
    return p;
}

static void count_event(const struct lc *lc, size_t i, struct lc_sum *s)
{
    bool acked = lc->state[i] == ST_ACKED;
    if (acked)
        s->acked++;
    else if (lc->state[i] == ST_REJECTED) {
        s->rejected++;
        s->codes[lc->code[i]]++;
    } else if (lc->state[i] == ST_ERROR || lc->state[i] == ST_INFLIGHT)
        s->errors++; /* in flight at the end: the request timed out or was cut off */
    uint16_t d = lc->deliveries[i];
    if (lc->o.no_sink)
        return; /* nothing to account for on the delivery side */
    if (d > 0) {
        s->delivered++;
        if (d > 1) {
            s->duplicated++;
            s->dup_deliveries += d - 1u;
        }
        if (!acked && !lc->o.sink_only)
            s->delivered_unacked++;
    } else if (acked) {
        if (s->nlost_shown < LC_LOST_SHOWN)
            s->lost_shown[s->nlost_shown++] = i;
        s->lost++;
    }
}

static bool summarize(const struct lc *lc, struct lc_sum *s)
{
    memset(s, 0, sizeof(*s));
    size_t n = lc->o.sink_only ? lc->cap : lc->sent;
    s->sent = lc->o.sink_only ? 0 : lc->sent;
    uint32_t *e2e = malloc((n > 0 ? n : 1) * sizeof(uint32_t));
    uint32_t *ack = malloc((n > 0 ? n : 1) * sizeof(uint32_t));
    size_t ne = 0, na = 0;
    if (e2e == NULL || ack == NULL) {
        free(e2e);
        free(ack);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        count_event(lc, i, s);
        if (lc->deliveries[i] > 0)
            e2e[ne++] = lc->e2e_us[i];
        if (lc->state[i] == ST_ACKED)
            ack[na++] = lc->ack_us[i];
    }
    s->e2e = percentiles(e2e, ne);
    s->ack = percentiles(ack, na);
    free(e2e);
    free(ack);
    return true;
}

static void json_pct(cJSON *o, const char *name, const struct lc_pct *p)
{
    cJSON *j = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(j, "p50", round(p->p50 * 1000) / 1000);
    cJSON_AddNumberToObject(j, "p99", round(p->p99 * 1000) / 1000);
    cJSON_AddNumberToObject(j, "max", round(p->max * 1000) / 1000);
}

static char *summary_json(const struct lc *lc, const struct lc_sum *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run", lc->run);
    cJSON_AddStringToObject(o, "mode", lc->o.sink_only ? "sink-only" : "load");
    cJSON_AddNumberToObject(o, "rate", lc->o.rate);
    cJSON_AddNumberToObject(o, "duration_s", lc->o.duration);
    cJSON_AddNumberToObject(o, "offered", floor(lc->o.rate * lc->o.duration));
    cJSON_AddNumberToObject(o, "sent", (double)s->sent);
    cJSON_AddNumberToObject(o, "acked", (double)s->acked);
    cJSON_AddNumberToObject(o, "rejected_total", (double)s->rejected);
    cJSON *codes = cJSON_AddObjectToObject(o, "rejected");
    for (int c = 0; c < LC_CODES; c++) {
        if (s->codes[c] > 0) {
            char k[8];
            snprintf(k, sizeof(k), "%d", c);
            cJSON_AddNumberToObject(codes, k, (double)s->codes[c]);
        }
    }
    cJSON_AddNumberToObject(o, "transport_errors", (double)s->errors);
    cJSON_AddBoolToObject(o, "sink", !lc->o.no_sink);
    cJSON_AddNumberToObject(o, "delivered", (double)s->delivered);
    cJSON_AddNumberToObject(o, "lost", (double)s->lost);
    cJSON_AddNumberToObject(o, "duplicated", (double)s->duplicated);
    cJSON_AddNumberToObject(o, "duplicate_deliveries", (double)s->dup_deliveries);
    cJSON_AddNumberToObject(o, "delivered_unacked", (double)s->delivered_unacked);
    cJSON_AddNumberToObject(o, "out_of_order", (double)lc->out_of_order);
    cJSON_AddNumberToObject(o, "foreign", (double)lc->foreign);
    cJSON_AddNumberToObject(o, "corrupted", (double)lc->corrupted);
    cJSON_AddNumberToObject(o, "sink_requests", (double)lc->sink_requests);
    cJSON_AddNumberToObject(o, "sink_failed", (double)lc->sink_failed);
    cJSON_AddNumberToObject(o, "sink_hung", (double)lc->sink_hung);
    cJSON_AddNumberToObject(o, "client_backlog_ticks", (double)lc->backlog_ticks);
    json_pct(o, "latency_ms", &s->e2e);
    json_pct(o, "ack_latency_ms", &s->ack);
    cJSON *lost = cJSON_AddArrayToObject(o, "lost_first");
    for (size_t i = 0; i < s->nlost_shown; i++)
        cJSON_AddItemToArray(lost, cJSON_CreateNumber((double)s->lost_shown[i]));
    cJSON_AddBoolToObject(o, "not_ready", lc->not_ready);
    cJSON_AddBoolToObject(o, "interrupted", lc->interrupted);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void summary_table(const struct lc *lc, const struct lc_sum *s)
{
    FILE *f = stderr;
    fprintf(f, "\nloadcheck run %s%s\n", lc->run, lc->interrupted ? " (interrupted)" : "");
    fprintf(f, "  %-22s %12zu   (offered %.0f at %.0f/s for %.0f s)\n", "sent", s->sent,
            floor(lc->o.rate * lc->o.duration), lc->o.rate, lc->o.duration);
    fprintf(f, "  %-22s %12zu\n", "acked (204)", s->acked);
    fprintf(f, "  %-22s %12zu  ", "rejected", s->rejected);
    for (int c = 0; c < LC_CODES; c++)
        if (s->codes[c] > 0)
            fprintf(f, " %d:%zu", c, s->codes[c]);
    fprintf(f, "\n  %-22s %12zu\n", "transport errors", s->errors);
    if (!lc->o.no_sink) {
        fprintf(f, "  %-22s %12zu\n", "delivered (distinct)", s->delivered);
        fprintf(f, "  %-22s %12zu\n", "LOST (acked, never)", s->lost);
        fprintf(f, "  %-22s %12zu   (%zu extra deliveries)\n", "duplicated", s->duplicated,
                s->dup_deliveries);
        fprintf(f, "  %-22s %12zu\n", "delivered not acked", s->delivered_unacked);
        fprintf(f, "  %-22s %12zu\n", "out of order", lc->out_of_order);
        fprintf(f, "  %-22s %12zu\n", "CORRUPTED (attributes)", lc->corrupted);
        fprintf(f, "  %-22s %12zu   (503: %zu, hung: %zu, foreign: %zu)\n", "sink requests",
                lc->sink_requests, lc->sink_failed, lc->sink_hung, lc->foreign);
        fprintf(f, "  %-22s p50 %.1f  p99 %.1f  max %.1f ms\n", "end-to-end latency", s->e2e.p50,
                s->e2e.p99, s->e2e.max);
    }
    fprintf(f, "  %-22s p50 %.1f  p99 %.1f  max %.1f ms\n", "publish ack latency", s->ack.p50,
            s->ack.p99, s->ack.max);
    if (s->nlost_shown > 0) {
        fprintf(f, "  first lost sequence numbers:");
        for (size_t i = 0; i < s->nlost_shown; i++)
            fprintf(f, " %zu", s->lost_shown[i]);
        fprintf(f, "\n");
    }
}

/* -------------------------------------------------------------------- main */

static void make_run_id(struct lc *lc)
{
    if (lc->o.run_id != NULL) {
        snprintf(lc->run, sizeof(lc->run), "%s", lc->o.run_id);
        return;
    }
    if (lc->o.sink_only)
        return; /* adopt the first run seen */
    unsigned char r[6] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(r, 1, sizeof(r), f) != sizeof(r)) {
        uint64_t x = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
        memcpy(r, &x, sizeof(r));
    }
    if (f != NULL)
        fclose(f);
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(lc->run + 2 * i, 3, "%02x", r[i]);
}

static bool arrays_create(struct lc *lc)
{
    double want = lc->o.sink_only ? (double)lc->o.max_events : ceil(lc->o.rate * lc->o.duration);
    if (want > LC_MAX_EVENTS) {
        fprintf(stderr, "loadcheck: %.0f events requested; capped at %d (the load stops there)\n",
                want, LC_MAX_EVENTS);
        want = LC_MAX_EVENTS;
    }
    lc->cap = (size_t)want;
    size_t n = lc->cap > 0 ? lc->cap : 1;
    lc->sent_ns = calloc(n, sizeof(*lc->sent_ns));
    lc->state = calloc(n, sizeof(*lc->state));
    lc->code = calloc(n, sizeof(*lc->code));
    lc->deliveries = calloc(n, sizeof(*lc->deliveries));
    lc->ack_us = calloc(n, sizeof(*lc->ack_us));
    lc->e2e_us = calloc(n, sizeof(*lc->e2e_us));
    return lc->sent_ns != NULL && lc->state != NULL && lc->code != NULL && lc->deliveries != NULL &&
           lc->ack_us != NULL && lc->e2e_us != NULL;
}

static bool setup(struct lc *lc)
{
    for (size_t i = 0; i < lc->o.nurls; i++) {
        if (!url_parse(lc->o.urls[i], &lc->urls[i])) {
            fprintf(stderr, "loadcheck: bad --publish-url \"%s\" (want http://host:port/path)\n",
                    lc->o.urls[i]);
            return false;
        }
    }
    make_run_id(lc);
    lc->rng = (uint64_t)mono_ns() | 1;
    if (!arrays_create(lc) || (lc->base = event_base_new()) == NULL) {
        fprintf(stderr, "loadcheck: out of memory\n");
        return false;
    }
    if (!lc->o.no_sink && !sink_create(lc))
        return false;
    if (!lc->o.sink_only && !conns_create(lc)) {
        fprintf(stderr, "loadcheck: cannot create connections\n");
        return false;
    }
    struct timeval tv = {0, LC_TICK_US};
    lc->tick = event_new(lc->base, -1, EV_PERSIST, on_tick, lc);
    lc->sigint = evsignal_new(lc->base, SIGINT, on_signal, lc);
    lc->sigterm = evsignal_new(lc->base, SIGTERM, on_signal, lc);
    if (lc->tick == NULL || lc->sigint == NULL || lc->sigterm == NULL)
        return false;
    event_add(lc->tick, &tv);
    event_add(lc->sigint, NULL);
    event_add(lc->sigterm, NULL);
    return true;
}

static void teardown(struct lc *lc)
{
    if (lc->conns != NULL)
        for (int i = 0; i < lc->o.connections; i++)
            if (lc->conns[i].evcon != NULL)
                evhttp_connection_free(lc->conns[i].evcon);
    if (lc->sink != NULL)
        evhttp_free(lc->sink);
    if (lc->tick != NULL)
        event_free(lc->tick);
    if (lc->sigint != NULL)
        event_free(lc->sigint);
    if (lc->sigterm != NULL)
        event_free(lc->sigterm);
    if (lc->base != NULL)
        event_base_free(lc->base);
    free(lc->conns);
    free(lc->slots);
    free(lc->sent_ns);
    free(lc->state);
    free(lc->code);
    free(lc->deliveries);
    free(lc->ack_us);
    free(lc->e2e_us);
}

static int report(struct lc *lc)
{
    struct lc_sum s;
    if (!summarize(lc, &s)) {
        fprintf(stderr, "loadcheck: out of memory\n");
        return 1;
    }
    char *json = summary_json(lc, &s);
    if (json != NULL) {
        printf("%s\n", json);
        fflush(stdout);
        FILE *f = lc->o.json_path != NULL ? fopen(lc->o.json_path, "w") : NULL;
        if (f != NULL) {
            fprintf(f, "%s\n", json);
            fclose(f);
        }
        cJSON_free(json);
    }
    summary_table(lc, &s);
    if (lc->not_ready)
        return 3;
    if (s.lost > 0 || lc->corrupted > 0 || (long long)s.acked < lc->o.min_acked)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    static struct lc lc; /* large; zeroed */
    if (!opts_parse(&lc.o, argc, argv)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = 1;
    if (!setup(&lc))
        goto out;
    lc.t_start = mono_ns();
    set_phase(&lc, lc.o.sink_only ? PH_LOAD : PH_READY, lc.t_start);
    if (!lc.o.quiet)
        fprintf(stderr, "loadcheck: run %s, %s\n", lc.run[0] ? lc.run : "(any)",
                lc.o.sink_only ? "sink only" : "publishing");
    event_base_dispatch(lc.base);
    rc = report(&lc);
out:
    teardown(&lc);
    return rc;
}
