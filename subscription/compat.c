/* Weak stand-ins for functions other modules implement (config/, common/), so that
 * this branch links and tests before those land in main. The real (strong)
 * definitions replace these at link time; this file goes away once main has them. */
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"

__attribute__((weak)) bool jb_cfg_parse_iso8601_duration_ms(const char *s, size_t len,
                                                            int64_t *out_ms)
{
    /* P[nD][T[nH][nM][n[.fff]S]] */
    if (len < 2 || s[0] != 'P')
        return false;
    int64_t total = 0;
    bool time = false, any = false;
    for (size_t i = 1; i < len;) {
        if (s[i] == 'T' && !time) {
            time = true;
            i++;
            continue;
        }
        int64_t v = 0, frac = 0, fdiv = 1;
        size_t d = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9' && d < 12; i++, d++)
            v = v * 10 + (s[i] - '0');
        if (i < len && s[i] == '.') {
            for (i++; i < len && s[i] >= '0' && s[i] <= '9' && fdiv < 1000; i++) {
                frac = frac * 10 + (s[i] - '0');
                fdiv *= 10;
            }
        }
        if (d == 0 || i >= len)
            return false;
        char u = s[i++];
        int64_t mul = !time && u == 'D'  ? 86400000
                      : time && u == 'H' ? 3600000
                      : time && u == 'M' ? 60000
                      : time && u == 'S' ? 1000
                                         : 0;
        if (mul == 0 || (frac && u != 'S'))
            return false;
        total += v * mul + frac * 1000 / fdiv;
        any = true;
    }
    if (!any)
        return false;
    *out_ms = total;
    return true;
}

__attribute__((weak)) jb_status jb_nats_connect(const struct jb_cfg *cfg, struct event_base *base,
                                                const char *name, bool retry_on_failed_connect,
                                                natsConnection **nc, jsCtx **js, jb_err *err)
{
    (void)base;
    natsOptions *o = NULL;
    natsConnection *c = NULL;
    jsCtx *j = NULL;
    const char *url = cfg->nats_url && cfg->nats_url[0] ? cfg->nats_url : "nats://127.0.0.1:4222";
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, retry_on_failed_connect, NULL, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(&c, o);
    if (s == NATS_NOT_YET_CONNECTED)
        s = NATS_OK;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&j, c, NULL);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        natsConnection_Destroy(c);
        return jb_err_set(err, JB_ERR_NOT_CONNECTED, "cannot connect to NATS at %s: %s", url,
                          natsStatus_GetText(s));
    }
    *nc = c;
    *js = j;
    return JB_OK;
}

__attribute__((weak)) void jb_nats_close(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

__attribute__((weak)) bool jb_nats_connected(natsConnection *nc)
{
    return nc != NULL && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}
