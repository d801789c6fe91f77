/*
 * NATS protocol binding. Binary mode is what jetbridge stores in JetStream: the
 * payload is the data untouched and every attribute is a lower-case ce-<name>
 * header with a percent-encoded value (datacontenttype too, as ce-datacontenttype).
 * Structured mode carries the JSON format with Content-Type
 * application/cloudevents+json. nats.c header keys are case-sensitive, so the
 * decoder walks every key and compares without case.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "proto/ce_internal.h"
#include "proto/jb_ce.h"

static jb_status from_nats_status(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return JB_OK;
    case NATS_NO_MEMORY:
        return JB_ERR_NOMEM;
    case NATS_INVALID_ARG:
        return JB_ERR_INVALID;
    default:
        return JB_ERR_NATS;
    }
}

size_t jb_ce_nats_value_into(const char *in, size_t len, char *out)
{
    /* nats.c 3.4 cannot read back an empty header value: its parser skips the
     * blanks after the colon across the line end and takes the next line as the
     * value. The empty string is written as an empty RFC 7230 quoted-string, which
     * the percent-encoding never produces ('"' is always %22) and every decoder of
     * ours reads as "". */
    if (len == 0) {
        memcpy(out, "\"\"", 3);
        return 2;
    }
    return jb_ce_pct_encode_into(in, len, out);
}

jb_status jb_ce_nats_value_encode(const char *in, size_t len, char **out, size_t *out_len)
{
    char *o = malloc(3 * len + 3);
    if (o == NULL)
        return JB_ERR_NOMEM;
    size_t n = jb_ce_nats_value_into(in, len, o);
    *out = o;
    if (out_len != NULL)
        *out_len = n;
    return JB_OK;
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/*
 * nats.c 3.4's header map hashes keys with a function that never reads the
 * "2 bytes left" part of a key (it handles 8, 4 and 1 byte tails only), so
 * "ce-id" and "ce-id31" hash alike; its header code then treats two such keys
 * of different lengths as one, losing a value when the message is built
 * (shorter key first) or when it is received (longer key first on the wire). Since no order is
 * safe, the encoder makes the keys hash apart: a key that would be confused with an earlier
 * one is written with the case of one or two letters flipped. Decoders compare header names
 * without case, ours included. jb_ce_nats_key_hash mirrors natsStrHash_Hash byte for byte
 * (little-endian reads).
 */
uint32_t jb_ce_nats_key_hash(const char *data, size_t len)
{
    size_t i = 0, dlen = len;
    uint32_t h32 = 2166136261u;
    uint64_t k1, k2;
    uint32_t k3;
    for (; dlen >= 16; dlen -= 16) {
        memcpy(&k1, data + i, 8);
        memcpy(&k2, data + i + 4, 8);
        h32 = (uint32_t)(((uint64_t)h32 ^ ((k1 << 5 | k1 >> 27) ^ k2)) * 709607u);
        i += 16;
    }
    if ((dlen & 8) != 0) {
        memcpy(&k1, data + i, 8);
        h32 = (uint32_t)(((uint64_t)h32 ^ k1) * 709607u);
        i += 8;
    }
    if ((dlen & 4) != 0) {
        memcpy(&k3, data + i, 4);
        h32 = (uint32_t)(((uint64_t)h32 ^ (uint64_t)k3) * 709607u);
        i += 4;
    }
    if ((dlen & 1) != 0) {
        /* natsStrHash_Hash mixes the last byte in sign-extended (a signed char). */
        uint32_t last = (uint32_t)(int32_t)(signed char)data[i];
        h32 = (h32 ^ last) * 709607u;
    }
    return h32 ^ (h32 >> 16);
}

/* A key as nats.c's header map sees it. Two keys are confused when their hashes
 * are equal and their lengths differ (equal lengths are told apart). */
typedef struct nats_key {
    uint32_t hash;
    size_t len;
} nats_key;

static bool confused(const nats_key *a, const nats_key *b)
{
    return a->hash == b->hash && a->len != b->len;
}

/* Is key (with its length) free of confusion with used[0..n)? */
static bool try_key(const char *key, size_t kl, const nats_key *used, size_t n, nats_key *picked)
{
    nats_key k = {jb_ce_nats_key_hash(key, kl), kl};
    for (size_t j = 0; j < n; j++) {
        if (confused(&used[j], &k))
            return false;
    }
    *picked = k;
    return true;
}

/* Flips the case of key[i] when it is a letter. */
static bool flip(char *key, size_t i)
{
    char c = key[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return false;
    key[i] = (char)(c ^ 0x20);
    return true;
}

/* Writes "ce-<name>" into key, lower-case when nats.c will not confuse it with
 * any of used[0..n), else with the case of one or two letters flipped (the
 * hash ignores some bytes and ORs others together, so which letter helps
 * depends on the key: search). False when no spelling works. */
static bool pick_key(const char *name, size_t nl, const nats_key *used, size_t n, char *key,
                     nats_key *picked)
{
    size_t kl = nl + 3;
    memcpy(key, "ce-", 3);
    memcpy(key + 3, name, nl + 1);
    if (try_key(key, kl, used, n, picked))
        return true;
    for (size_t i = kl; i-- > 0;) {
        if (!flip(key, i))
            continue;
        if (try_key(key, kl, used, n, picked))
            return true;
        for (size_t j = i; j-- > 0;) {
            if (!flip(key, j))
                continue;
            if (try_key(key, kl, used, n, picked))
                return true;
            flip(key, j);
        }
        flip(key, i);
    }
    return false;
}

/* Adds every attribute as a ce- header (values percent-encoded) and the message
 * id, with keys that nats.c keeps apart; then checks that every key landed. */
static jb_status put_headers(const jb_ce *ce, natsMsg *m, const char *msg_id)
{
    char key[3 + JB_CE_MAX_NAME + 1];
    char value[3 * JB_CE_MAX_ATTR_VALUE + 3];
    nats_key used[JB_CE_MAX_ATTRS + 1];
    size_t n = jb_ce_attr_count(ce), nused = 0;
    if (msg_id != NULL)
        used[nused++] = (nats_key){jb_ce_nats_key_hash("Nats-Msg-Id", 11), 11};
    for (size_t i = 0; i < n; i++) {
        const char *an, *av;
        size_t al;
        jb_ce_attr_at(ce, i, &an, &av, &al);
        size_t nl = strlen(an);
        /* Only names that are safe as header names reach the wire. */
        if (!jb_ce_name_valid(an, nl))
            return JB_ERR_INVALID;
        if (!pick_key(an, nl, used, nused, key, &used[nused]))
            return JB_ERR_UNSUPPORTED;
        nused++;
        jb_ce_nats_value_into(av, al, value);
        natsStatus s = natsMsgHeader_Set(m, key, value);
        if (s != NATS_OK)
            return from_nats_status(s);
    }
    if (msg_id != NULL) {
        natsStatus s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
        if (s != NATS_OK)
            return from_nats_status(s);
    }
    /* Safety net should another nats.c build hash differently: a lost key shows
     * as a smaller key count. */
    const char **keys = NULL;
    int nkeys = 0;
    natsStatus s = natsMsgHeader_Keys(m, &keys, &nkeys);
    free((void *)keys);
    if (s != NATS_OK || (size_t)nkeys != nused)
        return s == NATS_OK ? JB_ERR_INTERNAL : from_nats_status(s);
    return JB_OK;
}

jb_status jb_ce_to_nats(const jb_ce *ce, const char *subject, const char *msg_id, natsMsg **out)
{
    return jb_ce_to_nats_reply(ce, subject, NULL, msg_id, out);
}

jb_status jb_ce_to_nats_reply(const jb_ce *ce, const char *subject, const char *reply,
                              const char *msg_id, natsMsg **out)
{
    natsMsg *m = NULL;
    size_t len;
    const uint8_t *data = jb_ce_data(ce, &len);
    if (subject == NULL || subject[0] == '\0' || len > INT_MAX ||
        (msg_id != NULL && has_crlf(msg_id)))
        return JB_ERR_INVALID;
    jb_status st =
        from_nats_status(natsMsg_Create(&m, subject, reply, (const char *)data, (int)len));
    if (st != JB_OK)
        return st;
    st = put_headers(ce, m, msg_id);
    if (st != JB_OK) {
        natsMsg_Destroy(m);
        return st;
    }
    *out = m;
    return JB_OK;
}

jb_status jb_ce_to_nats_structured(const jb_ce *ce, const char *subject, natsMsg **out)
{
    natsMsg *m = NULL;
    char *json = NULL;
    size_t len;
    if (subject == NULL || subject[0] == '\0')
        return JB_ERR_INVALID;
    jb_status st = jb_ce_to_json(ce, &json, &len);
    if (st != JB_OK)
        return st;
    if (len > INT_MAX) {
        st = JB_ERR_TOO_LARGE;
        goto done;
    }
    st = from_nats_status(natsMsg_Create(&m, subject, NULL, json, (int)len));
    if (st == JB_OK)
        st = from_nats_status(natsMsgHeader_Set(m, "Content-Type", "application/cloudevents+json"));
done:
    free(json);
    if (st != JB_OK) {
        natsMsg_Destroy(m);
        return st;
    }
    *out = m;
    return JB_OK;
}

/* The single value of header key; a repeated header is an error. */
static jb_status one_value(natsMsg *msg, const char *key, const char **value, jb_err *err)
{
    const char **values = NULL;
    int count = 0;
    natsStatus s = natsMsgHeader_Values(msg, key, &values, &count);
    if (s != NATS_OK)
        return jb_err_set(err, from_nats_status(s), "header %.64s: %s", key, natsStatus_GetText(s));
    jb_status st = JB_OK;
    if (count != 1)
        st = jb_err_set(err, JB_ERR_INVALID, "header %.64s: repeated", key);
    else
        *value = values[0] != NULL ? values[0] : "";
    free((void *)values);
    return st;
}

/* The keys the decoder reads (ce-* and Content-Type, in any case), in the order
 * nats.c gave them, found in one pass: per event, every key used to be measured and
 * compared without case three times. */
#define MATTER_MAX (JB_CE_MAX_ATTRS + 2)
typedef struct matter {
    const char *k[MATTER_MAX];
    size_t len[MATTER_MAX];
    bool ce[MATTER_MAX]; /* ce-*, else Content-Type */
    size_t n;
} matter;

/* borrow: the event's data points into msg (jb_ce_borrow_data) instead of a copy. */
static jb_status decode_binary(natsMsg *msg, const matter *m, const char *ct, bool borrow,
                               jb_ce **out, jb_err *err)
{
    jb_status st = JB_OK;
    jb_ce *ce = jb_ce_create();
    if (ce == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n; i++) {
        if (!m->ce[i])
            continue;
        const char *v = "";
        st = one_value(msg, m->k[i], &v, err);
        if (st != JB_OK)
            goto done;
        st = jb_ce_add_header_attr(ce, m->k[i] + 3, m->len[i] - 3, v, strlen(v), err);
        if (st != JB_OK)
            goto done;
    }
    /* A plain Content-Type stands in for a missing ce-datacontenttype. */
    if (ct != NULL && jb_ce_get(ce, "datacontenttype", NULL) == NULL) {
        st = jb_ce_set_content_type(ce, ct, strlen(ct), err);
        if (st != JB_OK)
            goto done;
    }
    int dl = natsMsg_GetDataLength(msg);
    if (dl > 0) {
        size_t ctl;
        const char *ctv = jb_ce_get(ce, "datacontenttype", &ctl);
        jb_ce_data_kind kind =
            ctv != NULL && jb_ce_is_json_media(ctv, ctl) ? JB_CE_DATA_JSON : JB_CE_DATA_BINARY;
        if (borrow) {
            jb_ce_borrow_data(ce, kind, natsMsg_GetData(msg), (size_t)dl);
        } else {
            st = jb_ce_set_data(ce, kind, natsMsg_GetData(msg), (size_t)dl);
            if (st != JB_OK)
                jb_err_set(err, st, "out of memory");
        }
    }
done:
    if (st != JB_OK) {
        jb_ce_destroy(ce);
        return st;
    }
    *out = ce;
    return JB_OK;
}

/* Collects the keys that matter into m. nats.c 3.4 folds two keys with equal hashes
 * into one when it parses a received message (see jb_ce_nats_key_hash), so their
 * values cannot be trusted: an error rather than a wrong event. jb_ce_to_nats never
 * writes such keys. */
/* "ce-" without case, checked inline: x | 0x20 is 'c' only for 'C' and 'c' (and
 * 'e' only for 'E' and 'e'). Every key of every event goes through it. */
static bool ce_prefix(const char *k, size_t kl)
{
    return kl > 3 && (k[0] | 0x20) == 'c' && (k[1] | 0x20) == 'e' && k[2] == '-';
}

static jb_status check_folded(const char **keys, int nkeys, matter *m, jb_err *err)
{
    nats_key h[MATTER_MAX];
    m->n = 0;
    for (int i = 0; i < nkeys; i++) {
        size_t kl = strlen(keys[i]);
        bool ce = ce_prefix(keys[i], kl);
        if (!ce && (kl != 12 || !jb_ce_ieq(keys[i], kl, "content-type")))
            continue;
        size_t n = m->n;
        if (n == MATTER_MAX)
            return jb_err_set(err, JB_ERR_INVALID, "too many attributes (at most %d)",
                              JB_CE_MAX_ATTRS);
        m->k[n] = keys[i];
        m->len[n] = kl;
        m->ce[n] = ce;
        h[n] = (nats_key){jb_ce_nats_key_hash(keys[i], kl), kl};
        for (size_t j = 0; j < n; j++) {
            if (!confused(&h[j], &h[n]))
                continue;
            bool lt = strcmp(m->k[j], m->k[n]) < 0;
            return jb_err_set(err, JB_ERR_INVALID,
                              "headers %.70s and %.70s: nats.c cannot keep these keys apart",
                              lt ? m->k[j] : m->k[n], lt ? m->k[n] : m->k[j]);
        }
        m->n++;
    }
    return JB_OK;
}

static jb_status from_nats(natsMsg *msg, bool borrow, jb_ce **out, jb_err *err)
{
    const char **keys = NULL;
    int nkeys = 0;
    const char *ct = NULL;
    natsStatus s = natsMsgHeader_Keys(msg, &keys, &nkeys);
    if (s == NATS_NOT_FOUND) {
        keys = NULL;
        nkeys = 0;
    } else if (s != NATS_OK) {
        return jb_err_set(err, from_nats_status(s), "headers: %s", natsStatus_GetText(s));
    }
    matter m;
    jb_status st = check_folded(keys, nkeys, &m, err);
    if (st != JB_OK)
        goto done;
    for (size_t i = 0; i < m.n; i++) {
        if (m.ce[i])
            continue;
        if (ct != NULL) {
            st = jb_err_set(err, JB_ERR_INVALID, "header Content-Type: repeated");
            goto done;
        }
        st = one_value(msg, m.k[i], &ct, err);
        if (st != JB_OK)
            goto done;
    }
    jb_ce_http_mode mode = jb_ce_http_detect(ct, ct != NULL ? strlen(ct) : 0);
    const char *data = natsMsg_GetData(msg);
    size_t dl = (size_t)natsMsg_GetDataLength(msg);
    switch (mode) {
    case JB_CE_HTTP_BINARY:
        st = decode_binary(msg, &m, ct, borrow, out, err);
        break;
    case JB_CE_HTTP_STRUCTURED_JSON:
        st = jb_ce_from_json(data != NULL ? data : "", dl, out, err);
        break;
    case JB_CE_HTTP_STRUCTURED_PROTOBUF:
        st = jb_ce_from_protobuf((const uint8_t *)data, dl, out, err);
        break;
    case JB_CE_HTTP_BATCH_JSON:
    case JB_CE_HTTP_BATCH_PROTOBUF:
    case JB_CE_HTTP_UNSUPPORTED:
        st =
            jb_err_set(err, JB_ERR_UNSUPPORTED, "content type %.100s: not supported over NATS", ct);
        break;
    }
done:
    free((void *)keys);
    return st;
}

jb_status jb_ce_from_nats(natsMsg *msg, jb_ce **out, jb_err *err)
{
    return from_nats(msg, false, out, err);
}

jb_status jb_ce_from_nats_borrow(natsMsg *msg, jb_ce **out, jb_err *err)
{
    return from_nats(msg, true, out, err);
}
