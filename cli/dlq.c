/* `jetbridge dlq list|replay`: look at dead letters and send them again. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/jb_cli.h"
#include "common/jb_common.h"
#include "common/jb_text.h"
#include "config/jb_cfg.h"
#include "dispatcher/jb_disp.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"

/* A listing never reads more than this many messages. */
#define DLQ_LIST_MAX 100000

typedef struct dlq_opts {
    char subscription[512]; /* "ns/name", or "" for all */
    bool all;
    uint64_t seq; /* 0: all */
    bool json;
    bool republish;
    long limit;
} dlq_opts;

static const struct verb_help {
    const char *verb, *usage;
} verbs[] = {
    {"list",
     "jetbridge dlq list   [--subscription [NS/]NAME] [--seq N] [--limit N] [-o table|json]"},
    {"replay", "jetbridge dlq replay [--subscription [NS/]NAME] [--seq N] [--republish]"},
    {"purge", "jetbridge dlq purge  --subscription [NS/]NAME | --seq N | --all"},
};

static void dlq_usage(FILE *f, const char *verb)
{
    fprintf(f, "Usage:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (verb == NULL || strcmp(verb, verbs[i].verb) == 0)
            fprintf(f, "  %s\n", verbs[i].usage);
    fprintf(f, "\nlist shows the dead letters of stream JS_DLQ_STREAM_NAME. replay sends each one\n"
               "again to its subscription's sink (or, with --republish, publishes it again on\n"
               "its original subject, which reaches every subscription of that subject) and\n"
               "deletes it from the dead-letter stream when that succeeded. purge deletes the\n"
               "selected dead letters without sending them; everything only with --all.\n"
               "--subscription NAME means default/NAME.\n\n"
               "Examples:\n"
               "  jetbridge dlq list --subscription order-processor -o json\n"
               "  jetbridge dlq replay --seq 42\n"
               "  jetbridge dlq replay --subscription default/order-processor --republish\n"
               "  jetbridge dlq purge --subscription dead-letter-demo\n\n"
               "Exit codes: 0 ok (also when nothing matched), 1 runtime error (NATS or the\n"
               "stream unreachable, or a replay failed), 2 usage error.\n");
}

/* The one wording for a bad argument. */
static int bad_arg(const char *what, const char *arg)
{
    fprintf(stderr, "jetbridge dlq: %s \"%s\"; see `jetbridge dlq --help`\n", what, arg);
    return 2;
}

/* A header by name without case: nats.c's lookup is case-sensitive, and keys that
 * nats.c 3.4 would confuse are stored with some letters' case flipped (jb_ce_to_nats,
 * and the Jb-* headers of a dead letter). */
static const char *hdr(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) == NATS_OK)
        return v;
    const char **keys = NULL;
    int n = 0;
    if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK)
        return "";
    for (int i = 0; i < n && v == NULL; i++)
        if (strcasecmp(keys[i], key) == 0 && natsMsgHeader_Get(m, keys[i], &v) != NATS_OK)
            v = NULL;
    free((void *)keys);
    return v != NULL ? v : "";
}

static bool selected(natsMsg *m, const dlq_opts *o)
{
    return o->subscription[0] == '\0' || strcmp(hdr(m, "Jb-Subscription"), o->subscription) == 0;
}

/* Calls fn for every selected dead letter; stops when fn returns false. */
typedef bool (*visit_fn)(void *ud, uint64_t seq, natsMsg *m);
static int visit(jsCtx *js, const char *stream, const dlq_opts *o, visit_fn fn, void *ud,
                 long *matched)
{
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "jetbridge dlq: stream %s: %s\n", stream, natsStatus_GetText(s));
        return 1;
    }
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    if (o->seq != 0)
        first = last = o->seq;
    long seen = 0;
    for (uint64_t seq = first; seq != 0 && seq <= last && seen < o->limit; seq++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, js, stream, seq, NULL, NULL) != NATS_OK)
            continue; /* deleted or purged */
        bool go = true;
        if (selected(m, o)) {
            seen++;
            go = fn(ud, seq, m);
        }
        natsMsg_Destroy(m);
        if (!go)
            break;
    }
    if (matched != NULL)
        *matched = seen;
    return 0;
}

/* What a selection was, for "nothing matched" lines. */
static void describe_selection(const dlq_opts *o, char *out, size_t cap)
{
    if (o->seq != 0)
        snprintf(out, cap, "with --seq %" PRIu64 "%s%s", o->seq, o->subscription[0] ? " of " : "",
                 o->subscription);
    else if (o->subscription[0] != '\0')
        snprintf(out, cap, "of subscription %s", o->subscription);
    else
        snprintf(out, cap, "in the stream");
}

/* ---------------------------------------------------------------- list */

static bool list_table(void *ud, uint64_t seq, natsMsg *m)
{
    (void)ud;
    const char *type = hdr(m, "ce-originaltype");
    if (type[0] == '\0')
        type = hdr(m, "ce-type");
    /* Every value was written by someone else: escaped for the terminal, and the
     * destination without userinfo (dead letters older than the redaction). */
    const char *raw[] = {hdr(m, "Jb-Subscription"),
                         type,
                         hdr(m, "ce-id"),
                         hdr(m, "ce-errorcode"),
                         hdr(m, "ce-errorattempts"),
                         hdr(m, "ce-errordest")};
    char *v[6] = {NULL};
    char *dest = jb_redact_url(raw[5]);
    bool ok = dest != NULL;
    for (size_t i = 0; ok && i < 6; i++) {
        const char *x = i == 5 ? dest : raw[i];
        ok = (v[i] = jb_escape_text(x, strlen(x))) != NULL;
    }
    if (ok)
        printf("%-6" PRIu64 " %-30s %-32s %-36s %-5s %-8s %s\n", seq, v[0], v[1], v[2], v[3], v[4],
               v[5]);
    for (size_t i = 0; i < 6; i++)
        free(v[i]);
    free(dest);
    return ok;
}

/* A ce- header's attribute value, decoded as the NATS binding wrote it
 * (percent-encoding; `""` for an empty value); the raw header when it does not
 * decode. Adds it to o under key. */
static void add_ce_value(cJSON *o, const char *key, natsMsg *m, const char *header)
{
    const char *raw = hdr(m, header);
    char *dec = NULL;
    jb_err err = {{0}};
    if (strncasecmp(header, "ce-", 3) == 0 &&
        jb_ce_header_decode(raw, strlen(raw), &dec, NULL, &err) == JB_OK)
        raw = dec;
    /* A destination's userinfo is never shown (dead letters older than the
     * redaction may hold it). */
    char *shown = strcmp(key, "errordest") == 0 ? jb_redact_url(raw) : NULL;
    cJSON_AddStringToObject(o, key, shown != NULL ? shown : raw);
    free(shown);
    free(dec);
}

static bool list_json(void *ud, uint64_t seq, natsMsg *m)
{
    cJSON *arr = ud;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return false;
    cJSON_AddNumberToObject(o, "seq", (double)seq);
    static const struct {
        const char *key, *header;
    } fields[] = {
        {"subscription", "Jb-Subscription"},
        {"consumer", "Jb-Consumer"},
        {"subject", "Jb-Subject"},
        {"id", "ce-id"},
        {"type", "ce-type"},
        {"originaltype", "ce-originaltype"},
        {"source", "ce-source"},
        {"errordest", "ce-errordest"},
        {"errorcode", "ce-errorcode"},
        {"errordata", "ce-errordata"},
        {"errorattempts", "ce-errorattempts"},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        add_ce_value(o, fields[i].key, m, fields[i].header);
    cJSON_AddNumberToObject(o, "time_ms", (double)(natsMsg_GetTime(m) / 1000000));
    cJSON_AddItemToArray(arr, o);
    return true;
}

static int dlq_list(jsCtx *js, const char *stream, const dlq_opts *o)
{
    if (!o->json) {
        printf("%-6s %-30s %-32s %-36s %-5s %-8s %s\n", "SEQ", "SUBSCRIPTION", "TYPE", "ID", "CODE",
               "ATTEMPTS", "DEST");
        return visit(js, stream, o, list_table, NULL, NULL);
    }
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL)
        return 1;
    int rc = visit(js, stream, o, list_json, arr, NULL);
    char *s = rc == 0 ? cJSON_Print(arr) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(arr);
    return rc;
}

/* -------------------------------------------------------------- replay */

typedef struct replay_ctx {
    const jb_cfg *cfg;
    jsCtx *js;
    const char *stream;
    jb_sub_store *store;
    bool republish;
    int ok, failed;
} replay_ctx;

static void strip_errors(jb_ce *ce)
{
    static const char *const ext[] = {"errordest", "errorcode", "errordata", "errorattempts"};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        jb_ce_unset(ce, ext[i]);
}

/* Finds the sink and delivery settings of the consumer the dead letter came from. */
static bool find_target(replay_ctx *r, natsMsg *m, jb_sub_consumer *out, char *why, size_t cap)
{
    char ref[600];
    snprintf(ref, sizeof(ref), "%s", hdr(m, "Jb-Subscription"));
    char *slash = strchr(ref, '/');
    if (slash == NULL) {
        snprintf(why, cap, "no Jb-Subscription header");
        return false;
    }
    *slash = '\0';
    jb_sub *s = NULL;
    jb_err err = {{0}};
    if (jb_sub_store_get(r->store, ref, slash + 1, &s, &err) != JB_OK) {
        snprintf(why, cap, "subscription %.200s/%.200s: %.400s", ref, slash + 1, err.msg);
        return false;
    }
    jb_sub_consumer_list l = {0};
    bool found = false;
    if (jb_sub_consumers(s, r->cfg, &l, &err) == JB_OK) {
        /* Sink and delivery settings belong to the subscription, so any of its
         * consumers will do when the type that failed has since been removed. */
        const char *want = hdr(m, "Jb-Consumer");
        size_t pick = 0;
        for (size_t i = 0; i < l.n; i++)
            if (strcmp(l.items[i].consumer, want) == 0)
                pick = i;
        if (l.n > 0)
            found = jb_sub_consumer_copy(out, &l.items[pick]);
        jb_sub_consumer_list_free(&l);
    }
    if (!found)
        snprintf(why, cap, "subscription %.200s/%.200s has no usable consumer", ref, slash + 1);
    jb_sub_destroy(s);
    return found;
}

static bool replay_to_sink(replay_ctx *r, natsMsg *m, jb_ce *ce, char *why, size_t cap)
{
    jb_sub_consumer c = {0};
    if (!find_target(r, m, &c, why, cap))
        return false;
    jb_err err = {{0}};
    int status =
        jb_disp_replay(r->cfg, ce, c.sink, c.delivery.content_mode == JB_SUB_CONTENT_STRUCTURED,
                       c.delivery.timeout_ms, &err);
    if (err.msg[0] != '\0')
        fprintf(stderr, "jetbridge dlq: %s\n", err.msg);
    bool ok = status >= 200 && status < 300;
    if (status >= 0) {
        char *shown = jb_redact_url(c.sink);
        snprintf(why, cap, "%s answered %d", shown ? shown : "the sink", status);
        free(shown);
    }
    jb_sub_consumer_free(&c);
    return ok;
}

/* An event subject of this stream: "<prefix>." then tokens that are not empty, not
 * wildcards, without whitespace or '$'. */
static bool republish_allowed(const jb_cfg *cfg, const char *subject)
{
    size_t plen = strlen(cfg->stream_subject_prefix);
    if (strncmp(subject, cfg->stream_subject_prefix, plen) != 0 || subject[plen] != '.')
        return false;
    const char *t = subject + plen + 1;
    for (;;) {
        size_t n = strcspn(t, ".");
        if (n == 0 || (n == 1 && (t[0] == '*' || t[0] == '>')))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)t[i] <= ' ' || t[i] == '$' || t[i] == 0x7f)
                return false;
        if (t[n] == '\0')
            return true;
        t += n + 1;
    }
}

static bool replay_republish(replay_ctx *r, uint64_t seq, natsMsg *m, jb_ce *ce, char *why,
                             size_t cap)
{
    const char *subject = hdr(m, "Jb-Subject");
    if (!republish_allowed(r->cfg, subject)) {
        /* A dead letter is data anyone who can publish to the DLQ stream can forge:
         * its subject must not reach the JetStream API or another stream. */
        char *shown = jb_escape_text(subject, strlen(subject));
        snprintf(why, cap, "refusing to republish to \"%.300s\": not an event subject under %s.",
                 shown ? shown : "", r->cfg->stream_subject_prefix);
        free(shown);
        return false;
    }
    char id[128];
    snprintf(id, sizeof(id), "dlq-replay-%s-%" PRIu64, r->stream, seq);
    natsMsg *out = NULL;
    if (subject[0] == '\0' || jb_ce_to_nats(ce, subject, id, &out) != JB_OK) {
        snprintf(why, cap, "no original subject");
        return false;
    }
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(NULL, r->js, out, NULL, &jerr);
    natsMsg_Destroy(out);
    snprintf(why, cap, "published to %s: %s", subject, natsStatus_GetText(s));
    return s == NATS_OK;
}

static bool replay_one(void *ud, uint64_t seq, natsMsg *m)
{
    replay_ctx *r = ud;
    char why[1024] = "";
    jb_ce *ce = NULL;
    jb_err err = {{0}};
    bool ok = false;
    if (jb_ce_from_nats(m, &ce, &err) != JB_OK) {
        snprintf(why, sizeof(why), "not a CloudEvent: %s", err.msg);
    } else {
        strip_errors(ce);
        ok = r->republish ? replay_republish(r, seq, m, ce, why, sizeof(why))
                          : replay_to_sink(r, m, ce, why, sizeof(why));
    }
    jb_ce_destroy(ce);
    if (ok && js_DeleteMsg(r->js, r->stream, seq, NULL, NULL) != NATS_OK)
        snprintf(why + strlen(why), sizeof(why) - strlen(why), " (not deleted from DLQ)");
    printf("%" PRIu64 ": %s: %s\n", seq, ok ? "replayed" : "failed", why);
    if (ok)
        r->ok++;
    else
        r->failed++;
    return true;
}

static int dlq_replay(const jb_cfg *cfg, jsCtx *js, const char *stream, const dlq_opts *o)
{
    replay_ctx r = {cfg, js, stream, NULL, o->republish, 0, 0};
    jb_err err = {{0}};
    if (!o->republish && jb_sub_store_open(cfg, js, &r.store, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dlq: %s\n", err.msg);
        return 1;
    }
    long matched = 0;
    int rc = visit(js, stream, o, replay_one, &r, &matched);
    jb_sub_store_close(r.store);
    if (rc == 0 && matched == 0) {
        char sel[640];
        describe_selection(o, sel, sizeof(sel));
        printf("nothing to replay: no dead letter %s\n", sel);
        return 0;
    }
    printf("replayed %d, failed %d\n", r.ok, r.failed);
    return rc != 0 || r.failed > 0 ? 1 : 0;
}

/* --------------------------------------------------------------- purge */

typedef struct purge_ctx {
    jsCtx *js;
    const char *stream;
    long deleted, failed;
} purge_ctx;

static bool purge_one(void *ud, uint64_t seq, natsMsg *m)
{
    (void)m;
    purge_ctx *p = ud;
    if (js_DeleteMsg(p->js, p->stream, seq, NULL, NULL) == NATS_OK)
        p->deleted++;
    else
        p->failed++;
    return true;
}

static int dlq_purge(jsCtx *js, const char *stream, const dlq_opts *o)
{
    if (o->all) {
        /* Everything, in one request: cheaper than one delete per message. */
        natsStatus s = js_PurgeStream(js, stream, NULL, NULL);
        if (s != NATS_OK) {
            fprintf(stderr, "jetbridge dlq: stream %s: %s\n", stream, natsStatus_GetText(s));
            return 1;
        }
        printf("purged every dead letter of stream %s\n", stream);
        return 0;
    }
    purge_ctx p = {js, stream, 0, 0};
    long matched = 0;
    int rc = visit(js, stream, o, purge_one, &p, &matched);
    if (rc != 0)
        return rc;
    if (matched == 0) {
        char sel[640];
        describe_selection(o, sel, sizeof(sel));
        printf("nothing to purge: no dead letter %s\n", sel);
        return 0;
    }
    printf("purged %ld, failed %ld\n", p.deleted, p.failed);
    return p.failed > 0 ? 1 : 0;
}

static int parse_opts(int argc, char **argv, dlq_opts *o)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        bool has = v != NULL;
        if (strcmp(a, "--subscription") == 0 && has) {
            /* NAME alone is default/NAME, as -n defaults to "default" in `sub`. */
            const char *slash = strchr(v, '/');
            if (v[0] == '\0' || slash == v || (slash != NULL && slash[1] == '\0') ||
                (slash != NULL && strchr(slash + 1, '/') != NULL) ||
                (size_t)snprintf(o->subscription, sizeof(o->subscription), "%s%s",
                                 slash != NULL ? "" : "default/", v) >= sizeof(o->subscription))
                return bad_arg("--subscription wants NAME or NAMESPACE/NAME, not", v);
            i++;
        } else if (strcmp(a, "--seq") == 0 && has) {
            if (!jb_parse_int(v, strlen(v), 1, INT64_MAX, &n))
                return bad_arg("--seq wants a sequence number, not", v);
            o->seq = (uint64_t)n;
            i++;
        } else if (strcmp(a, "--limit") == 0 && has) {
            if (!jb_parse_int(v, strlen(v), 1, DLQ_LIST_MAX, &n))
                return bad_arg("--limit wants 1..100000, not", v);
            o->limit = (long)n;
            i++;
        } else if (strcmp(a, "-o") == 0 && has) {
            if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0)
                return bad_arg("-o wants table or json, not", v);
            o->json = strcmp(v, "json") == 0;
            i++;
        } else if (strcmp(a, "--republish") == 0) {
            o->republish = true;
        } else if (strcmp(a, "--all") == 0) {
            o->all = true;
        } else {
            return bad_arg("unknown argument", a);
        }
    }
    return 0;
}

int jb_cli_dlq(const jb_cfg *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        dlq_usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    bool known = false;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        known = known || strcmp(verb, verbs[i].verb) == 0;
    if (!known)
        return bad_arg("unknown command", verb);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dlq_usage(stdout, verb);
            return 0;
        }
    }
    dlq_opts o = {.limit = DLQ_LIST_MAX};
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc;
    bool purge = strcmp(verb, "purge") == 0;
    if (o.all && (!purge || o.seq != 0 || o.subscription[0] != '\0'))
        return bad_arg("--all is for purge alone, without a selector; got", "--all");
    if (purge && !o.all && o.seq == 0 && o.subscription[0] == '\0') {
        fprintf(stderr, "jetbridge dlq: purge needs --subscription [NS/]NAME or --seq N; it "
                        "deletes every dead letter only with --all\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    if (jb_cfg_nats_connect(cfg, NULL, "jetbridge-dlq", false, &nc, &js, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dlq: %s\n", err.msg);
        return 1;
    }
    const char *stream = cfg->dlq_stream_name;
    if (purge)
        rc = dlq_purge(js, stream, &o);
    else if (strcmp(verb, "list") == 0)
        rc = dlq_list(js, stream, &o);
    else
        rc = dlq_replay(cfg, js, stream, &o);
    jb_nats_close(nc, js);
    return rc;
}
