/* The pure delivery rules: verdicts, backoff and Retry-After. No I/O here, so every
 * rule is covered by table-driven unit tests. */
#include <curl/curl.h>
#include <string.h>

#include "common/jb_common.h"
#include "dispatcher/jb_disp.h"

jb_disp_verdict jb_disp_verdict_of(int status)
{
    if (status >= 200 && status < 300)
        return JB_DISP_ACK;
    /* 0 is a transport error or timeout: the sink may come back. 404 is retried as
     * Kyma does, because a sink that is being (re)deployed answers 404 for a while. */
    if (status == 0 || status >= 500 || status == 404 || status == 408 || status == 409 ||
        status == 429)
        return JB_DISP_RETRY;
    /* Other 1xx/3xx/4xx: the sink rejected this event; repeating it cannot help. */
    return JB_DISP_DEAD;
}

void jb_disp_status_text(int status, char *out)
{
    jb_dec_i64(out, status);
}

int64_t jb_disp_backoff_ms(const jb_sub_delivery *d, uint64_t attempt, uint64_t rnd)
{
    int64_t base = d->backoff_delay_ms > 0 ? d->backoff_delay_ms : 1;
    int64_t max = d->backoff_max_ms >= base ? d->backoff_max_ms : base;
    if (attempt < 1)
        attempt = 1;
    switch (d->backoff) {
    case JB_SUB_BACKOFF_CONSTANT:
        return base;
    case JB_SUB_BACKOFF_LINEAR:
        if ((uint64_t)(max / base) < attempt)
            return max;
        return base * (int64_t)attempt;
    case JB_SUB_BACKOFF_EXPONENTIAL: {
        int64_t cap = base;
        /* Double without overflow: stop as soon as the cap is reached. */
        for (uint64_t i = 1; i < attempt && cap < max; i++)
            cap = cap > max / 2 ? max : cap * 2;
        if (cap > max)
            cap = max;
        uint64_t span = (uint64_t)(cap - base) + 1;
        return base + (int64_t)(rnd % span);
    }
    }
    return base;
}

bool jb_disp_parse_retry_after(const char *v, size_t len, int64_t now_wall_ms, int64_t *out_ms)
{
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len > 0 &&
           (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    if (len == 0 || len > 64)
        return false;
    bool digits = true;
    for (size_t i = 0; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            digits = false;
    if (digits) {
        int64_t s = 0;
        for (size_t i = 0; i < len; i++) {
            if (s > (INT64_MAX / 1000 - 9) / 10) {
                s = INT64_MAX / 1000; /* absurdly large: the cap decides */
                break;
            }
            s = s * 10 + (v[i] - '0');
        }
        *out_ms = s * 1000;
        return true;
    }
    /* curl_getdate needs a C string; the value is bounded above. It understands the
     * three HTTP date forms of RFC 9110. */
    char buf[65];
    memcpy(buf, v, len);
    buf[len] = '\0';
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return false;
    /* A date in year 300 million is valid syntax: clamp before scaling (found by
     * fuzz_disp_retry_after), as for absurd delta-seconds the cap decides. */
    int64_t secs = (int64_t)t;
    if (secs > INT64_MAX / 1000 - 1)
        secs = INT64_MAX / 1000 - 1;
    if (secs < 0)
        secs = 0;
    int64_t now = now_wall_ms > 0 ? now_wall_ms : 0;
    int64_t ms = secs * 1000 - now;
    *out_ms = ms > 0 ? ms : 0;
    return true;
}

int64_t jb_disp_retry_delay_ms(const jb_sub_delivery *d, uint64_t attempt, int status,
                               int64_t retry_after_ms, uint64_t rnd)
{
    int64_t delay = jb_disp_backoff_ms(d, attempt, rnd);
    if ((status == 429 || status == 503) && retry_after_ms >= 0 && d->retry_after_max_ms > 0) {
        int64_t ra =
            retry_after_ms < d->retry_after_max_ms ? retry_after_ms : d->retry_after_max_ms;
        if (ra > delay)
            delay = ra;
    }
    return delay;
}
