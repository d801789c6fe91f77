/* Decimal integers, RFC 3339 timestamps and JSON strings (jb_text.h). Each was written
 * two or three times across modules before; these are the one copy. */
#include "common/jb_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- integers */

bool jb_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (s == NULL || len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (d > max || v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool jb_parse_int(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || len == 0)
        return false;
    bool neg = s[0] == '-';
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    /* The magnitude as unsigned, so that INT64_MIN is representable. */
    uint64_t mag = 0;
    if (!jb_parse_uint(s + i, len - i, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag))
        return false;
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---------------------------------------------------------------- RFC 3339 */

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

/* The fraction after s[*i] == '.', in nanoseconds; false when it has no digit. */
static bool fraction(const char *s, size_t len, size_t *i, int32_t *ns)
{
    size_t start = ++*i;
    int32_t v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        if (*i - start < 9)
            v = v * 10 + (s[*i] - '0');
        ++*i;
    }
    if (*i == start)
        return false;
    for (size_t k = *i - start; k < 9; k++)
        v *= 10;
    *ns = v;
    return true;
}

/* The zone at s[i..len): "Z" or "+hh:mm"/"-hh:mm", as seconds east of UTC. */
static bool zone(const char *s, size_t len, size_t i, int *off)
{
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        *off = 0;
        return true;
    }
    int oh, om;
    if (i + 6 != len || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':' ||
        !digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
        return false;
    *off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
    return true;
}

bool jb_rfc3339_parse(const char *s, size_t len, int64_t *secs, int32_t *nanos)
{
    int y, mo, d, h, mi, se, off;
    if (s == NULL || len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 59)
        return false;
    size_t i = 19;
    int32_t ns = 0;
    if (s[i] == '.' && !fraction(s, len, &i, &ns))
        return false;
    if (!zone(s, len, i, &off))
        return false;
    if (secs != NULL)
        *secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (nanos != NULL)
        *nanos = ns;
    return true;
}

size_t jb_rfc3339_format(int64_t secs, int32_t nanos, char out[JB_RFC3339_LEN])
{
    out[0] = '\0';
    /* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
    if (secs < -62135596800LL || secs > 253402300799LL || nanos < 0 || nanos > 999999999)
        return 0;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, JB_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
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

/* ---------------------------------------------------------------- JSON */

size_t jb_json_escape_into(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[6];
        size_t n = 1;
        e[0] = (char)c;
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            n = 2;
        } else if (c < 0x20) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            n = 6;
        }
        for (size_t k = 0; k < n; k++, o++)
            if (o + 1 < cap)
                out[o] = e[k];
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}

char *jb_json_escape(const char *s, size_t len)
{
    /* Worst case every byte becomes \u00XX. */
    if (len > (SIZE_MAX - 1) / 6)
        return NULL;
    char *out = malloc(len * 6 + 1);
    if (out != NULL)
        jb_json_escape_into(out, len * 6 + 1, s, len);
    return out;
}
