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

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return (m == 2 && leap(y)) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* RFC 3339 date-time: full-date "T" full-time; "T" and "Z" in either case. A
 * leap second (:60) is rejected, as Go's time.RFC3339 parser does. */
bool jb_ce_time_parse(const char *s, size_t len, int64_t *secs, int32_t *nanos)
{
    int y, mo, d, h, mi, se;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 59)
        return false;
    size_t i = 19;
    int32_t ns = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 9)
                ns = ns * 10 + (s[i] - '0');
            i++;
        }
        if (i == start)
            return false;
        for (size_t k = i - start; k < 9; k++)
            ns *= 10;
    }
    int off = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        off = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
    } else {
        return false;
    }
    if (secs != NULL)
        *secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (nanos != NULL)
        *nanos = ns;
    return true;
}

bool jb_ce_is_rfc3339(const char *s, size_t len)
{
    return s != NULL && jb_ce_time_parse(s, len, NULL, NULL);
}

size_t jb_ce_time_format(int64_t secs, int32_t nanos, char out[40])
{
    /* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
    if (secs < -62135596800LL || secs > 253402300799LL || nanos < 0 || nanos > 999999999)
        return 0;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
    size_t len = (size_t)n;
    if (nanos > 0) {
        char frac[10];
        snprintf(frac, sizeof(frac), "%09d", (int)nanos);
        size_t fl = 9;
        while (frac[fl - 1] == '0')
            fl--;
        out[len++] = '.';
        memcpy(out + len, frac, fl);
        len += fl;
    }
    out[len++] = 'Z';
    out[len] = '\0';
    return len;
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
    for (size_t i = 0; i < len; i++) {
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
