/*
 * Value parsers for configuration: integers, booleans, durations (Go style and
 * ISO 8601) and sizes (Kubernetes quantities); integers are common/'s jb_parse_int. Every parser
 * takes a length (the bytes are untrusted and need not be NUL-terminated), never reads past it,
 * checks every multiplication for overflow and sets *out only on success.
 */
#include <stdint.h>
#include <string.h>

#include "common/jb_text.h"
#include "config/jb_cfg.h"

typedef unsigned __int128 u128;

#define NS_PER_MS  INT64_C(1000000)
#define NS_PER_SEC INT64_C(1000000000)

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (n != len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i])
            return false;
    return true;
}

bool jb_cfg_parse_bool(const char *s, size_t len, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (eq_nocase(s, len, yes[i])) {
            *out = true;
            return true;
        }
        if (eq_nocase(s, len, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* A decimal number "123", "1.5", ".5" or "5." (not "."), as mantissa and the
 * count of fraction digits. At most 36 significant digits, so the mantissa times
 * any unit used below fits in 128 bits. Advances *pos past the number. */
typedef struct decnum {
    u128 mant;
    int frac_digits;
} decnum;

static bool parse_decimal(const char *s, size_t len, size_t *pos, char point2, decnum *out)
{
    size_t i = *pos;
    u128 mant = 0;
    int digits = 0, frac = 0;
    bool any = false, seen_point = false;
    for (; i < len; i++) {
        char c = s[i];
        if (is_digit(c)) {
            any = true;
            if (mant == 0 && c == '0' && !seen_point)
                continue; /* leading zeros carry no information */
            if (++digits > 36)
                return false;
            mant = mant * 10 + (u128)(unsigned)(c - '0');
            if (seen_point)
                frac++;
        } else if ((c == '.' || (point2 != 0 && c == point2)) && !seen_point) {
            seen_point = true;
        } else {
            break;
        }
    }
    if (!any)
        return false;
    *pos = i;
    out->mant = mant;
    out->frac_digits = frac;
    return true;
}

static u128 pow10_u128(int n)
{
    u128 p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* mant / 10^frac * unit, truncated toward zero, in *acc (nanoseconds), which must
 * stay <= INT64_MAX. */
static bool add_scaled(decnum d, int64_t unit_ns, u128 *acc)
{
    u128 v = d.mant * (u128)(uint64_t)unit_ns / pow10_u128(d.frac_digits);
    if (v > (u128)INT64_MAX || *acc + v > (u128)INT64_MAX)
        return false;
    *acc += v;
    return true;
}

static bool ns_to_ms(u128 ns, int64_t *out_ms)
{
    if (ns > (u128)INT64_MAX)
        return false;
    *out_ms = (int64_t)(ns / (u128)NS_PER_MS);
    return true;
}

/* Go's time.ParseDuration units, longest first so that "ms" wins over "m". */
static const struct {
    const char *name;
    int64_t ns;
} go_units[] = {
    {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* µs (micro sign) */
    {"\xce\xbcs", 1000},                                         /* μs (Greek mu) */
    {"ms", NS_PER_MS},   {"s", NS_PER_SEC}, {"m", NS_PER_SEC * 60}, {"h", NS_PER_SEC * 3600},
};

static bool go_unit(const char *s, size_t len, size_t *pos, int64_t *unit_ns)
{
    size_t best = 0;
    for (size_t u = 0; u < sizeof(go_units) / sizeof(go_units[0]); u++) {
        size_t n = strlen(go_units[u].name);
        if (n > best && len - *pos >= n && memcmp(s + *pos, go_units[u].name, n) == 0) {
            best = n;
            *unit_ns = go_units[u].ns;
        }
    }
    if (best == 0)
        return false;
    *pos += best;
    return true;
}

/* "1h2m3.5s": one or more <decimal><unit>; "0" alone is allowed as in Go. */
static bool parse_go_duration(const char *s, size_t len, int64_t *out_ms)
{
    if (len == 1 && s[0] == '0') {
        *out_ms = 0;
        return true;
    }
    size_t pos = 0;
    u128 acc = 0;
    if (len == 0)
        return false;
    while (pos < len) {
        decnum d;
        int64_t unit;
        if (!parse_decimal(s, len, &pos, 0, &d) || !go_unit(s, len, &pos, &unit))
            return false;
        if (!add_scaled(d, unit, &acc))
            return false;
    }
    return ns_to_ms(acc, out_ms);
}

/* ISO 8601 designators in the order they must appear. Years and months are
 * refused: their length depends on the calendar. */
static const struct {
    char c;
    bool time;
    int64_t ns;
} iso_units[] = {
    {'W', false, NS_PER_SEC * 86400 * 7},
    {'D', false, NS_PER_SEC * 86400},
    {'H', true, NS_PER_SEC * 3600},
    {'M', true, NS_PER_SEC * 60},
    {'S', true, NS_PER_SEC},
};
#define ISO_NUNITS (sizeof(iso_units) / sizeof(iso_units[0]))

bool jb_cfg_parse_iso8601_duration_ms(const char *s, size_t len, int64_t *out_ms)
{
    if (len < 2 || s[0] != 'P')
        return false;
    size_t pos = 1, next_unit = 0;
    bool in_time = false, any = false, time_any = false, had_fraction = false;
    u128 acc = 0;
    while (pos < len) {
        if (s[pos] == 'T') {
            if (in_time)
                return false;
            in_time = true;
            pos++;
            continue;
        }
        decnum d;
        /* Only the smallest component present may carry a fraction. */
        if (had_fraction || !parse_decimal(s, len, &pos, ',', &d) || pos >= len)
            return false;
        had_fraction = d.frac_digits > 0 || s[pos - 1] == '.' || s[pos - 1] == ',';
        size_t u = next_unit;
        while (u < ISO_NUNITS && !(iso_units[u].c == s[pos] && iso_units[u].time == in_time))
            u++;
        if (u == ISO_NUNITS || !add_scaled(d, iso_units[u].ns, &acc))
            return false;
        next_unit = u + 1;
        any = true;
        time_any = time_any || in_time;
        pos++;
    }
    if (!any || (in_time && !time_any))
        return false;
    return ns_to_ms(acc, out_ms);
}

bool jb_cfg_parse_duration_ms(const char *s, size_t len, int64_t *out_ms)
{
    if (len > 0 && s[0] == 'P')
        return jb_cfg_parse_iso8601_duration_ms(s, len, out_ms);
    bool all_digits = len > 0;
    for (size_t i = 0; i < len; i++)
        all_digits = all_digits && is_digit(s[i]);
    if (all_digits) {
        int64_t secs;
        /* Same bound as the other forms: the duration fits in int64 nanoseconds. */
        if (!jb_parse_int(s, len, 0, INT64_MAX / NS_PER_SEC, &secs))
            return false;
        *out_ms = secs * 1000;
        return true;
    }
    return parse_go_duration(s, len, out_ms);
}

/* Kubernetes quantity suffixes: binary (powers of 1024) and decimal (powers of
 * ten; "m" is milli, so "1500m" is 1.5 bytes and rejected as not whole). */
static const struct {
    const char *name;
    int shift10; /* power of two is 10 * shift10 */
    int exp10;
} size_suffixes[] = {
    {"Ki", 1, 0}, {"Mi", 2, 0}, {"Gi", 3, 0}, {"Ti", 4, 0}, {"Pi", 5, 0},
    {"Ei", 6, 0}, {"m", 0, -3}, {"k", 0, 3},  {"M", 0, 6},  {"G", 0, 9},
    {"T", 0, 12}, {"P", 0, 15}, {"E", 0, 18},
};

/* Reads the suffix or the exponent ("e3", "E-2") after the number. */
static bool size_suffix(const char *s, size_t len, size_t pos, int *shift, int *exp10)
{
    *shift = 0;
    *exp10 = 0;
    if (pos == len)
        return true;
    if ((s[pos] == 'e' || s[pos] == 'E') && pos + 1 < len &&
        (is_digit(s[pos + 1]) || s[pos + 1] == '-' || s[pos + 1] == '+')) {
        int64_t e;
        if (!jb_parse_int(s + pos + 1, len - pos - 1, -1000, 1000, &e))
            return false;
        *exp10 = (int)e;
        return true;
    }
    for (size_t i = 0; i < sizeof(size_suffixes) / sizeof(size_suffixes[0]); i++) {
        size_t n = strlen(size_suffixes[i].name);
        if (len - pos == n && memcmp(s + pos, size_suffixes[i].name, n) == 0) {
            *shift = size_suffixes[i].shift10 * 10;
            *exp10 = size_suffixes[i].exp10;
            return true;
        }
    }
    return false;
}

bool jb_cfg_parse_size(const char *s, size_t len, int64_t *out_bytes)
{
    size_t pos = 0;
    decnum d;
    int shift, exp10;
    if (len > 0 && s[0] == '+')
        pos = 1;
    if (!parse_decimal(s, len, &pos, 0, &d) || !size_suffix(s, len, pos, &shift, &exp10))
        return false;
    u128 v = d.mant;
    if (v == 0) {
        *out_bytes = 0;
        return true;
    }
    /* 36 digits (< 2^120) times 2^60 may not fit: check before shifting. */
    if (shift > 0 && v > ((u128)-1 >> shift))
        return false;
    v <<= shift;
    int e = exp10 - d.frac_digits;
    for (; e > 0; e--) {
        if (v > (u128)INT64_MAX)
            return false;
        v *= 10;
    }
    for (; e < 0; e++) {
        if (v % 10 != 0)
            return false; /* not a whole number of bytes */
        v /= 10;
    }
    if (v > (u128)INT64_MAX)
        return false;
    *out_bytes = (int64_t)v;
    return true;
}
