/*
 * The harness itself, tested against the real things it drives: nats-server,
 * the HTTP sink, the jetbridge binary. Every other integration suite relies on it.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

/* ------------------------------------------------------------ nats-server */

static natsConnection *connect_to(const char *url)
{
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
        return NULL;
    return nc;
}

static bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_nats_starts_with_jetstream(void)
{
    jb_tnats *n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    CU_ASSERT(jb_tnats_port(n) > 0);
    char want[64];
    snprintf(want, sizeof(want), "nats://127.0.0.1:%d", jb_tnats_port(n));
    CU_ASSERT_STRING_EQUAL(jb_tnats_url(n), want);

    natsConnection *nc = connect_to(jb_tnats_url(n));
    CU_ASSERT_FATAL(nc != NULL);
    jsCtx *js = NULL;
    CU_ASSERT_FATAL(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "harness";
    const char *subjects[] = {"harness.>"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    CU_ASSERT(js_AddStream(&si, js, &cfg, NULL, &jerr) == NATS_OK);
    CU_ASSERT(si != NULL && strcmp(si->Config->Name, "harness") == 0);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    jb_tnats_stop(n);
}

/* Publishes `count` messages to harness.x and returns the stream's message count
 * as seen by a fresh connection, or -1. */
static int64_t stream_msgs(const char *url, bool create, int count)
{
    int64_t msgs = -1;
    natsConnection *nc = connect_to(url);
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    if (nc == NULL || natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        goto out;
    if (create) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = "keep";
        const char *subjects[] = {"harness.>"};
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        if (js_AddStream(&si, js, &cfg, NULL, NULL) != NATS_OK)
            goto out;
        jsStreamInfo_Destroy(si);
        si = NULL;
    }
    for (int i = 0; i < count; i++) {
        char data[32];
        int len = snprintf(data, sizeof(data), "m%d", i);
        if (js_Publish(NULL, js, "harness.x", data, len, NULL, NULL) != NATS_OK)
            goto out;
    }
    if (js_GetStreamInfo(&si, js, "keep", NULL, NULL) == NATS_OK)
        msgs = (int64_t)si->State.Msgs;
out:
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return msgs;
}

static void test_nats_restart_keeps_messages(void)
{
    jb_tnats *n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    int port = jb_tnats_port(n);
    CU_ASSERT(stream_msgs(jb_tnats_url(n), true, 3) == 3);

    CU_ASSERT(jb_tnats_kill(n));
    CU_ASSERT(jb_tnats_pid(n) == -1);
    CU_ASSERT(connect_to(jb_tnats_url(n)) == NULL); /* really down */
    CU_ASSERT_FATAL(jb_tnats_restart(n));
    CU_ASSERT(jb_tnats_port(n) == port);
    CU_ASSERT(stream_msgs(jb_tnats_url(n), false, 1) == 4);

    /* A crash (SIGKILL) keeps acknowledged messages too: the server wrote them to its
     * files before acking, and a killed process's writes survive it. */
    CU_ASSERT(jb_tnats_crash(n));
    CU_ASSERT_FATAL(jb_tnats_restart(n));
    CU_ASSERT(stream_msgs(jb_tnats_url(n), false, 0) == 4);
    jb_tnats_stop(n);
}

static void test_nats_stop_removes_store(void)
{
    jb_tnats *n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    pid_t pid = jb_tnats_pid(n);
    CU_ASSERT(pid > 0);
    char cmdline[64];
    snprintf(cmdline, sizeof(cmdline), "/proc/%d/cmdline", (int)pid);
    char *cl = NULL;
    size_t cl_len = 0;
    FILE *f = fopen(cmdline, "rb");
    CU_ASSERT_FATAL(f != NULL);
    cl = malloc(4096);
    cl_len = fread(cl, 1, 4095, f);
    fclose(f);
    /* argv: nats-server -js -a 127.0.0.1 -p PORT -sd STORE */
    const char *store = NULL;
    for (size_t i = 0; i < cl_len; i += strlen(cl + i) + 1)
        if (strcmp(cl + i, "-sd") == 0 && i + 4 < cl_len)
            store = cl + i + 4;
    CU_ASSERT_FATAL(store != NULL);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", store);
    free(cl);
    CU_ASSERT(stream_msgs(jb_tnats_url(n), true, 1) == 1);
    CU_ASSERT(dir_exists(dir));
    int port = jb_tnats_port(n);
    jb_tnats_stop(n);
    CU_ASSERT(!dir_exists(dir));
    CU_ASSERT(kill(pid, 0) != 0); /* reaped, gone */
    CU_ASSERT(jb_http(port, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL) == -1);
    jb_tnats_stop(NULL);
}

static void test_free_port_is_bindable(void)
{
    int p = jb_free_port();
    CU_ASSERT(p > 1024 && p < 65536);
    /* Nothing listens there: the client reports -1, not a hang. */
    CU_ASSERT(jb_http(p, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL) == -1);
}

static const jb_test_case cases[] = {
    {"nats starts with JetStream on a free port", test_nats_starts_with_jetstream},
    {"nats kill/crash and restart keep stored messages", test_nats_restart_keeps_messages},
    {"nats stop kills the server and removes the store", test_nats_stop_removes_store},
    {"free port is free", test_free_port_is_bindable},
};

int main(void)
{
    int rc = jb_cunit_main("harness", NULL, NULL, cases, JB_CASES_N(cases));
    nats_Close();
    return rc;
}
