/*
 * subscription/jb_sub_subject.h: the subject contract. What the publisher writes
 * (`<prefix>.<cleanSource>.<cleanType>`) is what the consumers filter, because both
 * build it here. Needs nothing but the raw strings.
 * Part of the subscription module; subscription/jb_sub.h includes it.
 */
#ifndef JB_SUB_SUBJECT_H
#define JB_SUB_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

/* Cleaning of the standard path (docs/contract.md 2.3 A), shared with the publisher.
 * Source: removes whitespace, '.', '>', '*', '/', '\'. Type: removes whitespace,
 * '>', '*', '/', '\' (dots stay). Whitespace is what isspace() accepts in the C
 * locale. Write into out (capacity cap, NUL-terminated) and return the cleaned
 * length; when cap is too small, return the needed length (excluding NUL) and
 * write nothing useful (call again with a larger buffer). */
size_t jb_sub_clean_source(const char *src, size_t len, char *out, size_t cap);
size_t jb_sub_clean_type(const char *type, size_t len, char *out, size_t cap);

/* Source validity, for the publisher's events and a Subscription's spec.source
 * alike (Kyma reads sources with Go's URL parser): false only when src[0..len) is
 * empty, holds a control byte (below 0x20, or 0x7f), a '%' not followed by two
 * hex digits, or a ':' in its first segment (up to '/', '?' or '#') that does not
 * end a valid scheme. "s>o>*u*r>c.e", "system>prod" and "my app" are valid. */
bool jb_sub_source_valid(const char *src, size_t len);

/* The standard-path subject (section 2.3 A), the one function both the publisher
 * (for each event) and the subscription (for each type) call, so that they
 * always clean the same raw strings alike:
 * "<subject_prefix>.<cleanSource>.<cleanType>". JB_ERR_INVALID (err names
 * "source: ..." or "type: ...") when a dot segment would be empty or a control
 * byte would reach the subject. *out is malloc'd (caller frees). */
jb_status jb_sub_standard_subject(const char *subject_prefix, const char *source, size_t slen,
                                  const char *type, size_t tlen, char **out, jb_err *err);

/* What is wrong with an exact-path subject for NATS, as a validation detail
 * ("must not contain NATS wildcard tokens", "must not contain whitespace or
 * control characters", "must not have empty segments"), or NULL when it is fine.
 * A token that merely contains '*' or '>' is a literal for NATS and fine. */
const char *jb_sub_exact_subject_problem(const char *subject);

#endif
