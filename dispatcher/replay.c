/* One delivery outside the loop, for `jetbridge dlq replay` (jb_disp_replay): the
 * request the dispatcher would build, under the same outbound policy. */
#include <curl/curl.h>
#include <stdio.h>

#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"
#include "dispatcher/jb_disp.h"
#include "proto/jb_ce.h"

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static int post_sync(const struct jb_cfg *cfg, const char *url, const jb_dreq *req,
                     int64_t timeout_ms, jb_err *err)
{
    /* The same outbound policy as the dispatcher: a replay is no way around it. */
    jb_dguard_ctx gc = {0};
    jb_dguard *g = NULL;
    if (jb_dguard_create(cfg, &g, err) != JB_OK)
        return 0;
    gc.guard = g;
    CURL *e = curl_easy_init();
    if (e == NULL) {
        jb_dguard_destroy(g);
        return 0;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    jb_dguard_apply(&gc, e);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->data != NULL ? (const char *)req->data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else if (gc.refused)
        (void)jb_err_set(err, JB_ERR_IO, "%s", gc.why);
    curl_easy_cleanup(e);
    jb_dguard_destroy(g);
    return (int)status;
}

int jb_disp_replay(const struct jb_cfg *cfg, jb_ce *ce, const char *sink, bool structured,
                   int64_t timeout_ms, jb_err *err)
{
    jb_dreq req = {0};
    int status = -1;
    if (jb_dreq_build(ce, structured, &req) == JB_OK)
        status = post_sync(cfg, sink, &req, timeout_ms, err);
    jb_dreq_free(&req);
    return status;
}
