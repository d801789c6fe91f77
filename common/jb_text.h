/*
 * Text helpers every module may use: decimal integers, RFC 3339 timestamps and JSON
 * strings, each written once. Inputs carry a length and need no NUL; nothing here
 * allocates except jb_json_escape. Depends on nothing else of ours.
 */
#ifndef JB_TEXT_H
#define JB_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decimal digits only (no sign, no blanks, leading zeros allowed), at most max.
 * False (and *out untouched) when s[0..len) is empty, holds anything else, or the
 * value exceeds max. */
bool jb_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* An optional '+' or '-', then jb_parse_uint's digits, within [min, max]. False (and
 * *out untouched) otherwise. */
bool jb_parse_int(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/* RFC 3339 date-time, full-date "T" full-time with "T" and "Z" in either case, an
 * optional fraction (digits past nanoseconds are dropped) and a Z or +hh:mm offset.
 * A leap second (:60) is refused, as Go's time.RFC3339 parser does; the day must exist
 * in its month. On success *secs (Unix seconds, offset applied) and *nanos are set
 * when not NULL. */
bool jb_rfc3339_parse(const char *s, size_t len, int64_t *secs, int32_t *nanos);

/* Formats Unix seconds and nanoseconds as RFC 3339 in UTC ("Z"), the fraction
 * without trailing zeros (none when nanos is 0), into out with its NUL. Returns the
 * length, or 0 (out = "") when the time is outside years 0001..9999 or nanos is out
 * of range. */
#define JB_RFC3339_LEN 32 /* "9999-12-31T23:59:59.999999999Z" and its NUL fit */
size_t jb_rfc3339_format(int64_t secs, int32_t nanos, char out[JB_RFC3339_LEN]);

/* JSON-escapes s[0..len) (without quotes): '"' and '\' get a backslash, bytes below
 * 0x20 become \u00XX, every other byte is copied. Writes at most cap bytes into out,
 * NUL-terminated when cap > 0 (cut mid-escape when it does not fit), and returns the
 * length of the whole escaped text, as snprintf does. */
size_t jb_json_escape_into(char *out, size_t cap, const char *s, size_t len);

/* The same into a malloc'd string; NULL when out of memory. */
char *jb_json_escape(const char *s, size_t len);

#endif
