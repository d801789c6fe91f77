/*
 * common/ mailbox: the one way a thread hands work to another (h2o's multithread
 * receiver is the model). A mailbox is a bounded multi-producer FIFO of small,
 * fixed-size messages plus an eventfd: any thread posts, one receiver takes. The
 * receiver is either a libevent loop (jb_mailbox_attach: messages are handled on
 * the loop, in batches, one eventfd write per burst) or a worker thread that blocks
 * in jb_mailbox_take (jb_worker wraps that in a thread of its own).
 *
 * Bounded: a mailbox holds at most cap messages, fixed at creation; a post to a
 * full mailbox answers JB_ERR_FULL at once instead of growing, and the sender
 * decides what "full" means for it (a 503, a delayed NAK, wait and try again).
 *
 * Requests and replies: a message may carry a reply function. With reply_to set,
 * posting the request reserves one slot in reply_to, so the reply always fits; the
 * receiver answers with jb_mail_reply and the reply function then runs on
 * reply_to's receiver (the sender's own loop). With reply_to NULL, jb_mail_reply
 * runs the function at once on the receiver's thread (a completion).
 */
#ifndef JB_MAILBOX_H
#define JB_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

struct event_base;
typedef struct jb_mailbox jb_mailbox;
typedef struct jb_mail jb_mail;
typedef void (*jb_mail_fn)(jb_mail *m, void *ud);

/* A message. It is copied into the mailbox: the fields say what travels, the
 * pointers' targets are the sender's business (ownership of ptr passes to the
 * receiver with a successful post, and stays with the sender when it fails). */
struct jb_mail {
    int kind;             /* the receiver's own meaning */
    void *ptr;            /* the payload */
    int64_t val;          /* a small value: an index, a result */
    jb_mailbox *reply_to; /* a request: where the reply goes (NULL: a completion) */
    jb_mail_fn reply;     /* run with reply_ud on the reply; NULL: no reply wanted */
    void *reply_ud;
};

/* Most messages a mailbox may hold; a larger cap is refused. */
#define JB_MAILBOX_CAP_MAX (1u << 20)

/* A mailbox for at most cap (1..JB_MAILBOX_CAP_MAX) messages. On success *out is
 * the caller's (jb_mailbox_destroy). JB_ERR_INVALID for a bad cap, JB_ERR_IO when
 * no eventfd is available. */
jb_status jb_mailbox_create(size_t cap, jb_mailbox **out, jb_err *err);

/* Any thread. Copies *m in. JB_ERR_FULL when cap messages (replies reserved
 * included) wait, or when m->reply_to has no room for the reply; JB_ERR_CLOSED
 * after jb_mailbox_close. On failure nothing was taken. Never blocks. */
jb_status jb_mailbox_post(jb_mailbox *mb, const jb_mail *m);
/* The same, but waits while the mailbox is full: for a sender that may block (a
 * worker thread, never a loop or a nats.c callback). Fails only when the mailbox
 * is or becomes closed (JB_ERR_CLOSED) or m->reply_to is full (JB_ERR_FULL). */
jb_status jb_mailbox_post_wait(jb_mailbox *mb, const jb_mail *m);

/* A byte budget besides the message cap, for messages of very different sizes
 * (the Kubernetes controller's objects): sized posts count their bytes until the
 * message is taken, and a post that would pass max_bytes is full like one past
 * the cap. A message larger than the whole budget still goes into an empty
 * mailbox. 0 (the default): no budget. Plain posts and replies count 0 bytes. */
void jb_mailbox_set_byte_cap(jb_mailbox *mb, size_t max_bytes);
/* jb_mailbox_post and jb_mailbox_post_wait for a message that counts bytes
 * against the byte budget. */
jb_status jb_mailbox_post_sized(jb_mailbox *mb, const jb_mail *m, size_t bytes);
jb_status jb_mailbox_post_wait_sized(jb_mailbox *mb, const jb_mail *m, size_t bytes);

/* The receiver answers request m (any thread, exactly once per request that has a
 * reply function; the receiver may change ptr and val to carry the result first).
 * Never fails: the slot was reserved when the request was posted. */
void jb_mail_reply(jb_mail *m);

/* Refuses further posts (JB_ERR_CLOSED), wakes jb_mailbox_post_wait and
 * jb_mailbox_take. Replies to requests already posted are still accepted: a
 * closed loop mailbox keeps receiving the answers it is owed. Any thread. */
void jb_mailbox_close(jb_mailbox *mb);

/* The receiver is base's loop: handler(m, ud) runs there for every message, and
 * reply functions run there for replies. At most cap messages per loop turn, so a
 * busy producer does not starve the loop's other events. Call on base's thread,
 * once. */
jb_status jb_mailbox_attach(jb_mailbox *mb, struct event_base *base, jb_mail_fn handler, void *ud);

/* The receiver is the calling thread: waits at most timeout_ms (< 0: no limit) for
 * a message and copies it to *out (JB_OK). Replies that arrive meanwhile have their
 * reply function run here. JB_ERR_TIMEOUT when nothing came in time; JB_ERR_CLOSED
 * once the mailbox is closed (what is left is for jb_mailbox_drain). */
jb_status jb_mailbox_take(jb_mailbox *mb, jb_mail *out, int64_t timeout_ms);

/* Takes out every message now and hands each to fn(m, ud) (replies run their reply
 * function). For the receiver, typically at shutdown. Returns how many. */
size_t jb_mailbox_drain(jb_mailbox *mb, jb_mail_fn fn, void *ud);

/* Messages waiting (a snapshot). */
size_t jb_mailbox_len(jb_mailbox *mb);

/* Frees. Messages still inside go to dispose(m, ud) (NULL: dropped); replies run
 * their reply function, as in jb_mailbox_drain. No thread may post any more, and
 * no request with a reply to mb may still be out. NULL is fine. */
void jb_mailbox_destroy(jb_mailbox *mb, jb_mail_fn dispose, void *ud);

/* ------------------------------------------------------------- workers */

/* A worker: one thread that takes the messages of its own mailbox and runs
 * handler(m, ud) for each, and idle(ud) (may be NULL) whenever idle_ms passed
 * without a message. Blocking work (a JetStream request) belongs here, never on a
 * loop. */
typedef struct jb_worker jb_worker;

/* name (at most 15 characters) names the thread for ps/top. */
jb_status jb_worker_start(const char *name, size_t cap, jb_mail_fn handler, void (*idle)(void *ud),
                          int64_t idle_ms, void *ud, jb_worker **out, jb_err *err);
/* The worker's mailbox: post requests here (jb_mailbox_post). */
jb_mailbox *jb_worker_mailbox(jb_worker *w);
/* True once jb_worker_stop began: a long handler checks it between steps. Any
 * thread. */
bool jb_worker_stopping(jb_worker *w);
/* Closes the mailbox, waits for the handler that is running to return, joins the
 * thread, hands what was never handled to dispose(m, ud) (NULL: dropped) on the
 * calling thread, and frees. NULL is fine. */
void jb_worker_stop(jb_worker *w, jb_mail_fn dispose, void *ud);

#endif
