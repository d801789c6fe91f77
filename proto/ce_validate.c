/*
 * Validation against CloudEvents 1.0, RFC 3339 timestamps and RFC 3986 URI
 * references. Messages have the form "<attribute>: MUST ..." (see
 * docs/cloudevents.md for the full list).
 */
#include <stdio.h>
#include <string.h>

#include "proto/ce_internal.h"
#include "proto/jb_ce.h"

/* ------------------------------------------------------------------ time */

bool jb_ce_is_rfc3339(const char *s, size_t len)
{
    return s != NULL && jb_rfc3339_parse(s, len, NULL, NULL);
}

/* -------------------------------------------------------------------- URI */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 unreserved, gen-delims and sub-delims; '%' is checked separately.
 * Bytes >= 0x80 are accepted (IRI, RFC 3987) when the whole string is UTF-8. */
static bool uri_char(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if (is_alpha((char)c) || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("-._~:/?#[]@!$&'()*+,;=", c) != NULL;
}

/* Length of a valid scheme prefix (up to, not including, ':'), or 0. */
static size_t scheme_len(const char *s, size_t len)
{
    if (len == 0 || !is_alpha(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (c == ':')
            return i;
        if (!(is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
            return 0;
    }
    return 0;
}

bool jb_ce_is_uri_reference(const char *s, size_t len)
{
    if (s == NULL || !jb_ce_utf8_valid((const uint8_t *)s, len))
        return false;
    size_t hashes = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if (!uri_char(c))
            return false;
        if (c == '#')
            hashes++;
    }
    if (hashes > 1)
        return false;
    /* A ':' before any '/', '?' or '#' must end a scheme: a relative reference's
     * first segment cannot contain one (RFC 3986 4.2). */
    size_t first = 0;
    while (first < len && s[first] != ':' && s[first] != '/' && s[first] != '?' && s[first] != '#')
        first++;
    if (first < len && s[first] == ':' && scheme_len(s, len) != first)
        return false;
    /* Brackets belong only to an IP literal in the authority. */
    size_t sl = scheme_len(s, len);
    size_t p = sl > 0 ? sl + 1 : 0;
    size_t auth_end = p;
    if (len - p >= 2 && s[p] == '/' && s[p + 1] == '/') {
        auth_end = p + 2;
        while (auth_end < len && s[auth_end] != '/' && s[auth_end] != '?' && s[auth_end] != '#')
            auth_end++;
    }
    for (size_t i = auth_end; i < len; i++) {
        if (s[i] == '[' || s[i] == ']')
            return false;
    }
    return true;
}

bool jb_ce_is_absolute_uri(const char *s, size_t len)
{
    return s != NULL && scheme_len(s, len) > 0 && jb_ce_is_uri_reference(s, len);
}

/* ------------------------------------------------------------- validation */

/* Is there a control character (C0, DEL, C1) in valid UTF-8 s? */
static bool has_control(const uint8_t *s, size_t len)
{
    static const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    /* Eight bytes at once while they are all printable ASCII (no high bit, none
     * below 0x20, no DEL): the word tests are exact for bytes below 0x80. */
    while (len - i >= 8) {
        uint64_t w, d;
        memcpy(&w, s + i, 8);
        d = w ^ (0x7F * ones);
        if ((w & highs) != 0 || ((w - 0x20 * ones) & ~w & highs) != 0 ||
            ((d - ones) & ~d & highs) != 0)
            break;
        i += 8;
    }
    for (; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F)
            return true;
        /* C1 controls U+0080..U+009F are encoded C2 80..C2 9F. */
        if (s[i] == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return true;
    }
    return false;
}

/* Copies a printable, bounded rendering of an untrusted name into out. */
static const char *printable_name(const char *name, size_t len, char out[40])
{
    size_t n = len < 32 ? len : 32;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    if (len > n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static jb_status check_required(const jb_ce *ce, jb_err *err)
{
    size_t len;
    const char *v = jb_ce_get(ce, "id", &len);
    if (v == NULL || len == 0)
        return jb_err_set(err, JB_ERR_INVALID, "id: MUST be a non-empty string");
    /* Which sources are acceptable beyond this is the bridge's policy (Kyma reads
     * them with Go's lenient URL parser), decided by its caller: see
     * jb_sub_source_valid. Control characters are refused below for every attribute. */
    v = jb_ce_get(ce, "source", &len);
    if (v == NULL || len == 0)
        return jb_err_set(err, JB_ERR_INVALID, "source: MUST be a non-empty string");
    v = jb_ce_get(ce, "specversion", &len);
    if (v == NULL || len != 3 || memcmp(v, "1.0", 3) != 0)
        return jb_err_set(err, JB_ERR_INVALID, "specversion: MUST be \"1.0\"");
    v = jb_ce_get(ce, "type", &len);
    if (v == NULL || len == 0)
        return jb_err_set(err, JB_ERR_INVALID, "type: MUST be a non-empty string");
    return JB_OK;
}

static jb_status check_optional(const jb_ce *ce, jb_err *err)
{
    size_t len;
    const char *v = jb_ce_get(ce, "datacontenttype", &len);
    if (v != NULL && len == 0)
        return jb_err_set(err, JB_ERR_INVALID, "datacontenttype: MUST be a non-empty string");
    /* It travels as a raw Content-Type header, whose edges HTTP trims. */
    if (v != NULL && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' || v[len - 1] == '\t'))
        return jb_err_set(err, JB_ERR_INVALID,
                          "datacontenttype: MUST NOT begin or end with whitespace");
    v = jb_ce_get(ce, "dataschema", &len);
    if (v != NULL && !jb_ce_is_absolute_uri(v, len))
        return jb_err_set(err, JB_ERR_INVALID, "dataschema: MUST be an absolute URI");
    v = jb_ce_get(ce, "subject", &len);
    if (v != NULL && len == 0)
        return jb_err_set(err, JB_ERR_INVALID, "subject: MUST be a non-empty string");
    v = jb_ce_get(ce, "time", &len);
    if (v != NULL && !jb_ce_is_rfc3339(v, len))
        return jb_err_set(err, JB_ERR_INVALID, "time: MUST be an RFC 3339 timestamp");
    return JB_OK;
}

static jb_status check_attr(const char *name, const char *value, size_t len, jb_err *err)
{
    size_t nlen = strlen(name);
    char pn[40];
    if (nlen == 4 && memcmp(name, "data", 4) == 0)
        return jb_err_set(err, JB_ERR_INVALID, "data: MUST NOT be used as an attribute name");
    if (!jb_ce_name_valid(name, nlen))
        return jb_err_set(err, JB_ERR_INVALID,
                          "%s: attribute names MUST be 1 to 20 lower-case letters or digits",
                          printable_name(name, nlen, pn));
    if (!jb_ce_utf8_valid((const uint8_t *)value, len))
        return jb_err_set(err, JB_ERR_INVALID, "%s: MUST be valid UTF-8", name);
    if (has_control((const uint8_t *)value, len))
        return jb_err_set(err, JB_ERR_INVALID, "%s: MUST NOT contain control characters", name);
    return JB_OK;
}

jb_status jb_ce_validate(const jb_ce *ce, jb_err *err)
{
    jb_status st = check_required(ce, err);
    if (st != JB_OK)
        return st;
    st = check_optional(ce, err);
    if (st != JB_OK)
        return st;
    size_t n = jb_ce_attr_count(ce);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t len;
        jb_ce_attr_at(ce, i, &name, &value, &len);
        st = check_attr(name, value, len, err);
        if (st != JB_OK)
            return st;
    }
    return JB_OK;
}
