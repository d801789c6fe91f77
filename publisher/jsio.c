/*
 * The NATS side of one HTTP thread (see pub_thread.h): its own connection, owned
 * by the thread's event loop, so that publishing and reading acks involve no
 * other thread. A message is published with the reply subject <inbox><seq>
 * (natsConnection_PublishMsg; nats.c sends everything published in one loop
 * turn with one write); JetStream sends its ack there; the acks are taken from a
 * synchronous subscription right after nats.c has read them, on the same loop.
 * nats.c's js_PublishMsgAsync would deliver every ack on a thread of its own and
 * keep a timer and a hash entry per message; the ack map and the thread's tick
 * do that work here (docs/publisher.md, "NATS path").
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "publisher/pub_thread.h"

/* The sequence of an ack's subject <inbox><seq>; 0 when it is not one of ours. */
static uint64_t seq_of(const pub_thread *t, const char *subj)
{
    if (subj == NULL || strncmp(subj, t->inbox_pfx, t->inbox_len) != 0)
        return 0;
    const char *d = subj + t->inbox_len;
    uint64_t v = 0;
    size_t n = 0;
    for (; d[n] >= '0' && d[n] <= '9' && n < 20; n++)
        v = v * 10 + (uint64_t)(d[n] - '0');
    return n > 0 && d[n] == '\0' ? v : 0;
}

static void on_ack_msg(pub_thread *t, natsMsg *m)
{
    uint64_t seq = seq_of(t, natsMsg_GetSubject(m));
    if (seq == 0)
        return;
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    char *text = NULL;
    int status = jb_pub_ack_parse(data, len > 0 ? (size_t)len : 0, false, &text);
    t->on_ack(t, seq, status, text);
}

/* On the loop, right after nats.c processed what it read: take the acks it
 * queued on the inbox. Only what is there now, so a flood cannot hold the loop. */
static void after_read(void *ud)
{
    pub_thread *t = ud;
    int n = 0;
    bool no_responders = false;
    if (t->inbox == NULL || natsSubscription_GetPending(t->inbox, &n, NULL) != NATS_OK)
        return;
    for (int i = 0; i < n; i++) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, t->inbox, 0);
        /* nats.c consumes a "no responders" answer itself and says only that one
         * came, not for which message. */
        if (s == NATS_NO_RESPONDERS) {
            no_responders = true;
            continue;
        }
        if (s != NATS_OK)
            break;
        on_ack_msg(t, m);
        /* Here, not by nats.c's collector thread: at low rates that thread slept
         * between acks and was woken for each one. */
        jb_nats_msg_free(m);
    }
    if (no_responders) {
        /* The stream is gone (every subject we publish to is the stream's): the
         * messages still waiting on this thread will not be stored either, so all
         * of them get 504 now rather than after REQUEST_TIMEOUT; an ack that still
         * comes finds no entry. 504 never claims "not stored", and a retry is
         * deduplicated by Nats-Msg-Id. The control thread recreates the stream. */
        atomic_store(&t->p->stream_recheck, true);
        char *text = NULL;
        int code = jb_pub_ack_parse(NULL, 0, true, &text);
        t->on_fail(t, code, text);
        free(text);
    }
}

jb_status pub_js_open(pub_thread *t, jb_err *err)
{
    natsInbox *inbox = NULL;
    if (natsInbox_Create(&inbox) != NATS_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    int w = snprintf(t->inbox_pfx, sizeof(t->inbox_pfx), "%s.", (const char *)inbox);
    natsInbox_Destroy(inbox);
    if (w < 0 || (size_t)w >= sizeof(t->inbox_pfx))
        return jb_err_set(err, JB_ERR_INTERNAL, "NATS inbox name too long");
    t->inbox_len = (size_t)w;
    t->nloop = (jb_nats_loop){.base = t->base, .after_read = after_read, .ud = t};
    jb_nats_opts no;
    jb_cfg_nats_opts(t->p->cfg, &no);
    char name[48];
    snprintf(name, sizeof(name), "jetbridge-publisher-%d", t->idx);
    jb_status st = jb_nats_connect_loop(&no, &t->nloop, name, true, &t->nc, err);
    if (st != JB_OK)
        return st;
    char subj[PUB_INBOX_MAX + 2];
    snprintf(subj, sizeof(subj), "%s*", t->inbox_pfx);
    natsStatus s = natsConnection_SubscribeSync(&t->inbox, t->nc, subj);
    /* The in-flight window bounds what can wait here, not nats.c's default limits
     * (which would drop acks as a "slow consumer"). */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(t->inbox, -1, -1);
    if (s != NATS_OK)
        return jb_err_set(err, JB_ERR_NATS, "cannot subscribe to the ack inbox: %s",
                          natsStatus_GetText(s));
    return JB_OK;
}

void pub_js_close(pub_thread *t)
{
    /* Closed before the inbox is destroyed: an UNSUB left in the write buffer
     * would make nats.c's close wait 500 ms for a flush that only the (stopped)
     * loop could complete. Closing removes the subscription anyway. */
    if (t->nc != NULL)
        natsConnection_Close(t->nc);
    if (t->inbox != NULL)
        natsSubscription_Destroy(t->inbox);
    t->inbox = NULL;
    jb_nats_close(t->nc, NULL);
    t->nc = NULL;
}

bool pub_js_connected(pub_thread *t)
{
    return jb_nats_connected(t->nc);
}

void pub_js_reply(const pub_thread *t, uint64_t seq, char buf[PUB_INBOX_MAX + 24])
{
    memcpy(buf, t->inbox_pfx, t->inbox_len);
    jb_dec_u64(buf + t->inbox_len, seq);
}
