/* Settling a message: the ack subject that says which message it is, ack / NAK /
 * in-progress published to it, and the acks of one loop turn sent together. Beside
 * the verdict (backoff.c decides, this file carries the decision out). */
#include <event2/event.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_text.h"
#include "dispatcher/disp_settle.h"

/* ------------------------------------------------------ ack subjects */

/* A number token of an ack subject: decimal, at most 19 digits (what a uint64 sequence
 * needs in practice; a longer token is not one the server wrote). */
/* A decimal of 1 to 19 digits: it always fits in 64 bits, so no overflow check
 * per digit (this runs twice for every delivered event). */
static bool ack_number(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool jb_disp_parse_ack_subject(const char *reply, size_t len, jb_disp_meta *out)
{
    static const char pre[] = "$JS.ACK.";
    const size_t plen = sizeof(pre) - 1;
    if (reply == NULL || len <= plen || memcmp(reply, pre, plen) != 0)
        return false;
    /* Token boundaries after the prefix. */
    const char *tok[13];
    size_t tlen[13];
    size_t n = 0;
    const char *p = reply + plen, *end = reply + len;
    while (p <= end && n < 13) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *e = dot != NULL ? dot : end;
        tok[n] = p;
        tlen[n] = (size_t)(e - p);
        if (tlen[n] == 0)
            return false;
        n++;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (p < end && n == 13)
        return false; /* too many tokens */
    /* 7 tokens: the old form; 9 (or 10 with a trailing random token): with domain
     * and account hash in front. */
    size_t at;
    if (n == 7)
        at = 0;
    else if (n == 9 || n == 10)
        at = 2;
    else
        return false;
    jb_disp_meta m = {tok[at + 1], tlen[at + 1], 0, 0};
    uint64_t cseq = 0, ts = 0, pending = 0;
    if (!ack_number(tok[at + 2], tlen[at + 2], &m.delivered) ||
        !ack_number(tok[at + 3], tlen[at + 3], &m.stream_seq) ||
        !ack_number(tok[at + 4], tlen[at + 4], &cseq) ||
        !ack_number(tok[at + 5], tlen[at + 5], &ts) ||
        !ack_number(tok[at + 6], tlen[at + 6], &pending) || m.delivered == 0)
        return false;
    *out = m;
    return true;
}

/* ------------------------------------------------------------ settling */

natsStatus jb_disp_settle(natsConnection *nc, natsMsg *msg, const char *what)
{
    const char *reply = natsMsg_GetReply(msg);
    if (reply == NULL || reply[0] == '\0')
        return NATS_INVALID_ARG;
    return natsConnection_Publish(nc, reply, what, (int)strlen(what));
}

natsStatus jb_disp_nak(natsConnection *nc, natsMsg *msg, int64_t delay_ms)
{
    const char *reply = natsMsg_GetReply(msg);
    if (reply == NULL || reply[0] == '\0')
        return NATS_INVALID_ARG;
    if (delay_ms < 1)
        delay_ms = 1;
    char body[64];
    int n = snprintf(body, sizeof(body), "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000LL);
    return natsConnection_Publish(nc, reply, body, n);
}

/* ---------------------------------------------------------- the graveyard */

static void on_grave_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dgrave_flush(arg);
}

jb_status jb_dgrave_init(jb_dgrave *g, struct event_base *base, size_t cap, size_t max_bytes,
                         int64_t ms)
{
    *g = (jb_dgrave){0};
    g->direct = jb_nats_msg_free_direct();
    g->cap = cap > 0 ? cap : 1;
    g->max_bytes = max_bytes;
    g->ms = ms > 0 ? ms : 1;
    g->ev = evtimer_new(base, on_grave_timer, g);
    g->msgs = calloc(g->cap, sizeof(*g->msgs));
    if (g->ev != NULL && g->msgs != NULL)
        return JB_OK;
    jb_dgrave_free(g);
    return JB_ERR_NOMEM;
}

void jb_dgrave_bury(jb_dgrave *g, natsMsg *msg)
{
    if (msg == NULL)
        return;
    if (g != NULL && g->direct) {
        /* On this thread, now: no collector, no cross-thread free. */
        jb_nats_msg_free(msg);
        return;
    }
    if (g == NULL || g->msgs == NULL) {
        natsMsg_Destroy(msg);
        return;
    }
    g->msgs[g->n++] = msg;
    g->bytes += malloc_usable_size(msg) + JB_DGRAVE_MAP_BYTES;
    if (g->n >= g->cap || g->bytes >= g->max_bytes) {
        jb_dgrave_flush(g);
        return;
    }
    if (g->n == 1) {
        struct timeval tv = {g->ms / 1000, (g->ms % 1000) * 1000};
        evtimer_add(g->ev, &tv);
    }
}

void jb_dgrave_flush(jb_dgrave *g)
{
    if (g->n == 0)
        return;
    /* One burst: nats.c's collector is signalled for the first of them only (it
     * takes the whole list when it wakes). */
    for (size_t i = 0; i < g->n; i++)
        natsMsg_Destroy(g->msgs[i]);
    g->n = 0;
    g->bytes = 0;
    g->flushes++;
    if (g->ev != NULL)
        evtimer_del(g->ev);
}

void jb_dgrave_free(jb_dgrave *g)
{
    if (g->msgs != NULL)
        jb_dgrave_flush(g);
    if (g->ev != NULL)
        event_free(g->ev);
    free(g->msgs);
    g->ev = NULL;
    g->msgs = NULL;
}

/* ---------------------------------------------------------- the ack batch */

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dacks_flush(arg);
}

jb_status jb_dacks_init(jb_dacks *a, struct event_base *base, natsConnection *nc, size_t cap,
                        jb_dgrave *grave)
{
    a->nc = nc;
    a->grave = grave;
    a->cap = cap > 0 ? cap : 1;
    a->n = 0;
    a->msgs = calloc(a->cap, sizeof(*a->msgs));
    a->ev = event_new(base, -1, 0, on_flush, a);
    return a->msgs != NULL && a->ev != NULL ? JB_OK : JB_ERR_NOMEM;
}

bool jb_dacks_add(jb_dacks *a, natsMsg *msg)
{
    if (a->n >= a->cap || a->ev == NULL)
        return false;
    if (a->n == 0)
        event_active(a->ev, 0, 0);
    a->msgs[a->n++] = msg;
    return true;
}

void jb_dacks_flush(jb_dacks *a)
{
    for (size_t i = 0; i < a->n; i++) {
        natsStatus s = jb_disp_settle(a->nc, a->msgs[i], "+ACK");
        if (s != NATS_OK)
            /* Not connected: JetStream redelivers after AckWait, nothing is lost. */
            jb_log(JB_LOG_WARN, "dispatcher", "cannot ack message", "error", natsStatus_GetText(s),
                   NULL);
        jb_dgrave_bury(a->grave, a->msgs[i]);
    }
    a->n = 0;
}

void jb_dacks_free(jb_dacks *a)
{
    jb_dacks_flush(a);
    if (a->ev != NULL)
        event_free(a->ev);
    free(a->msgs);
    a->ev = NULL;
    a->msgs = NULL;
}
