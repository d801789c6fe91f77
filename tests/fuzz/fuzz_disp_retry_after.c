/*
 * libFuzzer target for the dispatcher's Retry-After parser and the retry delay it
 * feeds (dispatcher/backoff.c). Layout: a 24-byte settings header (policy,
 * backoffDelay, backoffMax, retryAfterMax, attempt, status choice, random value),
 * then the Retry-After value, copied to an exact-size buffer so that reading past
 * its length is caught. A shorter input is a value alone with default settings.
 * Properties: no crash or overflow (UBSan); a refused value leaves the out-param
 * alone; an accepted one is >= 0; delta-seconds parse to exactly n*1000 ms;
 * surrounding blanks and a trailing CRLF (as curl hands the header over) change
 * nothing; the delay is never below the backoff floor, never above
 * max(backoffMax, retryAfterMax), ignores Retry-After when retryAfterMax is 0 or
 * the status is neither 429 nor 503, and honours it (capped) otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/jb_disp.h"

/* A fixed "now" (2026-01-01T00:00:00Z): dates are relative to it. */
#define NOW_MS 1767225600000LL
#define HDR    24

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64(const uint8_t *p)
{
    return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32;
}

static bool parse(const uint8_t *v, size_t len, int64_t *out)
{
    char *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return false;
    if (len > 0)
        memcpy(buf, v, len);
    const int64_t sentinel = -12345;
    int64_t ms = sentinel;
    bool ok = jb_disp_parse_retry_after(buf, len, NOW_MS, &ms);
    free(buf);
    if (!ok && ms != sentinel)
        abort(); /* out-param written on failure */
    if (ok && ms < 0)
        abort();
    *out = ok ? ms : -1;
    return ok;
}

/* Delta-seconds small enough not to hit the parser's cap parse exactly. */
static void check_digits(const uint8_t *v, size_t len, int64_t ms)
{
    if (len == 0 || len > 12)
        return;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return;
        n = n * 10 + (v[i] - '0');
    }
    if (ms != n * 1000)
        abort();
}

/* Blanks around the value, and curl's trailing CRLF, give the same answer. */
static void check_padding(const uint8_t *v, size_t len, bool ok, int64_t ms)
{
    uint8_t *p = malloc(len + 4);
    if (p == NULL)
        return;
    p[0] = ' ';
    if (len > 0)
        memcpy(p + 1, v, len);
    memcpy(p + 1 + len, "\r\n\t", 3);
    int64_t ms2 = -1;
    bool ok2 = parse(p, len + 4, &ms2);
    free(p);
    if (ok2 != ok || ms2 != ms)
        abort();
}

static void check_delay(const uint8_t *h, int64_t ra_ms, bool ra_ok)
{
    jb_sub_delivery d;
    memset(&d, 0, sizeof(d));
    d.backoff = (jb_sub_backoff)(h[0] % 3);
    d.backoff_delay_ms = (int64_t)(u32(h + 1) % 3600000u) + 1;
    d.backoff_max_ms = d.backoff_delay_ms + (int64_t)(u32(h + 5) % 86400000u);
    d.retry_after_max_ms = (int64_t)(u32(h + 9) % 86400000u) * (h[13] & 1);
    uint64_t attempt = (uint64_t)u32(h + 14) + 1;
    static const int statuses[] = {0, 429, 503, 500, 404, 408};
    int status = statuses[h[18] % 6];
    uint64_t rnd = u64(h + 16) ^ ((uint64_t)h[23] << 56);
    int64_t ra = ra_ok ? ra_ms : -1;
    int64_t back = jb_disp_backoff_ms(&d, attempt, rnd);
    if (back < d.backoff_delay_ms || back > d.backoff_max_ms)
        abort();
    if (d.backoff == JB_SUB_BACKOFF_CONSTANT && back != d.backoff_delay_ms)
        abort();
    int64_t delay = jb_disp_retry_delay_ms(&d, attempt, status, ra, rnd);
    bool honours = (status == 429 || status == 503) && ra >= 0 && d.retry_after_max_ms > 0;
    if (!honours && delay != back)
        abort();
    if (honours) {
        int64_t capped = ra < d.retry_after_max_ms ? ra : d.retry_after_max_ms;
        int64_t want = capped > back ? capped : back;
        if (delay != want)
            abort();
    }
    int64_t hi = d.backoff_max_ms > d.retry_after_max_ms ? d.backoff_max_ms : d.retry_after_max_ms;
    if (delay < d.backoff_delay_ms || delay > hi)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zeros[HDR];
    const uint8_t *h = zeros, *v = data;
    size_t len = size;
    if (size >= HDR) {
        h = data;
        v = data + HDR;
        len = size - HDR;
    }
    int64_t ms = -1;
    bool ok = parse(v, len, &ms);
    if (ok)
        check_digits(v, len, ms);
    check_padding(v, len, ok, ms);
    check_delay(h, ms, ok);
    return 0;
}
