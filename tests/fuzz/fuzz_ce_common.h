/*
 * What every CloudEvents fuzz target shares: the CHECK macro, the invariants an
 * event that decoded must keep through every other codec (check_event), and
 * LLVMFuzzerInitialize. Each fuzz_ce_*.c includes it once; a fuzz target is one
 * translation unit, so the definitions here are that target's own.
 */
#ifndef FUZZ_CE_COMMON_H
#define FUZZ_CE_COMMON_H

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
    if (ta == NULL || tb == NULL || !jb_rfc3339_parse(ta, la, &sa, &na) ||
        !jb_rfc3339_parse(tb, lb, &sb, &nb) || sa != sb || na != nb)
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

#endif
