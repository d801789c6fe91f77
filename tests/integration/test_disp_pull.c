/* Dispatcher pull requests against a real nats-server: a busy consumer's request
 * stays open across events (far fewer requests and 408s than events at a low rate),
 * a request the server ends at its expiry is followed by a new one at once, a
 * backlog streams on one request paced by MaxAckPending, and a busy stream is
 * relayed by a fresh request before it expires.
 * The test's own connection sees every pull request ($JS.API.CONSUMER.MSG.NEXT.>)
 * and everything sent to the dispatcher's reply subjects (_INBOX.>), through one
 * subscription: one delivery thread records them in the order nats-server sent them
 * (two subscriptions, two threads, could record a 408 after the request it caused). */
#include <pthread.h>

#include "test_disp_env.h"

#define TYPE "order.created.v1"
#define N    200
#define MAXR 4096

typedef struct seen {
    int64_t t;
    char kind; /* 'R' pull request, 'T' 408, 'S' other status, 'M' anything else */
    int batch;
    bool no_wait;
    long id; /* R: the request id in its reply subject; T: the id its subject names */
} seen;

static struct {
    pthread_mutex_t mu;
    seen r[MAXR];
    size_t n;
    char consumer[33];
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void add(char kind, int batch, bool no_wait, const char *subject)
{
    /* <inbox>.<consumer>.<request id> */
    const char *dot = subject != NULL ? strrchr(subject, '.') : NULL;
    long id = dot != NULL ? strtol(dot + 1, NULL, 10) : -1;
    pthread_mutex_lock(&rec.mu);
    if (rec.n < MAXR)
        rec.r[rec.n++] = (seen){jb_now_monotonic_ns(), kind, batch, no_wait, id};
    pthread_mutex_unlock(&rec.mu);
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    (void)nc, (void)sub, (void)ud;
    const char *subj = natsMsg_GetSubject(m);
    if (strstr(subj, rec.consumer) != NULL) {
        char body[256];
        int len = natsMsg_GetDataLength(m);
        snprintf(body, sizeof(body), "%.*s", len < 255 ? len : 255, natsMsg_GetData(m));
        const char *b = strstr(body, "\"batch\":");
        add('R', b != NULL ? (int)strtol(b + 8, NULL, 10) : 0, strstr(body, "no_wait") != NULL,
            natsMsg_GetReply(m));
    }
    natsMsg_Destroy(m);
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    (void)nc, (void)sub, (void)ud;
    /* Only what goes to the dispatcher's replies for the consumer: <inbox>.<consumer>.<id>. */
    if (strstr(natsMsg_GetSubject(m), rec.consumer) != NULL) {
        const char *st = NULL;
        if (natsMsgHeader_Get(m, "Status", &st) == NATS_OK && natsMsg_GetDataLength(m) == 0)
            add(strcmp(st, "408") == 0 ? 'T' : 'S', 0, false, natsMsg_GetSubject(m));
        else
            add('M', 0, false, NULL);
    }
    natsMsg_Destroy(m);
}

static void on_any(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    const char *subj = natsMsg_GetSubject(m);
    if (strncmp(subj, "$JS.API.CONSUMER.MSG.NEXT.", 26) == 0)
        on_request(nc, sub, m, ud);
    else if (strncmp(subj, "_INBOX.", 7) == 0)
        on_reply(nc, sub, m, ud);
    else
        natsMsg_Destroy(m);
}

static size_t count(char kind, int64_t from, int64_t to)
{
    size_t k = 0;
    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++)
        k += rec.r[i].kind == kind && rec.r[i].t >= from && rec.r[i].t <= to;
    pthread_mutex_unlock(&rec.mu);
    return k;
}

static jb_tproc *setup(denv *e, natsSubscription **subs)
{
    if (!denv_start(e) || !denv_apply(e, "orders", TYPE, "\"maxInFlightMessages\":\"20\"", NULL))
        return NULL;
    denv_consumer("orders", TYPE, rec.consumer);
    rec.n = 0;
    if (natsConnection_Subscribe(&subs[0], e->nc, ">", on_any, NULL) != NATS_OK ||
        natsConnection_Flush(e->nc) != NATS_OK)
        return NULL;
    jb_tproc *p = denv_dispatcher(e, NULL, NULL);
    if (p == NULL || !denv_wait_consumer(e, "orders", TYPE, 15000)) {
        denv_dump_log(p);
        jb_tproc_stop(p);
        return NULL;
    }
    jb_sleep_ms(500); /* the first (long-poll) request is in place */
    return p;
}

/* Publishes n events with ids <prefix>-<i>, gap_ms apart (0: at once); returns how
 * many were stored. */
static size_t publish_paced(denv *e, const char *prefix, size_t n, int gap_ms)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        char id[48];
        snprintf(id, sizeof(id), "%s-%zu", prefix, i);
        ok += denv_publish(e, TYPE, id, "{}", NULL);
        if (gap_ms > 0)
            jb_sleep_ms(gap_ms);
    }
    return ok;
}

static void teardown(denv *e, jb_tproc *p, natsSubscription **subs)
{
    jb_tproc_stop(p);
    for (int i = 0; i < 2; i++)
        natsSubscription_Destroy(subs[i]);
    denv_stop(e);
}

/* N events at about 100 a second: before, every event cost a no_wait request and a
 * 408 (nats-server 2.9 ends such a request right after its first message); now the
 * request stays open until its batch (the 20 free slots) is filled. */
static void test_few_requests_at_a_low_rate(void)
{
    denv e;
    natsSubscription *subs[2] = {NULL, NULL};
    jb_tproc *p = setup(&e, subs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int64_t t0 = jb_now_monotonic_ns();
    CU_ASSERT_EQUAL(publish_paced(&e, "slow", N, 10), N);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "slow", N, 30000), N);
    int64_t t1 = jb_now_monotonic_ns();
    size_t req = count('R', t0, t1), t408 = count('T', t0, t1);
    size_t held = 0;
    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++)
        held += rec.r[i].kind == 'R' && !rec.r[i].no_wait && rec.r[i].batch > 1;
    pthread_mutex_unlock(&rec.mu);
    fprintf(stderr, "  %d events: %zu pull requests (%zu held open), %zu 408s\n", N, req, held,
            t408);
    CU_ASSERT_TRUE(held >= 1);
    CU_ASSERT_TRUE(req * 5 <= N);
    CU_ASSERT_TRUE(t408 * 5 <= N);
    denv_dump_log(p);
    teardown(&e, p, subs);
}

/* After the last event the open request expires on the server with a 408 and the
 * next request (a long poll: it brought nothing) follows at once, not after the
 * local grace; an event after the pause is delivered by that long poll. */
static void test_expiry_followed_at_once(void)
{
    denv e;
    natsSubscription *subs[2] = {NULL, NULL};
    jb_tproc *p = setup(&e, subs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (int round = 0; round < 3; round++) {
        int64_t t0 = jb_now_monotonic_ns();
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "r%d", round);
        CU_ASSERT_EQUAL(publish_paced(&e, prefix, 5, 20), 5);
        CU_ASSERT_EQUAL(denv_wait_distinct(&e, prefix, 5, 15000), 5);
        /* The expiry (0.5 s) of the request open after the burst, the 408 of the one
         * after it (nothing arrived), and the long poll that follows. */
        jb_sleep_ms(2500);
        int64_t t1 = jb_now_monotonic_ns();
        pthread_mutex_lock(&rec.mu);
        int64_t last_408 = 0, worst = -1;
        size_t ends = 0;
        const seen *last_req = NULL;
        for (size_t i = 0; i < rec.n; i++) {
            const seen *s = &rec.r[i];
            if (s->t < t0 || s->t > t1)
                continue;
            if (s->kind == 'T') {
                last_408 = s->t;
                ends++;
            } else if (s->kind == 'R') {
                if (last_408 != 0 && s->t - last_408 > worst)
                    worst = s->t - last_408;
                last_408 = 0;
                last_req = s;
            }
        }
        bool long_poll = last_req != NULL && last_req->batch == 1 && !last_req->no_wait;
        pthread_mutex_unlock(&rec.mu);
        fprintf(stderr, "  round %d: %zu 408s, each followed by a request within %.1f ms\n", round,
                ends, (double)worst / 1e6);
        CU_ASSERT_TRUE(ends >= 1);
        /* Every 408 was followed by a request, well inside the local grace (250 ms). */
        CU_ASSERT_EQUAL(last_408, 0);
        CU_ASSERT_TRUE(worst >= 0 && worst < 200000000LL);
        /* The last one brought nothing: the consumer is idle and long-polls. */
        CU_ASSERT_TRUE(long_poll);
    }
    /* The long poll in place serves an event after the pause at once. */
    int64_t t = jb_now_monotonic_ns();
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "late-0", "{}", NULL));
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "late", 1, 15000), 1);
    CU_ASSERT_TRUE(jb_now_monotonic_ns() - t < 2000000000LL);
    denv_dump_log(p);
    teardown(&e, p, subs);
}

/* A backlog of 400 events (maxInFlightMessages 20) stored at once: the consumer's
 * stream (a batch of 4096) brings them on far fewer requests than one per window's
 * worth: each ack lets the server send the next on the open request. */
static void test_backlog_streams(void)
{
    denv e;
    natsSubscription *subs[2] = {NULL, NULL};
    jb_tproc *p = setup(&e, subs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int64_t t0 = jb_now_monotonic_ns();
    CU_ASSERT_EQUAL(publish_paced(&e, "burst", 2 * N, 0), 2 * N);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "burst", 2 * N, 30000), 2 * N);
    int64_t t1 = jb_now_monotonic_ns();
    size_t req = count('R', t0, t1), streams = 0;
    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++)
        streams += rec.r[i].kind == 'R' && rec.r[i].batch == 4096 && !rec.r[i].no_wait;
    pthread_mutex_unlock(&rec.mu);
    fprintf(stderr, "  %d events stored at once: %zu pull requests (%zu streams) in %.0f ms\n",
            2 * N, req, streams, (double)(t1 - t0) / 1e6);
    CU_ASSERT_TRUE(streams >= 1);
    /* With at most a window (20) per request, 400 events need 20 requests. */
    CU_ASSERT_TRUE(req < (size_t)(2 * N / 20));
    denv_dump_log(p);
    teardown(&e, p, subs);
}

/* Events at 20 a second for 3 s (a window of 20 is not filled within a request's
 * 0.5 s): the busy stream is relayed, i.e. the request after it is sent before
 * the server ends it with its 408, not in answer to that 408. */
static void test_busy_stream_relayed(void)
{
    denv e;
    natsSubscription *subs[2] = {NULL, NULL};
    jb_tproc *p = setup(&e, subs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(publish_paced(&e, "paced", 60, 50), 60);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "paced", 60, 30000), 60);
    jb_sleep_ms(1000);
    size_t relayed = 0, answered = 0;
    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++) {
        if (rec.r[i].kind != 'T' || rec.r[i].id < 0)
            continue;
        bool before = false;
        for (size_t j = 0; j < i; j++)
            before = before || (rec.r[j].kind == 'R' && rec.r[j].id == rec.r[i].id + 1);
        relayed += before;
        answered += !before;
    }
    pthread_mutex_unlock(&rec.mu);
    fprintf(stderr, "  60 events at 20/s: %zu 408s after their successor was sent, %zu before\n",
            relayed, answered);
    CU_ASSERT_TRUE(relayed >= 1);
    denv_dump_log(p);
    teardown(&e, p, subs);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"few_requests_at_a_low_rate", test_few_requests_at_a_low_rate},
        {"expiry_followed_at_once", test_expiry_followed_at_once},
        {"backlog_streams", test_backlog_streams},
        {"busy_stream_relayed", test_busy_stream_relayed},
    };
    return denv_main("disp_pull", cases, JB_CASES_N(cases));
}
