/* cli/host.c's one signal strategy (jb_host_signals_*): SIGINT and SIGTERM that
 * arrive while a process starts stay pending until their events are registered on
 * the loop, and then arrive as callbacks on the loop thread, counted; before this
 * strategy a SIGTERM during start killed the process (exit 143). Real signals, a
 * real libevent loop. */
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "cli/jb_host.h"
#include "jb_cunit.h"

typedef struct seen {
    int sigs[4];
    int nths[4];
    int n;
    pthread_t thread;
    bool on_loop_thread;
    struct event_base *base;
} seen;

static void on_signal(int sig, int nth, void *ud)
{
    seen *s = ud;
    if (s->n < 4) {
        s->sigs[s->n] = sig;
        s->nths[s->n] = nth;
    }
    s->n++;
    s->on_loop_thread = pthread_equal(pthread_self(), s->thread) != 0;
    event_base_loopbreak(s->base);
}

/* Runs base until a callback came or 60 s passed (a timer, never a sleep). */
static void loop_once(struct event_base *base)
{
    struct timeval tv = {60, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static bool pending(int sig)
{
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, sig) == 1;
}

static void test_signal_during_start_waits_for_the_loop(void)
{
    sigset_t old;
    jb_host_signals_block(&old);
    /* A SIGTERM "during start": blocked, so it waits instead of killing us. */
    CU_ASSERT_EQUAL_FATAL(raise(SIGTERM), 0);
    CU_ASSERT_TRUE(pending(SIGTERM));
    seen s = {.thread = pthread_self()};
    s.base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.base);
    jb_host_signals *sigs = jb_host_signals_start(s.base, on_signal, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sigs);
    CU_ASSERT_FALSE(pending(SIGTERM)); /* unblocked: delivered to libevent's handler */
    loop_once(s.base);
    CU_ASSERT_EQUAL(s.n, 1);
    CU_ASSERT_EQUAL(s.sigs[0], SIGTERM);
    CU_ASSERT_EQUAL(s.nths[0], 1);
    CU_ASSERT_TRUE(s.on_loop_thread);
    /* A second signal is counted as the second (the host ends the loop at once). */
    CU_ASSERT_EQUAL(raise(SIGINT), 0);
    loop_once(s.base);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(s.sigs[1], SIGINT);
    CU_ASSERT_EQUAL(s.nths[1], 2);
    CU_ASSERT_STRING_EQUAL(jb_host_signal_name(SIGTERM), "SIGTERM");
    CU_ASSERT_STRING_EQUAL(jb_host_signal_name(SIGINT), "SIGINT");
    jb_host_signals_stop(sigs);
    event_base_free(s.base);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Threads started after jb_host_signals_block inherit the blocked mask, so a
 * process-directed signal can only reach the loop's thread once it unblocks. */
static void *read_mask(void *arg)
{
    sigset_t *m = arg;
    pthread_sigmask(SIG_SETMASK, NULL, m);
    return NULL;
}

static void test_threads_inherit_the_mask(void)
{
    sigset_t old, m;
    jb_host_signals_block(&old);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, read_mask, &m), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(sigismember(&m, SIGTERM), 1);
    CU_ASSERT_EQUAL(sigismember(&m, SIGINT), 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"a signal during start waits for the loop", test_signal_during_start_waits_for_the_loop},
        {"threads started later inherit the mask", test_threads_inherit_the_mask},
    };
    return jb_cunit_main("host_signals", NULL, NULL, cases, JB_CASES_N(cases));
}
