/* libFuzzer: NATS binding decoding (binary or structured) of a natsMsg built from
 * the input: "key:value" lines, an empty line, then the payload. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t i = 0;
    char key[256], value[16384];
    natsMsg *msg = NULL;
    /* Find the payload first: headers are added after creating the message. */
    const char *sep = NULL;
    for (size_t k = 0; k + 1 < size; k++) {
        if (in[k] == '\n' && in[k + 1] == '\n') {
            sep = in + k;
            break;
        }
    }
    size_t hend = sep != NULL ? (size_t)(sep - in) : size;
    size_t pstart = sep != NULL ? hend + 2 : size;
    if (size - pstart > (size_t)INT32_MAX)
        return 0;
    if (natsMsg_Create(&msg, "kyma.fuzz", NULL, in + pstart, (int)(size - pstart)) != NATS_OK)
        return 0;
    while (i < hend) {
        const char *nl = memchr(in + i, '\n', hend - i);
        size_t end = nl != NULL ? (size_t)(nl - in) : hend;
        const char *colon = memchr(in + i, ':', end - i);
        if (colon != NULL) {
            size_t c = (size_t)(colon - in);
            size_t kl = c - i, vl = end - c - 1;
            if (kl > 0 && kl < sizeof(key) && vl < sizeof(value)) {
                memcpy(key, in + i, kl);
                key[kl] = '\0';
                memcpy(value, in + c + 1, vl);
                value[vl] = '\0';
                if (strlen(key) == kl)
                    natsMsgHeader_Add(msg, key, value);
            }
        }
        i = end + 1;
    }
    jb_ce *ce = NULL;
    jb_err err;
    if (jb_ce_from_nats(msg, &ce, &err) == JB_OK) {
        rt_nats(ce);
        check_event(ce);
        jb_ce_destroy(ce);
    }
    natsMsg_Destroy(msg);
    return 0;
}
