/*
 * Protobuf event format (CloudEvents protobuf-format 1.0) through protobuf-c.
 * Every attribute value kind decodes to its canonical string (Boolean
 * "true"/"false", Integer decimal, Binary base64, Timestamp RFC 3339 UTC). On
 * encoding, id/source/specversion/type go to their fields, time to ce_timestamp,
 * dataschema to ce_uri, every other attribute to ce_string: the canonical string
 * is what the model keeps, so that is what travels.
 */
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "proto/ce_internal.h"
#include "proto/cloudevents.pb-c.h"
#include "proto/jb_ce.h"

typedef Io__Cloudevents__V1__CloudEvent pb_event;
typedef Io__Cloudevents__V1__CloudEvent__AttributesEntry pb_entry;
typedef Io__Cloudevents__V1__CloudEvent__CloudEventAttributeValue pb_value;
typedef Io__Cloudevents__V1__Timestamp pb_ts;

#define V(x) IO__CLOUDEVENTS__V1__CLOUD_EVENT__CLOUD_EVENT_ATTRIBUTE_VALUE__ATTR_##x
#define D(x) IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_##x

/* ---------------------------------------------------------------- decoding */

static jb_status decode_value(jb_ce *ce, const char *name, const pb_value *v, jb_err *err)
{
    char buf[40];
    size_t n;
    if (v == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "%s: attribute value not set", name);
    switch (v->attr_case) {
    case V(CE_BOOLEAN):
        return jb_ce_set_decoded(ce, name, v->ce_boolean ? "true" : "false", v->ce_boolean ? 4 : 5,
                                 err);
    case V(CE_INTEGER): {
        n = jb_dec_i64(buf, v->ce_integer);
        return jb_ce_set_decoded(ce, name, buf, n, err);
    }
    case V(CE_STRING):
        return jb_ce_set_decoded(ce, name, v->ce_string, strlen(v->ce_string), err);
    case V(CE_URI):
        return jb_ce_set_decoded(ce, name, v->ce_uri, strlen(v->ce_uri), err);
    case V(CE_URI_REF):
        return jb_ce_set_decoded(ce, name, v->ce_uri_ref, strlen(v->ce_uri_ref), err);
    case V(CE_BYTES): {
        if (v->ce_bytes.len > JB_CE_MAX_ATTR_VALUE)
            return jb_err_set(err, JB_ERR_INVALID, "%s: value longer than %d bytes", name,
                              JB_CE_MAX_ATTR_VALUE);
        char *enc;
        size_t el;
        if (jb_base64_encode(v->ce_bytes.data, v->ce_bytes.len, &enc, &el) != JB_OK)
            return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        jb_status st = jb_ce_set_decoded(ce, name, enc, el, err);
        free(enc);
        return st;
    }
    case V(CE_TIMESTAMP):
        n = v->ce_timestamp == NULL
                ? 0
                : jb_rfc3339_format(v->ce_timestamp->seconds, v->ce_timestamp->nanos, buf);
        if (n == 0)
            return jb_err_set(err, JB_ERR_INVALID, "%s: timestamp out of range", name);
        return jb_ce_set_decoded(ce, name, buf, n, err);
    case V(_NOT_SET):
    default:
        return jb_err_set(err, JB_ERR_INVALID, "%s: attribute value not set", name);
    }
}

static jb_status decode_data(jb_ce *ce, const pb_event *pe, jb_err *err)
{
    jb_status st = JB_OK;
    size_t ctl;
    const char *ct;
    switch (pe->data_case) {
    case D(BINARY_DATA):
        st = jb_ce_set_data(ce, JB_CE_DATA_BINARY, pe->binary_data.data, pe->binary_data.len);
        break;
    case D(TEXT_DATA):
        ct = jb_ce_get(ce, "datacontenttype", &ctl);
        st = jb_ce_set_data(
            ce, ct != NULL && jb_ce_is_json_media(ct, ctl) ? JB_CE_DATA_JSON : JB_CE_DATA_TEXT,
            pe->text_data, strlen(pe->text_data));
        break;
    case D(PROTO_DATA):
        /* The Any's value is the serialized message; its type_url is dropped. */
        if (pe->proto_data != NULL)
            st = jb_ce_set_data(ce, JB_CE_DATA_BINARY, pe->proto_data->value.data,
                                pe->proto_data->value.len);
        break;
    case IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA__NOT_SET:
    default:
        break;
    }
    if (st != JB_OK)
        return jb_err_set(err, st, "out of memory");
    return JB_OK;
}

static jb_status decode_event(const pb_event *pe, jb_ce **out, jb_err *err)
{
    static const char *const names[4] = {"id", "source", "specversion", "type"};
    const char *fields[4] = {pe->id, pe->source, pe->spec_version, pe->type};
    jb_status st = JB_OK;
    jb_ce *ce = jb_ce_create();
    if (ce == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < 4; i++) {
        /* proto3: an empty string is an unset field. */
        if (fields[i] != NULL && fields[i][0] != '\0') {
            st = jb_ce_set_decoded(ce, names[i], fields[i], strlen(fields[i]), err);
            if (st != JB_OK)
                goto done;
        }
    }
    for (size_t i = 0; i < pe->n_attributes; i++) {
        const pb_entry *e = pe->attributes[i];
        st = decode_value(ce, e->key != NULL ? e->key : "", e->value, err);
        if (st != JB_OK)
            goto done;
    }
    st = decode_data(ce, pe, err);
done:
    if (st != JB_OK) {
        jb_ce_destroy(ce);
        return st;
    }
    *out = ce;
    return JB_OK;
}

/* ------------------------------------------------------- U+0000 in strings */

/* protobuf-c hands string fields over NUL-terminated, without their length: a
 * NUL inside one would silently cut the value. So the wire bytes of every string
 * field are checked first (the message has already unpacked, so it is well
 * formed). */

/* One field of a message: its number, and for a length-delimited one the bytes. */
typedef struct pb_field {
    uint64_t num;
    const uint8_t *val;
    size_t len;
    bool delimited;
} pb_field;

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads the next field at *p; false at the end (or on bytes it cannot skip). */
static bool next_field(const uint8_t **p, const uint8_t *end, pb_field *f)
{
    uint64_t tag, n;
    if (*p >= end || !read_varint(p, end, &tag))
        return false;
    *f = (pb_field){.num = tag >> 3};
    switch (tag & 7) {
    case 0:
        return read_varint(p, end, &n);
    case 1:
        n = 8;
        break;
    case 5:
        n = 4;
        break;
    case 2:
        if (!read_varint(p, end, &n) || n > (uint64_t)(end - *p))
            return false;
        f->val = *p;
        f->len = (size_t)n;
        f->delimited = true;
        break;
    default:
        return false;
    }
    if (n > (uint64_t)(end - *p))
        return false;
    *p += n;
    return true;
}

static bool has_nul(const pb_field *f)
{
    return f->delimited && memchr(f->val, 0, f->len) != NULL;
}

/* A map entry (key = 1, value = 2 with strings ce_string 3, ce_uri 5,
 * ce_uri_ref 6): the attribute's name when its key or string value holds a NUL. */
static jb_status check_entry(const pb_field *entry, jb_err *err)
{
    const uint8_t *p = entry->val, *end = p + entry->len;
    pb_field f, key = {0}, value = {0};
    while (next_field(&p, end, &f)) {
        if (f.num == 1)
            key = f;
        else if (f.num == 2)
            value = f;
    }
    if (has_nul(&key))
        return jb_err_set(err, JB_ERR_INVALID, "attribute names MUST NOT contain U+0000");
    p = value.val;
    end = p != NULL ? p + value.len : p;
    while (p != NULL && next_field(&p, end, &f)) {
        if ((f.num == 3 || f.num == 5 || f.num == 6) && has_nul(&f))
            return jb_err_set(err, JB_ERR_INVALID, "%.*s: MUST NOT contain U+0000",
                              (int)(key.len > 64 ? 64 : key.len), (const char *)key.val);
    }
    return JB_OK;
}

/* One CloudEvent message: id 1, source 2, spec_version 3, type 4, attributes 5,
 * text_data 7. */
static jb_status check_event_nul(const uint8_t *buf, size_t len, jb_err *err)
{
    static const char *const names[] = {"", "id", "source", "specversion", "type"};
    const uint8_t *p = buf, *end = buf + len;
    pb_field f;
    while (next_field(&p, end, &f)) {
        if (f.num >= 1 && f.num <= 4 && has_nul(&f))
            return jb_err_set(err, JB_ERR_INVALID, "%s: MUST NOT contain U+0000", names[f.num]);
        if (f.num == 7 && has_nul(&f))
            return jb_err_set(err, JB_ERR_INVALID, "data: MUST NOT contain U+0000");
        if (f.num == 5 && f.delimited) {
            jb_status st = check_entry(&f, err);
            if (st != JB_OK)
                return st;
        }
    }
    return JB_OK;
}

jb_status jb_ce_from_protobuf(const uint8_t *buf, size_t len, jb_ce **out, jb_err *err)
{
    pb_event *pe = io__cloudevents__v1__cloud_event__unpack(NULL, len, buf);
    if (pe == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "invalid protobuf CloudEvent");
    jb_status st = check_event_nul(buf, len, err);
    if (st == JB_OK)
        st = decode_event(pe, out, err);
    io__cloudevents__v1__cloud_event__free_unpacked(pe, NULL);
    return st;
}

jb_status jb_ce_batch_from_protobuf(const uint8_t *buf, size_t len, jb_ce ***out, size_t *n,
                                    jb_err *err)
{
    jb_status st = JB_OK;
    jb_ce **ces = NULL;
    size_t count = 0;
    Io__Cloudevents__V1__CloudEventBatch *pb =
        io__cloudevents__v1__cloud_event_batch__unpack(NULL, len, buf);
    if (pb == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "invalid protobuf CloudEventBatch");
    if (pb->n_events > JB_CE_MAX_BATCH) {
        st = jb_err_set(err, JB_ERR_INVALID, "batch: more than %d events", JB_CE_MAX_BATCH);
        goto done;
    }
    if (pb->n_events > 0) {
        ces = calloc(pb->n_events, sizeof(*ces));
        if (ces == NULL) {
            st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    /* The batch's events are its field 1, in order. */
    const uint8_t *p = buf, *end = buf + len;
    pb_field f;
    for (size_t i = 0; next_field(&p, end, &f);) {
        if (f.num != 1 || !f.delimited)
            continue;
        jb_err sub;
        if (check_event_nul(f.val, f.len, &sub) != JB_OK) {
            st = jb_err_set(err, JB_ERR_INVALID, "batch[%zu]: %s", i, sub.msg);
            goto done;
        }
        i++;
    }
    for (; count < pb->n_events; count++) {
        jb_err sub;
        st = decode_event(pb->events[count], &ces[count], &sub);
        if (st != JB_OK) {
            jb_err_set(err, st, "batch[%zu]: %s", count, sub.msg);
            goto done;
        }
    }
done:
    io__cloudevents__v1__cloud_event_batch__free_unpacked(pb, NULL);
    if (st != JB_OK) {
        jb_ce_batch_free(ces, count);
        return st;
    }
    *out = ces;
    *n = count;
    return JB_OK;
}

/* ---------------------------------------------------------------- encoding */

/* The protobuf-c structures for one event point into the model's strings; this
 * block owns the arrays they need. */
typedef struct pb_build {
    pb_event ev;
    pb_entry *entries;
    pb_value *values;
    pb_ts *ts;
    pb_entry **ptrs;
    char *text; /* NUL-terminated copy of text data */
} pb_build;

static void build_free(pb_build *b)
{
    free(b->entries);
    free(b->text);
}

static bool is_field(const char *name, size_t len, const char *v, pb_event *ev)
{
    /* An empty required value goes to the map, because "" is an unset field. */
    if (len == 0)
        return false;
    if (strcmp(name, "id") == 0)
        ev->id = (char *)v;
    else if (strcmp(name, "source") == 0)
        ev->source = (char *)v;
    else if (strcmp(name, "specversion") == 0)
        ev->spec_version = (char *)v;
    else if (strcmp(name, "type") == 0)
        ev->type = (char *)v;
    else
        return false;
    return true;
}

static void build_value(pb_value *pv, pb_ts *ts, const char *name, const char *v, size_t len)
{
    int64_t secs;
    int32_t nanos;
    io__cloudevents__v1__cloud_event__cloud_event_attribute_value__init(pv);
    io__cloudevents__v1__timestamp__init(ts);
    /* A time outside years 0001..9999 (reachable through an offset) is not a
     * valid Timestamp: it travels as a string instead. */
    if (strcmp(name, "time") == 0 && jb_rfc3339_parse(v, len, &secs, &nanos) &&
        secs >= -62135596800LL && secs <= 253402300799LL) {
        ts->seconds = secs;
        ts->nanos = nanos;
        pv->attr_case = V(CE_TIMESTAMP);
        pv->ce_timestamp = ts;
    } else if (strcmp(name, "dataschema") == 0) {
        pv->attr_case = V(CE_URI);
        pv->ce_uri = (char *)v;
    } else {
        pv->attr_case = V(CE_STRING);
        pv->ce_string = (char *)v;
    }
}

static jb_status build_data(pb_build *b, const jb_ce *ce)
{
    size_t n;
    const uint8_t *d = jb_ce_data(ce, &n);
    jb_ce_data_kind kind = jb_ce_data_kind_of(ce);
    if (kind == JB_CE_DATA_NONE && n == 0)
        return JB_OK;
    /* Text and JSON go to text_data (a proto3 string: UTF-8, and protobuf-c cannot
     * carry a NUL in it); anything else to binary_data. */
    if ((kind == JB_CE_DATA_TEXT || kind == JB_CE_DATA_JSON) &&
        (n == 0 || memchr(d, '\0', n) == NULL) && jb_ce_utf8_valid(d, n)) {
        b->text = malloc(n + 1);
        if (b->text == NULL)
            return JB_ERR_NOMEM;
        if (n > 0)
            memcpy(b->text, d, n);
        b->text[n] = '\0';
        b->ev.data_case = D(TEXT_DATA);
        b->ev.text_data = b->text;
        return JB_OK;
    }
    b->ev.data_case = D(BINARY_DATA);
    b->ev.binary_data.data = (uint8_t *)d;
    b->ev.binary_data.len = n;
    return JB_OK;
}

static jb_status build(pb_build *b, const jb_ce *ce)
{
    size_t n = jb_ce_attr_count(ce);
    memset(b, 0, sizeof(*b));
    io__cloudevents__v1__cloud_event__init(&b->ev);
    /* One block for the four arrays. */
    size_t each = sizeof(pb_entry) + sizeof(pb_value) + sizeof(pb_ts) + sizeof(pb_entry *);
    char *block = malloc(n > 0 ? n * each : 1);
    if (block == NULL)
        return JB_ERR_NOMEM;
    b->entries = (pb_entry *)block;
    b->values = (pb_value *)(block + n * sizeof(pb_entry));
    b->ts = (pb_ts *)((char *)b->values + n * sizeof(pb_value));
    b->ptrs = (pb_entry **)((char *)b->ts + n * sizeof(pb_ts));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *v;
        size_t len;
        jb_ce_attr_at(ce, i, &name, &v, &len);
        /* protobuf-c strings end at the first NUL: such a value cannot travel. */
        if (memchr(v, '\0', len) != NULL)
            return JB_ERR_INVALID;
        if (is_field(name, len, v, &b->ev))
            continue;
        io__cloudevents__v1__cloud_event__attributes_entry__init(&b->entries[m]);
        b->entries[m].key = (char *)name;
        build_value(&b->values[m], &b->ts[m], name, v, len);
        b->entries[m].value = &b->values[m];
        b->ptrs[m] = &b->entries[m];
        m++;
    }
    b->ev.n_attributes = m;
    b->ev.attributes = m > 0 ? b->ptrs : NULL;
    return build_data(b, ce);
}

jb_status jb_ce_to_protobuf(const jb_ce *ce, uint8_t **out, size_t *len)
{
    pb_build b;
    jb_status st = build(&b, ce);
    if (st == JB_OK) {
        size_t n = io__cloudevents__v1__cloud_event__get_packed_size(&b.ev);
        uint8_t *buf = malloc(n > 0 ? n : 1);
        if (buf == NULL) {
            st = JB_ERR_NOMEM;
        } else {
            io__cloudevents__v1__cloud_event__pack(&b.ev, buf);
            *out = buf;
            *len = n;
        }
    }
    build_free(&b);
    return st;
}

jb_status jb_ce_batch_to_protobuf(jb_ce *const *ces, size_t n, uint8_t **out, size_t *len)
{
    jb_status st = JB_OK;
    size_t built = 0;
    Io__Cloudevents__V1__CloudEventBatch batch = IO__CLOUDEVENTS__V1__CLOUD_EVENT_BATCH__INIT;
    pb_build *bs = calloc(n > 0 ? n : 1, sizeof(*bs));
    pb_event **evs = calloc(n > 0 ? n : 1, sizeof(*evs));
    if (bs == NULL || evs == NULL) {
        st = JB_ERR_NOMEM;
        goto done;
    }
    for (; built < n; built++) {
        st = build(&bs[built], ces[built]);
        if (st != JB_OK) {
            built++; /* its partial arrays are freed too */
            goto done;
        }
        evs[built] = &bs[built].ev;
    }
    batch.n_events = n;
    batch.events = n > 0 ? evs : NULL;
    size_t sz = io__cloudevents__v1__cloud_event_batch__get_packed_size(&batch);
    uint8_t *buf = malloc(sz > 0 ? sz : 1);
    if (buf == NULL) {
        st = JB_ERR_NOMEM;
        goto done;
    }
    io__cloudevents__v1__cloud_event_batch__pack(&batch, buf);
    *out = buf;
    *len = sz;
done:
    for (size_t i = 0; bs != NULL && i < built; i++)
        build_free(&bs[i]);
    free(bs);
    free(evs);
    return st;
}
