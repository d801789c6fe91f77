/* Dead letters: the stream, the message kept there, and the thread that publishes
 * them (a JetStream publish waits for its ack, so it never runs on the loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatcher/disp_core.h"
#include "proto/jb_ce.h"

jb_status jb_disp_ensure_dlq(const jb_cfg *cfg, jsCtx *js, jb_err *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *name = cfg->dlq_stream_name;
    natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return JB_OK;
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        return jb_err_set(err, JB_ERR_NATS, "%s: stream info: %s", name, natsStatus_GetText(s));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {JB_DISP_DLQ_PREFIX ".>"};
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = cfg->stream_storage == JB_STORAGE_MEMORY ? js_MemoryStorage : js_FileStorage;
    sc.Replicas = cfg->stream_replicas;
    sc.Retention = js_LimitsPolicy;
    /* Full means the next dead letter fails to publish: its original then stays in
     * the main stream (NAKed), instead of an older dead letter vanishing. */
    sc.Discard = js_DiscardNew;
    sc.MaxBytes = cfg->stream_max_bytes > 0 ? cfg->stream_max_bytes : -1;
    sc.Duplicates = 120LL * 1000 * 1000 * 1000;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNameExistErr)
        return jb_err_set(err, JB_ERR_NATS, "%s: create: %s", name, natsStatus_GetText(s));
    jsStreamInfo_Destroy(si);
    jb_log(JB_LOG_INFO, "dispatcher", "dead-letter stream created", "stream", name, NULL);
    return JB_OK;
}

static bool copy_header(natsMsg *dst, natsMsg *src, const char *key)
{
    /* The original's deduplication id must not suppress its own dead letter. */
    if (strcasecmp(key, "Nats-Msg-Id") == 0 || strncasecmp(key, "Nats-Expected", 13) == 0)
        return true;
    const char **vals = NULL;
    int n = 0;
    if (natsMsgHeader_Values(src, key, &vals, &n) != NATS_OK)
        return true;
    bool ok = true;
    for (int i = 0; i < n && ok; i++)
        ok = natsMsgHeader_Add(dst, key, vals[i]) == NATS_OK;
    free((void *)vals);
    return ok;
}

/* The error extensions docs/contract.md section 4 names, on a decoded event. */
static bool set_error_exts(jb_ce *ce, const char *sink, int code, const char *body, size_t body_len,
                           uint64_t attempts)
{
    char num[32];
    char *b64 = NULL;
    size_t b64len = 0;
    if (body_len > JB_DHTTP_BODY_KEEP)
        body_len = JB_DHTTP_BODY_KEEP;
    if (jb_base64_encode((const uint8_t *)body, body_len, &b64, &b64len) != JB_OK)
        return false;
    bool ok = jb_ce_set_str(ce, "errordest", sink) == JB_OK;
    snprintf(num, sizeof(num), "%d", code);
    ok = ok && jb_ce_set_str(ce, "errorcode", num) == JB_OK;
    ok = ok && jb_ce_set(ce, "errordata", b64, b64len) == JB_OK;
    snprintf(num, sizeof(num), "%llu", (unsigned long long)attempts);
    ok = ok && jb_ce_set_str(ce, "errorattempts", num) == JB_OK;
    free(b64);
    return ok;
}

/* The same, as headers on a message that is not a CloudEvent (poison): its own
 * headers are copied as they are, so they cannot be respelled. */
static bool set_pct(natsMsg *m, const char *key, const char *v, size_t len)
{
    char *enc = NULL;
    size_t elen = 0;
    /* The NATS binding's form: an empty value (errordata of an empty answer)
     * would not read back from nats.c otherwise. */
    if (jb_ce_nats_value_encode(v, len, &enc, &elen) != JB_OK)
        return false;
    bool ok = natsMsgHeader_Set(m, key, enc) == NATS_OK;
    free(enc);
    return ok;
}

static bool set_error_headers(natsMsg *m, const char *sink, int code, const char *body,
                              size_t body_len, uint64_t attempts)
{
    char num[32];
    char *b64 = NULL;
    size_t b64len = 0;
    if (body_len > JB_DHTTP_BODY_KEEP)
        body_len = JB_DHTTP_BODY_KEEP;
    if (jb_base64_encode((const uint8_t *)body, body_len, &b64, &b64len) != JB_OK)
        return false;
    bool ok = set_pct(m, "ce-errordest", sink, strlen(sink));
    snprintf(num, sizeof(num), "%d", code);
    ok = ok && natsMsgHeader_Set(m, "ce-errorcode", num) == NATS_OK;
    ok = ok && set_pct(m, "ce-errordata", b64, b64len);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)attempts);
    ok = ok && natsMsgHeader_Set(m, "ce-errorattempts", num) == NATS_OK;
    free(b64);
    return ok;
}

/* Would nats.c 3.4 confuse key with a header m already has (equal hash, other
 * length: see jb_ce_to_nats)? */
static bool clashes(natsMsg *m, const char *key)
{
    const char **keys = NULL;
    int n = 0;
    if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK)
        return false; /* no headers yet */
    size_t kl = strlen(key);
    uint32_t h = jb_ce_nats_key_hash(key, kl);
    bool hit = false;
    for (int i = 0; i < n && !hit; i++) {
        size_t ol = strlen(keys[i]);
        hit = ol != kl && jb_ce_nats_key_hash(keys[i], ol) == h;
    }
    free((void *)keys);
    return hit;
}

/* Adds one of our Jb-* headers. When an event's own (respelled) key would be
 * confused with it, the case of one letter is flipped until it is not; readers
 * (jetbridge dlq) compare names without case. */
static bool add_jb_header(natsMsg *m, const char *key, const char *value)
{
    char k[32];
    size_t kl = strlen(key);
    if (kl >= sizeof(k))
        return false;
    memcpy(k, key, kl + 1);
    for (size_t i = 0; i <= kl; i++) {
        if (i > 0) {
            char c = key[i - 1];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                continue;
            memcpy(k, key, kl + 1);
            k[i - 1] = (char)(c ^ 0x20);
        }
        if (!clashes(m, k))
            return natsMsgHeader_Set(m, k, value) == NATS_OK;
    }
    return false;
}

/* The dead letter of a message that decodes as a CloudEvent: the event with the
 * error extensions, encoded by jb_ce_to_nats, which spells keys so that nats.c
 * keeps them apart. NULL when it does not decode or cannot be encoded. */
static natsMsg *dlq_from_event(natsMsg *orig, const char *subject, const char *msg_id,
                               const char *sink, int code, const char *body, size_t body_len,
                               uint64_t attempts)
{
    jb_ce *ce = NULL;
    natsMsg *m = NULL;
    jb_err err = {{0}};
    if (jb_ce_from_nats(orig, &ce, &err) != JB_OK)
        goto out;
    if (!set_error_exts(ce, sink, code, body, body_len, attempts))
        goto out;
    if (jb_ce_to_nats(ce, subject, msg_id, &m) != JB_OK)
        m = NULL;
out:
    jb_ce_destroy(ce);
    return m;
}

/* A message that is not a CloudEvent: its headers copied as they are. */
static natsMsg *dlq_from_raw(natsMsg *orig, const char *subject, const char *msg_id,
                             const char *sink, int code, const char *body, size_t body_len,
                             uint64_t attempts)
{
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subject, NULL, natsMsg_GetData(orig), natsMsg_GetDataLength(orig)) !=
        NATS_OK)
        return NULL;
    const char **keys = NULL;
    int nkeys = 0;
    bool ok = true;
    if (natsMsgHeader_Keys(orig, &keys, &nkeys) == NATS_OK) {
        for (int i = 0; i < nkeys && ok; i++)
            ok = copy_header(m, orig, keys[i]);
        free((void *)keys);
    }
    ok = ok && set_error_headers(m, sink, code, body, body_len, attempts);
    if (ok && msg_id != NULL)
        ok = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id) == NATS_OK;
    if (!ok) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

natsMsg *jb_disp_dlq_msg(natsMsg *orig, const char *consumer, const char *ns, const char *name,
                         const char *sink, int code, const char *body, size_t body_len,
                         uint64_t attempts)
{
    char subject[128], ref[600], id[128];
    const char *msg_id = NULL;
    snprintf(subject, sizeof(subject), "%s.%s", JB_DISP_DLQ_PREFIX, consumer);
    /* One dead letter per (consumer, message, delivery): a publish retried after a
     * lost ack is stored once, and a later failure after a replay is stored again. */
    const char *reply = natsMsg_GetReply(orig);
    jb_disp_meta meta;
    if (reply != NULL && jb_disp_parse_ack_subject(reply, strlen(reply), &meta)) {
        snprintf(id, sizeof(id), "%s-%llu-%llu", consumer, (unsigned long long)meta.stream_seq,
                 (unsigned long long)meta.delivered);
        msg_id = id;
    }
    natsMsg *m = dlq_from_event(orig, subject, msg_id, sink, code, body, body_len, attempts);
    if (m == NULL)
        m = dlq_from_raw(orig, subject, msg_id, sink, code, body, body_len, attempts);
    if (m == NULL)
        return NULL;
    snprintf(ref, sizeof(ref), "%s/%s", ns, name);
    bool ok = add_jb_header(m, "Jb-Subscription", ref);
    ok = ok && add_jb_header(m, "Jb-Subject", natsMsg_GetSubject(orig));
    ok = ok && add_jb_header(m, "Jb-Consumer", consumer);
    if (!ok) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

static bool publish_one(jb_disp *d, natsMsg *m)
{
    jsPubOptions o;
    jsPubOptions_Init(&o);
    o.MaxWait = JB_DISP_DLQ_TIMEOUT_MS;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    natsStatus s = js_PublishMsg(&pa, d->js, m, &o, &jerr);
    if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr) {
        /* The stream went away (server restarted without its store): recreate. */
        jb_err err = {{0}};
        if (jb_disp_ensure_dlq(d->cfg, d->js, &err) == JB_OK)
            s = js_PublishMsg(&pa, d->js, m, &o, &jerr);
    }
    jsPubAck_Destroy(pa);
    if (s != NATS_OK)
        jb_log(JB_LOG_WARN, "dispatcher", "dead-letter publish failed", "subject",
               natsMsg_GetSubject(m), "error", natsStatus_GetText(s), NULL);
    return s == NATS_OK;
}

void *jb_disp_dlq_main(void *arg)
{
    jb_disp *d = arg;
    pthread_mutex_lock(&d->mu);
    while (true) {
        while (d->dlq_head == NULL && !d->dlq_stop)
            pthread_cond_wait(&d->dlq_cv, &d->mu);
        if (d->dlq_stop)
            break;
        dlqjob *j = d->dlq_head;
        d->dlq_head = j->next;
        if (d->dlq_head == NULL)
            d->dlq_tail = NULL;
        pthread_mutex_unlock(&d->mu);
        bool ok = publish_one(d, j->msg);
        natsMsg_Destroy(j->msg);
        qitem *it = calloc(1, sizeof(*it));
        if (it != NULL) {
            it->kind = Q_DLQ_DONE;
            it->f = j->f;
            it->ok = ok;
            jb_disp_post(d, it);
        }
        free(j);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}
