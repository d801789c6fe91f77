/* DISPATCH_LOOPS: consumers sharded over several dispatcher loops. What a user
 * sees must not change with the loop count: every event at its sink once, with
 * the same content as with one loop, maxInFlightMessages: 1 still in order,
 * subscriptions updated and deleted while running, a graceful stop that drains
 * every loop, the metrics summed over the loops, and a clear error for a bad
 * value. */
#include <signal.h>
#include <unistd.h>

#include "test_disp_env.h"

#define NSUBS 6
#define PER   40

/* Subscription i: default/shard-<i> on type shard<i>.created.v1, events
 * "s<i>-<k>". */
static void names(int i, char name[32], char type[64], char prefix[16])
{
    snprintf(name, 32, "shard-%d", i);
    snprintf(type, 64, "shard%d.created.v1", i);
    snprintf(prefix, 16, "s%d", i);
}

/* denv_distinct_ok / denv_wait_distinct on sink s instead of e's. */
static size_t wait_at(denv *e, jb_tsink *s, const char *prefix, size_t n, int timeout_ms)
{
    denv view = *e;
    view.sink = s;
    return denv_wait_distinct(&view, prefix, n, timeout_ms);
}

static size_t distinct_at(denv *e, jb_tsink *s, const char *prefix, size_t n, size_t *dups)
{
    denv view = *e;
    view.sink = s;
    return denv_distinct_ok(&view, prefix, n, dups);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What sink s received, one line per request "<status> <ce-id> <ce-type>
 * <content-type> <body>", sorted (loops deliver concurrently: the order across
 * consumers is not part of the contract), joined; malloc'd. */
static char *sink_record(jb_tsink *s)
{
    size_t n = jb_tsink_count(s);
    char **lines = calloc(n + 1, sizeof(*lines));
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        jb_treq r;
        if (!jb_tsink_get(s, i, &r)) {
            lines[i] = strdup("?\n");
            continue;
        }
        const char *id = jb_treq_header(&r, "ce-id");
        const char *ty = jb_treq_header(&r, "ce-type");
        const char *ct = jb_treq_header(&r, "content-type");
        size_t cap = 256 + r.body_len;
        lines[i] = malloc(cap);
        snprintf(lines[i], cap, "%d %s %s %s %.*s\n", r.status, id ? id : "-", ty ? ty : "-",
                 ct ? ct : "-", (int)r.body_len, (const char *)r.body);
        total += strlen(lines[i]);
        jb_treq_free(&r);
    }
    qsort(lines, n, sizeof(*lines), cmp_str);
    char *out = calloc(1, total);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (lines[i] != NULL) {
            size_t l = strlen(lines[i]);
            memcpy(out + used, lines[i], l);
            used += l;
        }
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Loops that logged a "consumer ready" (the loop= field of its line). */
static int loops_used(jb_tproc *p, int max)
{
    char *log = jb_tproc_log(p);
    int used = 0;
    for (int i = 0; log != NULL && i < max; i++) {
        char want[32];
        snprintf(want, sizeof(want), "loop=%d", i);
        for (const char *at = strstr(log, "consumer ready"); at != NULL;
             at = strstr(at + 1, "consumer ready")) {
            const char *eol = strchr(at, '\n');
            const char *f = strstr(at, want);
            if (f != NULL && (eol == NULL || f < eol) &&
                (f[strlen(want)] < '0' || f[strlen(want)] > '9')) {
                used++;
                break;
            }
        }
    }
    free(log);
    return used;
}

typedef struct world {
    denv e;
    jb_tsink *sinks[NSUBS];
    jb_tproc *p;
    int admin;
} world;

/* NATS, NSUBS subscriptions each with a sink of its own (config: extra spec.config
 * members or NULL), and a dispatcher with DISPATCH_LOOPS=loops whose consumers all
 * exist. */
static bool world_start(world *w, int loops, const char *config, const char *const *more)
{
    memset(w, 0, sizeof(*w));
    if (!denv_start(&w->e))
        return false;
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        w->sinks[i] = jb_tsink_start();
        if (w->sinks[i] == NULL ||
            !denv_apply(&w->e, name, type, config, jb_tsink_url(w->sinks[i])))
            return false;
    }
    char lenv[32];
    snprintf(lenv, sizeof(lenv), "DISPATCH_LOOPS=%d", loops);
    const char *env[8] = {lenv};
    for (size_t k = 0; more != NULL && more[k] != NULL && k < 6; k++)
        env[k + 1] = more[k];
    w->p = denv_dispatcher(&w->e, &w->admin, env);
    if (w->p == NULL)
        return false;
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        if (!denv_wait_consumer(&w->e, name, type, 20000)) {
            denv_dump_log(w->p);
            return false;
        }
    }
    return true;
}

static void world_stop(world *w)
{
    jb_tproc_stop(w->p);
    for (int i = 0; i < NSUBS; i++)
        jb_tsink_stop(w->sinks[i]);
    denv_stop(&w->e);
}

/* per events to every subscription; batch 0 has ids "s<i>-<k>", batch 1 "t<i>-<k>"
 * (ids are the stream's deduplication key: a second batch needs new ones). */
static void publish_batch(world *w, size_t per, int batch)
{
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        if (batch == 1)
            prefix[0] = 't';
        CU_ASSERT_EQUAL(denv_publish_n(&w->e, type, prefix, per), per);
    }
}

static void publish_all(world *w, size_t per)
{
    publish_batch(w, per, 0);
}

/* What `jetbridge stats` shows for this dispatcher (malloc'd, NULL on failure). */
static char *stats_of(world *w)
{
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", w->admin);
    const char *argv[] = {"stats", "--metrics", url, NULL};
    const char *env[] = {w->e.url_env, NULL};
    char *out = NULL;
    if (jb_trun_capture(argv, env, &out, NULL, 20000) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* Every sink got its PER events exactly once; returns each sink's record and what
 * `jetbridge stats` showed. */
static void deliver_all(int loops, char *records[NSUBS], char **stats)
{
    world w;
    if (!world_start(&w, loops, NULL, NULL)) {
        world_stop(&w);
        CU_FAIL_FATAL("set-up");
    }
    publish_all(&w, PER);
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        CU_ASSERT_EQUAL(wait_at(&w.e, w.sinks[i], prefix, PER, 60000), PER);
    }
    /* Acked: nothing comes again, nothing went to another subscription's sink. */
    jb_sleep_ms(1500);
    for (int i = 0; i < NSUBS; i++) {
        CU_ASSERT_EQUAL(jb_tsink_count(w.sinks[i]), PER);
        records[i] = sink_record(w.sinks[i]);
    }
    /* The metrics are the process's, whichever loop delivered. */
    char *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(jb_http(w.admin, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL), 200);
    for (int i = 0; body != NULL && i < NSUBS; i++) {
        char want[256];
        snprintf(want, sizeof(want), "subscription_name=\"shard-%d\"", i);
        const char *at = strstr(body, "eventing_ec_nats_delivery_per_subscription_total{");
        bool found = false;
        for (; at != NULL && !found;
             at = strstr(at + 1, "eventing_ec_nats_delivery_per_subscription_total{")) {
            const char *eol = strchr(at, '\n');
            const char *s = strstr(at, want);
            const char *c = strstr(at, "response_code=\"200\"");
            if (s != NULL && c != NULL && eol != NULL && s < eol && c < eol)
                found = strncmp(eol - 3, " 40", 3) == 0;
        }
        CU_ASSERT_TRUE(found);
    }
    CU_ASSERT_TRUE(body != NULL && strstr(body, "\njetbridge_dispatcher_in_flight 0\n") != NULL);
    free(body);
    *stats = stats_of(&w);
    for (int i = 0; i < NSUBS; i++) {
        /* Its row: SUBSCRIPTION TYPE DELIVERED ...: 40 delivered. */
        char sub[32], type[64], prefix[16], row[160];
        names(i, sub, type, prefix);
        snprintf(row, sizeof(row), "default/%s", sub);
        const char *at = *stats != NULL ? strstr(*stats, row) : NULL;
        const char *d = at != NULL ? strstr(at, type) : NULL;
        CU_ASSERT_TRUE(d != NULL &&
                       strncmp(d + strlen(type) + strspn(d + strlen(type), " "), "40 ", 3) == 0);
        if (getenv("JB_TEST_LOGS") != NULL && i == 0 && *stats != NULL)
            fprintf(stderr, "%s", *stats);
    }
    if (loops > 1)
        /* The consumers really were spread (6 names over the loops). */
        CU_ASSERT_TRUE(loops_used(w.p, loops) >= 2);
    world_stop(&w);
}

/* Several subscriptions under 3 loops: at each sink exactly what one loop
 * delivers, event for event. */
static void test_same_as_one_loop(void)
{
    char *one[NSUBS] = {0}, *three[NSUBS] = {0};
    char *stats1 = NULL, *stats3 = NULL;
    deliver_all(1, one, &stats1);
    deliver_all(3, three, &stats3);
    /* `jetbridge stats` reads the same (delivered 40 each, nothing pending). */
    CU_ASSERT_TRUE(stats1 != NULL && stats3 != NULL && strcmp(stats1, stats3) == 0);
    if (stats1 != NULL && stats3 != NULL && strcmp(stats1, stats3) != 0)
        fprintf(stderr, "stats, 1 loop:\n%s\nstats, 3 loops:\n%s\n", stats1, stats3);
    free(stats1);
    free(stats3);
    for (int i = 0; i < NSUBS; i++) {
        CU_ASSERT_TRUE(one[i] != NULL && three[i] != NULL && strcmp(one[i], three[i]) == 0);
        free(one[i]);
        free(three[i]);
    }
}

/* maxInFlightMessages: 1 keeps each subscription's events in stream order, each
 * consumer on whichever of the 2 loops owns it. */
static void test_ordering_under_two_loops(void)
{
    world w;
    if (!world_start(&w, 2, "\"maxInFlightMessages\":\"1\"", NULL)) {
        world_stop(&w);
        CU_FAIL_FATAL("set-up");
    }
    for (int i = 0; i < NSUBS; i++)
        jb_tsink_script(w.sinks[i], NULL, 0, 200, 0, 3);
    publish_all(&w, PER);
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        CU_ASSERT_EQUAL(wait_at(&w.e, w.sinks[i], prefix, PER, 60000), PER);
        CU_ASSERT_EQUAL(jb_tsink_max_concurrent(w.sinks[i]), 1);
        for (size_t k = 0; k < PER; k++) {
            jb_treq r;
            CU_ASSERT_TRUE_FATAL(jb_tsink_get(w.sinks[i], k, &r));
            char want[32];
            snprintf(want, sizeof(want), "%s-%zu", prefix, k);
            CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), want);
            jb_treq_free(&r);
        }
    }
    CU_ASSERT_TRUE(loops_used(w.p, 2) == 2);
    world_stop(&w);
}

/* Requests at s whose ce-id starts with prefix. */
static size_t count_prefix(jb_tsink *s, const char *prefix)
{
    size_t n = jb_tsink_count(s), got = 0;
    for (size_t i = 0; i < n; i++) {
        jb_treq r;
        if (!jb_tsink_get(s, i, &r))
            continue;
        const char *id = jb_treq_header(&r, "ce-id");
        got += id != NULL && strncmp(id, prefix, strlen(prefix)) == 0;
        jb_treq_free(&r);
    }
    return got;
}

static bool consumer_exists(denv *e, const char *name, const char *type)
{
    char consumer[33];
    denv_consumer(name, type, consumer);
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_GetConsumerInfo(&ci, e->js, "sap", consumer, NULL, NULL);
    jsConsumerInfo_Destroy(ci);
    return s == NATS_OK;
}

/* Under 3 loops, one subscription moves to a new sink and another is deleted
 * while events flow: the moved one's events reach the new sink, the deleted one
 * gets nothing more, the others are untouched. */
static void test_update_and_delete_while_running(void)
{
    world w;
    if (!world_start(&w, 3, NULL, NULL)) {
        world_stop(&w);
        CU_FAIL_FATAL("set-up");
    }
    publish_all(&w, 10);
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        CU_ASSERT_EQUAL(wait_at(&w.e, w.sinks[i], prefix, 10, 30000), 10);
    }
    /* Update shard-1: same consumer, a new sink. */
    jb_tsink *moved = jb_tsink_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(moved);
    CU_ASSERT_TRUE_FATAL(
        denv_apply(&w.e, "shard-1", "shard1.created.v1", NULL, jb_tsink_url(moved)));
    /* Delete shard-2 (the CLI, as a user would). */
    const char *del[] = {"sub", "delete", "shard-2", "-n", "default", NULL};
    const char *env[] = {w.e.url_env, NULL};
    CU_ASSERT_EQUAL(jb_trun_capture(del, env, NULL, NULL, 20000), 0);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = !consumer_exists(&w.e, "shard-2", "shard2.created.v1");
        if (!gone)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE_FATAL(gone);
    /* The update lands on the loop that owns shard-1: probe until it shows. */
    bool switched = false;
    for (int k = 0; k < 100 && !switched; k++) {
        char id[32];
        snprintf(id, sizeof(id), "probe-%d", k);
        CU_ASSERT_TRUE(denv_publish(&w.e, "shard1.created.v1", id, "{}", NULL));
        switched = jb_tsink_wait(moved, 1, 300) >= 1;
    }
    CU_ASSERT_TRUE_FATAL(switched);
    publish_batch(&w, 30, 1);
    CU_ASSERT_EQUAL(wait_at(&w.e, moved, "t1", 30, 30000), 30);
    for (int i = 0; i < NSUBS; i++) {
        if (i == 1 || i == 2)
            continue;
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        CU_ASSERT_TRUE(jb_tsink_wait(w.sinks[i], 40, 30000) >= 40);
    }
    jb_sleep_ms(1500);
    /* The old sink got no event of the second batch. */
    CU_ASSERT_EQUAL(count_prefix(w.sinks[1], "t1-"), 0);
    CU_ASSERT_EQUAL(jb_tsink_count(w.sinks[2]), 10); /* nothing after the delete */
    for (int i = 0; i < NSUBS; i++) {
        if (i == 1 || i == 2)
            continue;
        CU_ASSERT_EQUAL(jb_tsink_count(w.sinks[i]), 40);
    }
    denv_dump_log(w.p);
    jb_tsink_stop(moved);
    world_stop(&w);
}

/* SIGTERM mid-load under 3 loops: every loop stops (its in-flight deliveries
 * finish), the process exits 0, and a second dispatcher delivers the rest:
 * nothing is lost. */
static void test_graceful_stop_drains_every_loop(void)
{
    static const char *const more[] = {"JS_CONSUMER_ACK_WAIT=2s", "SHUTDOWN_GRACE=5s", NULL};
    world w;
    if (!world_start(&w, 3, "\"maxInFlightMessages\":\"5\"", more)) {
        world_stop(&w);
        CU_FAIL_FATAL("set-up");
    }
    for (int i = 0; i < NSUBS; i++)
        jb_tsink_script(w.sinks[i], NULL, 0, 200, 0, 100);
    publish_all(&w, PER);
    /* Every sink is busy: every loop has deliveries in flight. */
    for (int i = 0; i < NSUBS; i++)
        CU_ASSERT_TRUE(jb_tsink_wait(w.sinks[i], 2, 20000) >= 2);
    jb_tproc_signal(w.p, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(w.p, 20000), 0);
    char *log = jb_tproc_log(w.p);
    for (int i = 0; i < 3; i++) {
        char want[48];
        snprintf(want, sizeof(want), "stopping loop=%d", i);
        CU_ASSERT_PTR_NOT_NULL(log != NULL ? strstr(log, want) : NULL);
    }
    free(log);
    size_t before = 0;
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        before += distinct_at(&w.e, w.sinks[i], prefix, PER, NULL);
        jb_tsink_script(w.sinks[i], NULL, 0, 200, 0, 0);
    }
    CU_ASSERT_TRUE(before < (size_t)NSUBS * PER); /* it really stopped mid-load */
    jb_tproc_stop(w.p);
    w.p = denv_dispatcher(&w.e, NULL, more);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w.p);
    for (int i = 0; i < NSUBS; i++) {
        char name[32], type[64], prefix[16];
        names(i, name, type, prefix);
        CU_ASSERT_EQUAL(wait_at(&w.e, w.sinks[i], prefix, PER, 60000), PER);
    }
    world_stop(&w);
}

/* A bad value: a clear error naming the key, exit 2, before anything runs; more
 * loops than DISPATCHER_MAX_CONCURRENT: refused at start, exit 1. */
static void test_bad_values(void)
{
    static const char *const bad[] = {"0", "65", "x", "-1", "2x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL, *err = NULL;
        const char *argv[] = {"dispatcher", "--dispatch-loops", bad[i], NULL};
        const char *env[] = {"NATS_URL=nats://127.0.0.1:1", NULL};
        CU_ASSERT_EQUAL(jb_trun_capture(argv, env, &out, &err, 20000), 2);
        CU_ASSERT_TRUE(err != NULL && strstr(err, "--dispatch-loops") != NULL &&
                       strstr(err, "1..64") != NULL);
        free(out);
        free(err);
        char envv[32];
        snprintf(envv, sizeof(envv), "DISPATCH_LOOPS=%s", bad[i]);
        const char *env2[] = {"NATS_URL=nats://127.0.0.1:1", envv, NULL};
        const char *argv2[] = {"dispatcher", NULL};
        out = err = NULL;
        CU_ASSERT_EQUAL(jb_trun_capture(argv2, env2, &out, &err, 20000), 2);
        CU_ASSERT_TRUE(err != NULL && strstr(err, "DISPATCH_LOOPS") != NULL);
        free(out);
        free(err);
    }
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char *out = NULL, *err = NULL;
    const char *argv[] = {
        "dispatcher", "--dispatch-loops", "4",           "--dispatcher-max-concurrent",
        "3",          "--metrics-addr",   "127.0.0.1:0", NULL};
    const char *env[] = {e.url_env, NULL};
    CU_ASSERT_EQUAL(jb_trun_capture(argv, env, &out, &err, 30000), 1);
    CU_ASSERT_TRUE(err != NULL && strstr(err, "DISPATCH_LOOPS (4) is larger than "
                                              "DISPATCHER_MAX_CONCURRENT (3)") != NULL);
    if (err != NULL && strstr(err, "DISPATCH_LOOPS (4)") == NULL)
        fprintf(stderr, "%s\n", err);
    free(out);
    free(err);
    denv_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"same_as_one_loop", test_same_as_one_loop},
        {"ordering_under_two_loops", test_ordering_under_two_loops},
        {"update_and_delete_while_running", test_update_and_delete_while_running},
        {"graceful_stop_drains_every_loop", test_graceful_stop_drains_every_loop},
        {"bad_values", test_bad_values},
    };
    return denv_main("disp_loops", cases, JB_CASES_N(cases));
}
