/*
 * proto/: the CloudEvents core. One event model (jb_ce) and codecs to and from it:
 * JSON format (structured and batch), HTTP binding (binary, structured, batch, mode
 * detection), protobuf format (single and batch), NATS binding (binary and
 * structured), and validation against CloudEvents 1.0.
 *
 * Attribute values are kept in their canonical string form (CloudEvents type
 * system: Integer as decimal, Boolean "true"/"false", Binary base64, Timestamp
 * RFC 3339), so an event survives every codec pair unchanged. Depends on no other
 * jetbridge module (only common/jb_status.h).
 */
#ifndef JB_CE_H
#define JB_CE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

typedef struct __natsMsg natsMsg;

/* Limits: enforced by every decoder; exceeding one is JB_ERR_INVALID with a message. */
#define JB_CE_MAX_ATTRS      64   /* attributes + extensions per event */
#define JB_CE_MAX_ATTR_VALUE 4096 /* bytes of one attribute value */
#define JB_CE_MAX_BATCH      1000 /* events in one batch */

typedef struct jb_ce jb_ce;

/* What the data bytes are, which decides how structured JSON writes them. */
typedef enum jb_ce_data_kind {
    JB_CE_DATA_NONE = 0, /* no data */
    JB_CE_DATA_BINARY,   /* opaque bytes (JSON: data_base64) */
    JB_CE_DATA_TEXT,     /* UTF-8 text (JSON: "data": "<string>") */
    JB_CE_DATA_JSON,     /* a JSON value, kept verbatim (JSON: "data": <value>) */
} jb_ce_data_kind;

/* ------------------------------------------------------------------ model */

jb_ce *jb_ce_create(void);
void jb_ce_destroy(jb_ce *ce);
/* Deep copy; NULL when out of memory. */
jb_ce *jb_ce_clone(const jb_ce *ce);

/* Sets attribute or extension `name` (NUL-terminated, lower-case) to value[0..len),
 * copied; replaces an existing value. Fails (JB_ERR_INVALID) past JB_CE_MAX_ATTRS. */
jb_status jb_ce_set(jb_ce *ce, const char *name, const char *value, size_t len);
/* Convenience for a NUL-terminated value. */
jb_status jb_ce_set_str(jb_ce *ce, const char *name, const char *value);
/* Returns the value (NUL-terminated, also sized by *len when len is not NULL) or
 * NULL when unset. The pointer is valid until the attribute changes. */
const char *jb_ce_get(const jb_ce *ce, const char *name, size_t *len);
void jb_ce_unset(jb_ce *ce, const char *name);
/* Iteration in insertion order: i in [0, jb_ce_attr_count). */
size_t jb_ce_attr_count(const jb_ce *ce);
void jb_ce_attr_at(const jb_ce *ce, size_t i, const char **name, const char **value, size_t *len);

/* Data: copied in; kind says how to interpret it. */
jb_status jb_ce_set_data(jb_ce *ce, jb_ce_data_kind kind, const void *data, size_t len);
/* Takes ownership of a malloc'd buffer (*data is set to NULL). */
void jb_ce_take_data(jb_ce *ce, jb_ce_data_kind kind, void **data, size_t len);
/* Points the event at the caller's data without copying it: data must stay valid
 * and unchanged until the event is destroyed or its data replaced (jb_ce_clone
 * copies it). */
void jb_ce_borrow_data(jb_ce *ce, jb_ce_data_kind kind, const void *data, size_t len);
const uint8_t *jb_ce_data(const jb_ce *ce, size_t *len);
jb_ce_data_kind jb_ce_data_kind_of(const jb_ce *ce);

/* True when two events have the same attributes (any order) and the same data bytes. */
bool jb_ce_equal(const jb_ce *a, const jb_ce *b);

/* ------------------------------------------------------------- validation */

/* Checks CloudEvents 1.0: required id, source (non-empty; how strictly a source
 * must be a URI reference is the caller's policy), specversion "1.0",
 * type; time RFC 3339; dataschema absolute URI; attribute names [a-z0-9]{1,20} and
 * never "data"; values without control characters. On failure err names the
 * attribute: "type: MUST be a non-empty string". */
jb_status jb_ce_validate(const jb_ce *ce, jb_err *err);

/* Valid RFC 3339 timestamp? (also used for the legacy event-time) */
bool jb_ce_is_rfc3339(const char *s, size_t len);
/* RFC 3986 URI reference / absolute URI? */
bool jb_ce_is_uri_reference(const char *s, size_t len);
bool jb_ce_is_absolute_uri(const char *s, size_t len);

/* ------------------------------------------------------------ JSON format */

/* Decodes one structured event (application/cloudevents+json). Does not validate
 * (call jb_ce_validate). null members mean unset; extensions are top level. */
jb_status jb_ce_from_json(const char *buf, size_t len, jb_ce **out, jb_err *err);
/* Decodes a batch (a JSON array of events); *out is a malloc'd array of *n events. */
jb_status jb_ce_batch_from_json(const char *buf, size_t len, jb_ce ***out, size_t *n, jb_err *err);
/* Encodes; *out is malloc'd (caller frees), *len its length. */
jb_status jb_ce_to_json(const jb_ce *ce, char **out, size_t *len);
jb_status jb_ce_batch_to_json(jb_ce *const *ces, size_t n, char **out, size_t *len);
/* Frees a batch array and its events. */
void jb_ce_batch_free(jb_ce **ces, size_t n);

/* -------------------------------------------------------- protobuf format */

jb_status jb_ce_from_protobuf(const uint8_t *buf, size_t len, jb_ce **out, jb_err *err);
jb_status jb_ce_batch_from_protobuf(const uint8_t *buf, size_t len, jb_ce ***out, size_t *n,
                                    jb_err *err);
jb_status jb_ce_to_protobuf(const jb_ce *ce, uint8_t **out, size_t *len);
jb_status jb_ce_batch_to_protobuf(jb_ce *const *ces, size_t n, uint8_t **out, size_t *len);

/* ----------------------------------------------------------- HTTP binding */

typedef enum jb_ce_http_mode {
    JB_CE_HTTP_BINARY = 0,          /* any other content type, or none */
    JB_CE_HTTP_STRUCTURED_JSON,     /* application/cloudevents+json */
    JB_CE_HTTP_BATCH_JSON,          /* application/cloudevents-batch+json */
    JB_CE_HTTP_STRUCTURED_PROTOBUF, /* application/cloudevents+protobuf */
    JB_CE_HTTP_BATCH_PROTOBUF,      /* application/cloudevents-batch+protobuf */
    JB_CE_HTTP_UNSUPPORTED,         /* application/cloudevents+<other> or -batch+<other> */
} jb_ce_http_mode;

/* Detects the mode from a Content-Type value (case-insensitive, parameters
 * ignored); the batch prefix is checked before the structured one. NULL = binary. */
jb_ce_http_mode jb_ce_http_detect(const char *content_type, size_t len);

/* One HTTP header as seen on the wire (not NUL-terminated). */
typedef struct jb_ce_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} jb_ce_header;

/* Binary mode decode: ce-* headers (names case-insensitive) become attributes,
 * values are unquoted (RFC 7230 quoted-string) then percent-decoded once, and must
 * be valid UTF-8 (`%C0%A0` is rejected). Content-Type becomes datacontenttype. The
 * body becomes the data (JSON kind when the content type is JSON, else binary). */
jb_status jb_ce_from_http_binary(const jb_ce_header *hdrs, size_t n, const uint8_t *body,
                                 size_t len, jb_ce **out, jb_err *err);
/* The same, except that the event borrows body (jb_ce_borrow_data) instead of
 * copying it: body must outlive the event. */
jb_status jb_ce_from_http_binary_borrow(const jb_ce_header *hdrs, size_t n, const uint8_t *body,
                                        size_t len, jb_ce **out, jb_err *err);

/* Binary mode encode: calls emit for Content-Type (from datacontenttype) and each
 * "ce-<name>" header with a percent-encoded value. The body is jb_ce_data(). */
typedef void (*jb_ce_emit_fn)(void *ud, const char *name, const char *value, size_t value_len);
jb_status jb_ce_to_http_binary(const jb_ce *ce, jb_ce_emit_fn emit, void *ud);

/* Any mode: finds Content-Type among hdrs (case-insensitive), detects the mode
 * and decodes the body: binary (the headers), structured or batch, JSON or
 * protobuf. In structured and batch mode ce- headers are ignored (HTTP binding
 * 3.2). On success *out is a malloc'd array of *nout events (exactly 1 unless
 * batch; free with jb_ce_batch_free) and *mode, when not NULL, is the mode.
 * JB_ERR_UNSUPPORTED for another CloudEvents format (publisher: 415). Does not
 * validate. */
jb_status jb_ce_from_http(const jb_ce_header *hdrs, size_t n, const uint8_t *body, size_t len,
                          jb_ce ***out, size_t *nout, jb_ce_http_mode *mode, jb_err *err);

/* Can value[0..len) travel as a raw HTTP header value and arrive byte for byte?
 * Non-empty, only visible ASCII, space, tab and bytes >= 0x80 (RFC 9110
 * field-value: no control character, no DEL, hence no CR, LF, NUL or ESC), and no
 * space or tab at either end (HTTP strips those). The one rule for the tracing
 * headers, which pass unencoded: the publisher refuses what the dispatcher could
 * not send back. */
bool jb_ce_http_value_ok(const char *value, size_t len);

/* Percent-encoding as the HTTP binding writes it (space, '"', '%' and every byte
 * outside printable ASCII are encoded). *out is malloc'd and NUL-terminated. */
jb_status jb_ce_pct_encode(const char *in, size_t len, char **out, size_t *out_len);
/* The reading side: optional quoted-string unescaping, then one round of
 * percent-decoding, then UTF-8 validation. *out is malloc'd and NUL-terminated. */
jb_status jb_ce_header_decode(const char *in, size_t len, char **out, size_t *out_len, jb_err *err);

/* ----------------------------------------------------------- NATS binding */

/* Binary mode: a new message on subject whose payload is the data untouched and
 * whose headers are lower-case ce-<name> for every attribute and extension
 * (including ce-datacontenttype), values percent-encoded. msg_id, when not NULL,
 * becomes the Nats-Msg-Id header. *out is owned by the caller.
 * nats.c 3.4 merges header keys whose (flawed) hashes are equal, such as ce-id
 * and ce-id31; such a key is written with another case of its prefix (Ce-id31),
 * see docs/cloudevents.md. Add no further headers with jb_ce_nats_key_hash equal
 * to one already present. */
jb_status jb_ce_to_nats(const jb_ce *ce, const char *subject, const char *msg_id, natsMsg **out);
/* As jb_ce_to_nats, with a reply subject (NULL: none): where JetStream sends its
 * ack when the message is published with natsConnection_PublishMsg. */
jb_status jb_ce_to_nats_reply(const jb_ce *ce, const char *subject, const char *reply,
                              const char *msg_id, natsMsg **out);
/* One header value as the NATS binding writes it: percent-encoded as
 * jb_ce_pct_encode, except that the empty string is written `""` (an empty
 * quoted-string), because nats.c 3.4 cannot read an empty header value back.
 * jb_ce_header_decode reads both forms. *out is malloc'd and NUL-terminated. For
 * writers of ce- headers outside jb_ce_to_nats (the dead-letter headers). */
jb_status jb_ce_nats_value_encode(const char *in, size_t len, char **out, size_t *out_len);
/* Structured mode: payload is the JSON format, header Content-Type
 * application/cloudevents+json. */
jb_status jb_ce_to_nats_structured(const jb_ce *ce, const char *subject, natsMsg **out);
/* The hash nats.c 3.4 uses for header keys (see jb_ce_to_nats). */
uint32_t jb_ce_nats_key_hash(const char *key, size_t len);
/* Decodes either mode (structured when Content-Type is application/cloudevents+json,
 * else binary). Does not validate. */
jb_status jb_ce_from_nats(natsMsg *msg, jb_ce **out, jb_err *err);
/* The same, except that a binary-mode event borrows the message's payload
 * (jb_ce_borrow_data) instead of copying it: msg must outlive the event. */
jb_status jb_ce_from_nats_borrow(natsMsg *msg, jb_ce **out, jb_err *err);

/* Base64 (standard alphabet, padded). *out malloc'd and NUL-terminated. */
jb_status jb_base64_encode(const uint8_t *in, size_t len, char **out, size_t *out_len);
jb_status jb_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);
/* The same decoder for the other forms in use. Flags: JB_B64_URL, the URL-safe
 * alphabet ('-', '_'); JB_B64_NOPAD, '=' is refused (JWT); JB_B64_LENIENT, white space
 * is skipped, padding is optional and trailing bits are not checked (kubeconfig data).
 * Without JB_B64_LENIENT each byte string has one accepted encoding. *out is malloc'd
 * and NUL-terminated (*out_len excludes the NUL). JB_ERR_INVALID or JB_ERR_NOMEM. */
#define JB_B64_URL     1u
#define JB_B64_NOPAD   2u
#define JB_B64_LENIENT 4u
jb_status jb_base64_decode_ex(const char *in, size_t len, unsigned flags, uint8_t **out,
                              size_t *out_len);

#endif
