/* dispatcher/: reading a JetStream message's reply subject (pull.c), which the
 * dispatcher parses itself since it pulls through a plain subscription. */
#include <string.h>

#include "dispatcher/disp_core.h"
#include "dispatcher/disp_internal.h"
#include "jb_cunit.h"

static void test_ack_subjects(void)
{
    static const struct {
        const char *subject;
        bool ok;
        const char *consumer;
        uint64_t delivered, sseq;
    } cases[] = {
        /* the form nats-server 2.9 sends */
        {"$JS.ACK.sap.5ddf41966d8084724770dca95a2f7452.3.1042.17.1700000000000000000.9", true,
         "5ddf41966d8084724770dca95a2f7452", 3, 1042},
        /* newer servers: domain and account hash in front, and a random token */
        {"$JS.ACK.hub.ACCHASH.sap.c1.1.7.7.1700000000000000000.0", true, "c1", 1, 7},
        {"$JS.ACK.hub.ACCHASH.sap.c1.2.8.8.1700000000000000000.0.xyz", true, "c1", 2, 8},
        /* no domain: the server writes "_" */
        {"$JS.ACK._.ACCHASH.sap.c1.5.9.9.1700000000000000000.0.xyz", true, "c1", 5, 9},
        /* the smallest numbers nats-server 2.9.10's "%d.%d.%d.%d.%d" writes */
        {"$JS.ACK.s.c.1.1.1.0.0", true, "c", 1, 1},
        {"$JS.ACK.s.c.1.1.1.0.0 ", false, NULL, 0, 0}, /* a byte after the last digit */
        {"$JS.ACK.s.c.1.1.1.0", false, NULL, 0, 0},    /* 4 numbers: not an ack subject */
        {"$JS.ACK.hub.ACCHASH.sap.c1.1.7.7.1", false, NULL, 0, 0}, /* 8 tokens */
        {"$JS.ACKX.sap.c1.1.1.1.1.0", false, NULL, 0, 0},
        {"$JS.ACK.sap.c1.18446744073709551615.1.1.1.0", false, NULL, 0, 0}, /* 20 digits */
        /* 19 digits always fit in 64 bits */
        {"$JS.ACK.sap.c1.9999999999999999999.1.1.1.0", true, "c1", 9999999999999999999ULL, 1},
        {"$JS.ACK.sap.c1.1.+1.1.1.0", false, NULL, 0, 0},
        {"$JS.ACK.sap.c1.1.-1.1.1.0", false, NULL, 0, 0},
        {"$JS.ACK.sap.c1.1.1.1./.0", false, NULL, 0, 0}, /* the byte before '0' */
        {"$JS.ACK.sap.c1.1.1.1.:.0", false, NULL, 0, 0}, /* the byte after '9' */
        {"$JS.ACK.sap.c1.0.1.1.1.0", false, NULL, 0, 0}, /* delivered 0 */
        {"$JS.ACK.sap.c1.x.1.1.1.0", false, NULL, 0, 0},
        {"$JS.ACK.sap.c1.1.1.1.1", false, NULL, 0, 0}, /* too few tokens */
        {"$JS.ACK.sap..1.1.1.1.0", false, NULL, 0, 0}, /* empty token */
        {"$JS.ACK.sap.c1.1.1.1.1.0.", false, NULL, 0, 0},
        {"$JS.ACK.a.b.c.d.1.1.1.1.0.e.f.g.h", false, NULL, 0, 0},
        {"_INBOX.abc.c1.1", false, NULL, 0, 0},
        {"$JS.ACK.", false, NULL, 0, 0},
        {"", false, NULL, 0, 0},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_disp_meta m = {"untouched", 9, 77, 77};
        bool ok = jb_disp_parse_ack_subject(cases[i].subject, strlen(cases[i].subject), &m);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        if (ok != cases[i].ok)
            fprintf(stderr, "case %zu: %s\n", i, cases[i].subject);
        if (!cases[i].ok) {
            CU_ASSERT_EQUAL(m.delivered, 77); /* out-param untouched */
            continue;
        }
        CU_ASSERT_TRUE(m.consumer_len == strlen(cases[i].consumer) &&
                       memcmp(m.consumer, cases[i].consumer, m.consumer_len) == 0);
        CU_ASSERT_EQUAL(m.delivered, cases[i].delivered);
        CU_ASSERT_EQUAL(m.stream_seq, cases[i].sseq);
    }
}

/* The length bounds the parse: bytes past it are never read. */
static void test_length_bounds(void)
{
    const char *s = "$JS.ACK.sap.c1.4.5.6.7.8.junk";
    jb_disp_meta m;
    CU_ASSERT_TRUE(jb_disp_parse_ack_subject(s, strlen(s) - 5, &m));
    CU_ASSERT_EQUAL(m.delivered, 4);
    CU_ASSERT_FALSE(jb_disp_parse_ack_subject(s, strlen(s) - 7, &m));
}

/* DISPATCH_LOOPS: the loop that owns a consumer is FNV-1a of its name mod N, the
 * same in every process and every build (a consumer never moves), always in
 * range, and 1 loop takes everything. */
static void test_loop_of_consumer(void)
{
    /* FNV-1a 32 of "a" is 0xe40c292c = 3826002220. */
    CU_ASSERT_EQUAL(jb_dloop_of("a", 64), (int)(3826002220u % 64));
    CU_ASSERT_EQUAL(jb_dloop_of("a", 3), (int)(3826002220u % 3));
    CU_ASSERT_EQUAL(jb_dloop_of("", 7), (int)(2166136261u % 7)); /* the offset basis */
    int used[64] = {0};
    for (unsigned i = 0; i < 640; i++) {
        char name[33];
        snprintf(name, sizeof(name), "%032x", i * 2654435761u);
        CU_ASSERT_EQUAL(jb_dloop_of(name, 1), 0);
        int l = jb_dloop_of(name, 64);
        CU_ASSERT_TRUE(l >= 0 && l < 64);
        if (l >= 0 && l < 64)
            used[l]++;
        CU_ASSERT_EQUAL(jb_dloop_of(name, 64), l); /* stable */
    }
    /* Spread: 640 names over 64 loops leave none empty. */
    for (int l = 0; l < 64; l++)
        CU_ASSERT_TRUE(used[l] > 0);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"ack_subjects", test_ack_subjects},
        {"length_bounds", test_length_bounds},
        {"loop_of_consumer", test_loop_of_consumer},
    };
    return jb_cunit_main("dispatcher_pull", NULL, NULL, cases, JB_CASES_N(cases));
}
