/* dispatcher: the number of threads does not grow with the number of consumers
 * (one inbox subscription and pull requests from the loop, no thread per consumer),
 * and events still reach the subscriptions that have many neighbours. */
#include <unistd.h>

#include "test_disp_env.h"

#define NSUBS 200
/* What the process may use, whatever the number of consumers: the loop, nats.c's
 * own threads, the reconciler, the dead-letter and info threads, and libcurl's
 * resolver. A thread per consumer would be over 200. */
#define MAX_THREADS 32

/* Threads: of /proc/<pid>/status, or -1. */
static int threads_of(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *t = strstr(buf, "\nThreads:");
    if (t == NULL)
        return -1;
    t += 9;
    while (*t == ' ' || *t == '\t')
        t++;
    int v = 0;
    for (; *t >= '0' && *t <= '9'; t++)
        v = v * 10 + (*t - '0');
    return v;
}

static void type_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "order%d.created.v1", i);
}

static void test_threads_flat_with_200_subscriptions(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char type[64], name[32];
    for (int i = 0; i < NSUBS; i++) {
        type_of(i, type, sizeof(type));
        snprintf(name, sizeof(name), "sub-%d", i);
        if (!denv_apply(&e, name, type, NULL, NULL))
            CU_FAIL_FATAL("apply");
    }
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    pid_t pid = jb_tproc_pid(p);
    /* Every consumer exists (the reconciler made them all). */
    bool all = true;
    for (int i = 0; i < NSUBS && all; i++) {
        type_of(i, type, sizeof(type));
        snprintf(name, sizeof(name), "sub-%d", i);
        all = denv_wait_consumer(&e, name, type, 60000);
    }
    CU_ASSERT_TRUE_FATAL(all);
    int most = threads_of(pid);
    static const int targets[] = {0, 57, 123, NSUBS - 1};
    size_t sent = 0;
    for (size_t k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
        type_of(targets[k], type, sizeof(type));
        for (int j = 0; j < 3; j++) {
            char id[64];
            snprintf(id, sizeof(id), "thr-%zu", sent);
            sent += denv_publish(&e, type, id, "{}", NULL) ? 1 : 0;
        }
    }
    CU_ASSERT_EQUAL(sent, 12);
    /* While the events are delivered, the count stays under the bound. */
    for (int waited = 0; waited < 30000 && jb_tsink_count(e.sink) < sent; waited += 100) {
        int t = threads_of(pid);
        most = t > most ? t : most;
        jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "thr", sent, 30000), sent);
    int t = threads_of(pid);
    most = t > most ? t : most;
    fprintf(stderr, "dispatcher threads with %d consumers: at most %d\n", NSUBS, most);
    CU_ASSERT_TRUE(most > 0);
    CU_ASSERT_TRUE(most <= MAX_THREADS);
    if (most > MAX_THREADS || most <= 0)
        denv_dump_log(p);
    jb_tproc_stop(p);
    denv_stop(&e);
}

int main(void)
{
    /* Shared helpers this suite does not need. */
    (void)denv_publish_n;
    (void)denv_dlq_list;
    (void)denv_dlq_wait;
    static const jb_test_case cases[] = {
        {"threads_flat_with_200_subscriptions", test_threads_flat_with_200_subscriptions},
    };
    return denv_main("disp_threads", cases, JB_CASES_N(cases));
}
