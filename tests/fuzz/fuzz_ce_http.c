/* libFuzzer: HTTP binding: header value decoding, mode detection, binary mode
 * decoding and any-mode decoding (jb_ce_from_http) from a synthetic header list. Input:
 * "name:value" lines, an empty line, then the body. */
#include "fuzz_ce_common.h"

#define MAX_HDRS 80

/* Decoded, re-encoded and decoded again, a header value is unchanged. */
static void check_header_value(const char *v, size_t len)
{
    char *d, *e, *d2;
    size_t dl, el, d2l;
    jb_err err;
    if (jb_ce_header_decode(v, len, &d, &dl, &err) != JB_OK)
        return;
    CHECK(dl <= len);
    CHECK(jb_ce_pct_encode(d, dl, &e, &el) == JB_OK);
    for (size_t i = 0; i < el; i++) /* nothing unsafe left for a header */
        CHECK(e[i] > 0x20 && e[i] < 0x7F && e[i] != '"');
    CHECK(jb_ce_header_decode(e, el, &d2, &d2l, &err) == JB_OK);
    CHECK(d2l == dl && memcmp(d, d2, dl) == 0);
    free(d);
    free(e);
    free(d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    jb_ce_header hdrs[MAX_HDRS];
    size_t n = 0, i = 0;
    jb_ce_http_mode m = jb_ce_http_detect(in, size);
    CHECK(m >= JB_CE_HTTP_BINARY && m <= JB_CE_HTTP_UNSUPPORTED);
    while (i < size && n < MAX_HDRS) {
        const char *nl = memchr(in + i, '\n', size - i);
        size_t end = nl != NULL ? (size_t)(nl - in) : size;
        if (end == i) { /* empty line: the body follows */
            i++;
            break;
        }
        const char *colon = memchr(in + i, ':', end - i);
        if (colon != NULL) {
            size_t c = (size_t)(colon - in);
            hdrs[n] = (jb_ce_header){in + i, c - i, in + c + 1, end - c - 1};
            check_header_value(hdrs[n].value, hdrs[n].value_len);
            (void)jb_ce_http_detect(hdrs[n].value, hdrs[n].value_len);
            n++;
        }
        i = end + 1;
    }
    if (i > size)
        i = size;
    jb_ce *ce = NULL;
    jb_err err;
    if (jb_ce_from_http_binary(hdrs, n, data + i, size - i, &ce, &err) == JB_OK) {
        rt_http(ce);
        check_event(ce);
        jb_ce_destroy(ce);
    }
    /* Whatever mode the Content-Type selects. */
    jb_ce **ces = NULL;
    size_t nces = 0;
    if (jb_ce_from_http(hdrs, n, data + i, size - i, &ces, &nces, NULL, &err) == JB_OK) {
        CHECK(nces <= JB_CE_MAX_BATCH);
        for (size_t k = 0; k < nces; k++)
            check_event(ces[k]);
        jb_ce_batch_free(ces, nces);
    }
    return 0;
}
