/*
 * Private helpers shared by the proto/ codecs. Not part of the public contract:
 * only files in proto/ (and the proto unit tests) include this.
 */
#ifndef JB_CE_INTERNAL_H
#define JB_CE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_text.h"
#include "proto/jb_ce.h"

/* Longest attribute name the model stores. Validation allows only 20; the model
 * keeps longer (invalid) names so that jb_ce_validate can name them, but not
 * unbounded ones. */
#define JB_CE_MAX_NAME 64

/* Longest percent-encoded header value a decoder accepts: every byte of a
 * JB_CE_MAX_ATTR_VALUE value encoded as %XX, plus quotes. */
#define JB_CE_MAX_ENCODED_VALUE (3 * JB_CE_MAX_ATTR_VALUE + 2)

/* Like jb_ce_set with a sized name (not NUL-terminated). */
jb_status jb_ce_set_n(jb_ce *ce, const char *name, size_t name_len, const char *value, size_t len);
/* jb_ce_set_n for a name the caller knows is not set yet (no search). */
jb_status jb_ce_add_n(jb_ce *ce, const char *name, size_t name_len, const char *value, size_t len);
/* Looks up a sized name; NULL when unset. */
const char *jb_ce_get_n(const jb_ce *ce, const char *name, size_t name_len, size_t *len);

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
bool jb_ce_utf8_valid(const uint8_t *s, size_t len);
/* Sets a decoded attribute after the checks every structured decoder applies: a
 * name of 1..JB_CE_MAX_NAME bytes, not yet set, a value within
 * JB_CE_MAX_ATTR_VALUE bytes and valid UTF-8, room for one more attribute. */
jb_status jb_ce_set_decoded(jb_ce *ce, const char *name, const char *v, size_t len, jb_err *err);

/* True when the media type (parameters ignored, case-insensitive) is JSON:
 * application/json, text/json or any type with a +json suffix. */
bool jb_ce_is_json_media(const char *ct, size_t len);

/* RFC 3339 times: jb_rfc3339_parse and jb_rfc3339_format in common/jb_text.h. */

/* The header-value decoder writing into a caller buffer of cap bytes (a NUL is
 * appended, so cap must exceed the longest result). */
jb_status jb_ce_header_decode_into(const char *in, size_t len, char *out, size_t cap,
                                   size_t *out_len, jb_err *err);
/* Percent-encodes into a caller buffer of at least 3 * len + 1 bytes; returns the
 * length (a NUL is appended). */
size_t jb_ce_pct_encode_into(const char *in, size_t len, char *out);

/* The NATS binding's value encoding into a caller buffer of at least 3 * len + 3
 * bytes (see jb_ce_nats_value_encode); returns the length (a NUL is appended). */
size_t jb_ce_nats_value_into(const char *in, size_t len, char *out);

/* Adds one binary-mode header (name after the "ce-" prefix, any case; value as
 * on the wire) to ce: lower-cases the name, rejects a duplicate, decodes the
 * value (jb_ce_header_decode rules) and enforces the limits. */
jb_status jb_ce_add_header_attr(jb_ce *ce, const char *name, size_t nlen, const char *value,
                                size_t vlen, jb_err *err);

/* Sets datacontenttype from a Content-Type header value: trimmed, at most
 * JB_CE_MAX_ATTR_VALUE bytes, UTF-8. */
jb_status jb_ce_set_content_type(jb_ce *ce, const char *v, size_t len, jb_err *err);

/* True when name is 1..20 characters of [a-z0-9] (safe as a header name suffix). */
bool jb_ce_name_valid(const char *name, size_t len);

/* Case-insensitive ASCII comparison of a sized string with a NUL-terminated one. */
bool jb_ce_ieq(const char *s, size_t len, const char *lit);

#endif
