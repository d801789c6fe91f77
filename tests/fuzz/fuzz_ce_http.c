/* libFuzzer: HTTP binding: header value decoding, mode detection, binary mode
 * decoding and any-mode decoding (jb_ce_from_http) from a synthetic header list. Input:
 * "name:value" lines, an empty line, then the body. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "proto/ce_internal.h"
#include "proto/jb_ce.h"

/* Invariant broken: crash so that libFuzzer keeps the input. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Equal, or equal except a time that names the same instant (protobuf carries
 * time as seconds/nanos in UTC). */
static bool same(const jb_ce *a, const jb_ce *b)
{
    if (jb_ce_equal(a, b))
        return true;
    size_t la, lb;
    const char *ta = jb_ce_get(a, "time", &la), *tb = jb_ce_get(b, "time", &lb);
    int64_t sa, sb;
    int32_t na, nb;
    if (ta == NULL || tb == NULL || !jb_ce_time_parse(ta, la, &sa, &na) ||
        !jb_ce_time_parse(tb, lb, &sb, &nb) || sa != sb || na != nb)
        return false;
    jb_ce *ca = jb_ce_clone(a), *cb = jb_ce_clone(b);
    CHECK(ca != NULL && cb != NULL);
    jb_ce_unset(ca, "time");
    jb_ce_unset(cb, "time");
    bool r = jb_ce_equal(ca, cb);
    jb_ce_destroy(ca);
    jb_ce_destroy(cb);
    return r;
}

static void rt_json(const jb_ce *ce)
{
    char *s;
    size_t n;
    jb_ce *back = NULL;
    jb_err err;
    CHECK(jb_ce_to_json(ce, &s, &n) == JB_OK);
    CHECK(jb_ce_from_json(s, n, &back, &err) == JB_OK);
    CHECK(jb_ce_equal(ce, back));
    jb_ce_destroy(back);
    free(s);
}

static void rt_protobuf(const jb_ce *ce)
{
    uint8_t *b;
    size_t n;
    jb_ce *back = NULL;
    jb_err err;
    jb_status st = jb_ce_to_protobuf(ce, &b, &n);
    if (st == JB_ERR_INVALID) /* a value with a NUL byte cannot be a proto3 string */
        return;
    CHECK(st == JB_OK);
    CHECK(jb_ce_from_protobuf(b, n, &back, &err) == JB_OK);
    CHECK(same(ce, back));
    jb_ce_destroy(back);
    free(b);
}

static void rt_nats(const jb_ce *ce)
{
    natsMsg *m = NULL;
    jb_ce *back = NULL;
    jb_err err;
    jb_status st = jb_ce_to_nats(ce, "kyma.fuzz", "id", &m);
    if (st == JB_ERR_INVALID) /* a name that is not a safe header name */
        return;
    CHECK(st == JB_OK);
    CHECK(jb_ce_from_nats(m, &back, &err) == JB_OK);
    CHECK(jb_ce_equal(ce, back));
    jb_ce_destroy(back);
    natsMsg_Destroy(m);
}

typedef struct hset {
    jb_ce_header h[JB_CE_MAX_ATTRS + 1];
    char *mem[JB_CE_MAX_ATTRS + 1][2];
    size_t n;
} hset;

static void collect(void *ud, const char *name, const char *value, size_t len)
{
    hset *s = ud;
    CHECK(s->n < JB_CE_MAX_ATTRS + 1);
    char *n = strdup(name), *v = malloc(len + 1);
    CHECK(n != NULL && v != NULL);
    memcpy(v, value, len);
    v[len] = '\0';
    s->mem[s->n][0] = n;
    s->mem[s->n][1] = v;
    s->h[s->n] = (jb_ce_header){n, strlen(n), v, len};
    s->n++;
}

static void rt_http(const jb_ce *ce)
{
    hset s = {.n = 0};
    jb_ce *back = NULL;
    jb_err err;
    size_t dl;
    const uint8_t *d = jb_ce_data(ce, &dl);
    if (jb_ce_to_http_binary(ce, collect, &s) == JB_OK) {
        CHECK(jb_ce_from_http_binary(s.h, s.n, d, dl, &back, &err) == JB_OK);
        CHECK(jb_ce_equal(ce, back));
        jb_ce_destroy(back);
    }
    for (size_t i = 0; i < s.n; i++) {
        free(s.mem[i][0]);
        free(s.mem[i][1]);
    }
}

/* Every codec on an event a decoder produced: its own codec must give it back;
 * a valid event must survive every codec. */
static void check_event(const jb_ce *ce)
{
    jb_err err;
    CHECK(jb_ce_attr_count(ce) <= JB_CE_MAX_ATTRS);
    for (size_t i = 0; i < jb_ce_attr_count(ce); i++) {
        size_t len;
        const char *v;
        jb_ce_attr_at(ce, i, NULL, &v, &len);
        CHECK(len <= JB_CE_MAX_ATTR_VALUE);
        CHECK(jb_ce_utf8_valid((const uint8_t *)v, len)); /* every decoder promises it */
    }
    if (jb_ce_validate(ce, &err) != JB_OK)
        return;
    rt_json(ce);
    rt_protobuf(ce);
    rt_nats(ce);
    rt_http(ce);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* natsMsg objects need the library opened, as in any NATS program. */
    return nats_Open(-1) == NATS_OK ? 0 : 1;
}

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
