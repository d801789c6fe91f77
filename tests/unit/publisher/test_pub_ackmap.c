/* publisher/: the ack map (message key -> waiting request), checked against a
 * plain array as reference through puts and takes in many orders, with keys that
 * are pointers or consecutive sequence numbers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jb_cunit.h"
#include "publisher/pub_ackmap.h"

/* Keys are never dereferenced: distinct addresses 48 bytes apart, like the heap
 * addresses of messages allocated one after the other. */
static const void *key(size_t i)
{
    return (const void *)(uintptr_t)(0x100000 + i * 48);
}

static void test_put_take_basic(void)
{
    pub_ackmap *m = pub_ackmap_create(4);
    CU_ASSERT_FATAL(m != NULL);
    int req = 0;
    pub_ack_slot s;
    CU_ASSERT_FALSE(pub_ackmap_take(m, key(1), &s)); /* empty */
    CU_ASSERT_TRUE(pub_ackmap_put(m, key(1), &req, 7, 1234));
    CU_ASSERT_EQUAL(pub_ackmap_count(m), 1);
    CU_ASSERT_FALSE(pub_ackmap_take(m, key(2), &s)); /* absent */
    CU_ASSERT_FALSE(pub_ackmap_take(m, NULL, &s));
    CU_ASSERT_TRUE(pub_ackmap_take(m, key(1), &s));
    CU_ASSERT_PTR_EQUAL(s.key, key(1));
    CU_ASSERT_PTR_EQUAL(s.req, &req);
    CU_ASSERT_EQUAL(s.idx, 7);
    CU_ASSERT_EQUAL(s.t0, 1234);
    CU_ASSERT_FALSE(pub_ackmap_take(m, key(1), &s)); /* taken once only */
    CU_ASSERT_EQUAL(pub_ackmap_count(m), 0);
    pub_ackmap_destroy(m);
    CU_ASSERT_PTR_NULL(pub_ackmap_create(0));
}

/* "Full" is an answer, not an overflow: max entries fit, one more is refused. */
static void test_full(void)
{
    enum { MAX = 100 };
    pub_ackmap *m = pub_ackmap_create(MAX);
    CU_ASSERT_FATAL(m != NULL);
    for (size_t i = 0; i < MAX; i++)
        CU_ASSERT_TRUE(pub_ackmap_put(m, key(i), NULL, i, 0));
    CU_ASSERT_FALSE(pub_ackmap_put(m, key(MAX), NULL, MAX, 0));
    pub_ack_slot s;
    CU_ASSERT_TRUE(pub_ackmap_take(m, key(50), &s));
    CU_ASSERT_TRUE(pub_ackmap_put(m, key(MAX), NULL, MAX, 0));
    pub_ackmap_destroy(m);
}

/* The timeout sweep looks entries up by sequence without taking them: with
 * consecutive sequence numbers as keys (what the publisher uses) in a nearly
 * full map, pub_ackmap_get finds each with its values and leaves it in. */
static void test_get_sequences(void)
{
    enum { MAX = 1000 };
    pub_ackmap *m = pub_ackmap_create(MAX);
    CU_ASSERT_FATAL(m != NULL);
    for (uintptr_t seq = 1; seq <= MAX; seq++)
        CU_ASSERT_TRUE(pub_ackmap_put(m, (const void *)seq, NULL, seq, (int64_t)seq * 10));
    pub_ack_slot s;
    CU_ASSERT_FALSE(pub_ackmap_get(m, NULL, &s));
    CU_ASSERT_FALSE(pub_ackmap_get(m, (const void *)(uintptr_t)(MAX + 1), &s));
    for (uintptr_t seq = 1; seq <= MAX; seq++) {
        CU_ASSERT_TRUE(pub_ackmap_get(m, (const void *)seq, &s));
        CU_ASSERT_EQUAL(s.idx, seq);
        CU_ASSERT_EQUAL(s.t0, (int64_t)seq * 10);
    }
    CU_ASSERT_EQUAL(pub_ackmap_count(m), MAX);
    for (uintptr_t seq = 1; seq <= MAX; seq += 2)
        CU_ASSERT_TRUE(pub_ackmap_take(m, (const void *)seq, &s));
    for (uintptr_t seq = 1; seq <= MAX; seq++)
        CU_ASSERT_EQUAL(pub_ackmap_get(m, (const void *)seq, &s), seq % 2 == 0);
    CU_ASSERT_EQUAL(pub_ackmap_count(m), MAX / 2);
    pub_ackmap_destroy(m);
}

/* Random puts and takes (fixed seeds) at several sizes, the map compared with a
 * reference array after every step: every present key is found with its values,
 * every taken one is gone, wherever backward-shift deletion moved the others. */
static void test_against_reference(void)
{
    static const struct {
        size_t max, steps;
        unsigned seed;
    } runs[] = {{1, 200, 1}, {3, 2000, 2}, {16, 20000, 3}, {64, 20000, 4}, {4096, 50000, 5}};
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        size_t max = runs[r].max, universe = max * 3 + 1;
        pub_ackmap *m = pub_ackmap_create(max);
        CU_ASSERT_FATAL(m != NULL);
        bool *in = calloc(universe, sizeof(*in));
        size_t n = 0;
        srand(runs[r].seed);
        bool ok = true;
        for (size_t step = 0; step < runs[r].steps && ok; step++) {
            size_t k = (size_t)rand() % universe;
            pub_ack_slot s;
            if (in[k]) {
                ok = pub_ackmap_take(m, key(k), &s) && s.key == key(k) && s.idx == k &&
                     s.t0 == (int64_t)k * 3;
                in[k] = false;
                n--;
            } else if (n < max) {
                ok = pub_ackmap_put(m, key(k), &in[k], k, (int64_t)k * 3);
                in[k] = true;
                n++;
            } else {
                ok = !pub_ackmap_put(m, key(k), &in[k], k, 0) && !pub_ackmap_take(m, key(k), &s);
            }
            ok = ok && pub_ackmap_count(m) == n;
        }
        CU_ASSERT_TRUE(ok);
        /* Every key still in is found; take_any empties the rest. */
        for (size_t k = 0; k < universe; k++) {
            pub_ack_slot s;
            if (in[k] && k % 2 == 0) {
                CU_ASSERT_TRUE(pub_ackmap_take(m, key(k), &s));
                CU_ASSERT_PTR_EQUAL(s.req, &in[k]);
                in[k] = false;
                n--;
            }
        }
        pub_ack_slot s;
        size_t drained = 0;
        while (pub_ackmap_take_any(m, &s)) {
            size_t k = s.idx;
            CU_ASSERT_TRUE(k < universe && in[k] && s.key == key(k));
            if (k < universe)
                in[k] = false;
            drained++;
        }
        CU_ASSERT_EQUAL(drained, n);
        CU_ASSERT_EQUAL(pub_ackmap_count(m), 0);
        free(in);
        pub_ackmap_destroy(m);
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"put, take, absent, taken once", test_put_take_basic},
        {"max entries fit, one more is refused", test_full},
        {"random puts and takes against a reference", test_against_reference},
        {"look-up without taking, sequence keys", test_get_sequences},
    };
    return jb_cunit_main("unit_publisher_ackmap", NULL, NULL, cases, JB_CASES_N(cases));
}
