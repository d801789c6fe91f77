/* The publisher suites' helpers (test_pub_util.h). */
#include "test_pub_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

bool pe_wait_status(int port, const char *path, int want, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        if (jb_http(port, "GET", path, NULL, NULL, 0, NULL, NULL, NULL) == want)
            return true;
        jb_sleep_ms(100);
    }
    return false;
}

bool pe_start_publisher(pubenv *e, const char *const *extra)
{
    static char envbuf[4][128];
    e->port = jb_free_port();
    e->admin = jb_free_port();
    snprintf(envbuf[0], sizeof(envbuf[0]), "NATS_URL=%s", jb_tnats_url(e->nats));
    snprintf(envbuf[1], sizeof(envbuf[1]), "INGRESS_PORT=%d", e->port);
    snprintf(envbuf[2], sizeof(envbuf[2]), "METRICS_ADDR=127.0.0.1:%d", e->admin);
    const char *env[32] = {envbuf[0], envbuf[1], envbuf[2], "RECONNECT_WAIT=200ms",
                           "APP_LOG_LEVEL=info"};
    size_t n = 5;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    const char *argv[] = {"publisher", NULL};
    e->proc = jb_tproc_start(argv, env, e->port);
    if (e->proc == NULL)
        return false;
    /* The admin listener starts after the ingress is ready: wait for both. */
    return pe_wait_status(e->port, "/readyz", 200, 15000) &&
           pe_wait_status(e->admin, "/healthz", 200, 15000);
}

bool pe_connect_client(pubenv *e)
{
    if (natsConnection_ConnectTo(&e->nc, jb_tnats_url(e->nats)) != NATS_OK)
        return false;
    return natsConnection_JetStream(&e->js, e->nc, NULL) == NATS_OK;
}

bool pe_start(pubenv *e, const char *const *extra)
{
    memset(e, 0, sizeof(*e));
    e->nats = jb_tnats_start();
    return e->nats != NULL && pe_start_publisher(e, extra) && pe_connect_client(e);
}

int pe_terminate(pubenv *e)
{
    if (e->proc == NULL)
        return -2;
    jb_tproc_signal(e->proc, SIGTERM);
    int rc = jb_tproc_wait(e->proc, 20000);
    char *log = jb_tproc_log(e->proc);
    if (rc != 0 || getenv("JB_TEST_LOGS") != NULL)
        fprintf(stderr, "---- publisher log (exit %d)\n%s\n", rc, log ? log : "");
    free(log);
    return rc;
}

void pe_stop(pubenv *e)
{
    if (e->proc != NULL)
        CU_ASSERT_EQUAL(pe_terminate(e), 0);
    jb_tproc_stop(e->proc);
    if (e->js != NULL)
        jsCtx_Destroy(e->js);
    if (e->nc != NULL)
        natsConnection_Destroy(e->nc);
    jb_tnats_stop(e->nats);
    memset(e, 0, sizeof(*e));
}

int pe_post(const pubenv *e, const char *path, const char *headers, const char *body, size_t len,
            char **resp, char **resp_headers)
{
    return jb_http(e->port, "POST", path, headers, body, len, resp, NULL, resp_headers);
}

natsMsg *pe_last_msg(const pubenv *e, const char *subject)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (js_GetLastMsg(&m, e->js, "sap", subject, NULL, &jerr) != NATS_OK)
        return NULL;
    return m;
}

int64_t pe_stream_msgs(const pubenv *e)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, e->js, "sap", NULL, &jerr) != NATS_OK)
        return -1;
    int64_t n = (int64_t)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

const char *pe_hdr(natsMsg *m, const char *name)
{
    const char *v = NULL;
    if (m == NULL || natsMsgHeader_Get(m, name, &v) != NATS_OK || v == NULL)
        return "";
    return v;
}

char *pe_metrics(const pubenv *e)
{
    char *body = NULL;
    if (jb_http(e->admin, "GET", "/metrics", NULL, NULL, 0, &body, NULL, NULL) != 200) {
        free(body);
        return NULL;
    }
    return body;
}

void pe_binary_headers(char *out, size_t cap, const char *id, const char *source, const char *type)
{
    snprintf(out, cap,
             "ce-specversion: 1.0\r\nce-id: %s\r\nce-source: %s\r\nce-type: %s\r\n"
             "Content-Type: application/json\r\n",
             id, source, type);
}

void pe_expected_msg_id(const char *source, const char *id, const char *subject, char out[33])
{
    char buf[1024];
    size_t o = 0, sl = strlen(source), il = strlen(id);
    memcpy(buf, source, sl);
    o += sl;
    buf[o++] = '\0';
    memcpy(buf + o, id, il);
    o += il;
    if (subject != NULL) {
        buf[o++] = '\0';
        memcpy(buf + o, subject, strlen(subject));
        o += strlen(subject);
    }
    char hex[65];
    jb_sha256_hex(buf, o, hex);
    memcpy(out, hex, 32);
    out[32] = '\0';
}
