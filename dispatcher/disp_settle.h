/* dispatcher/ settling (settle.c): JetStream ack subjects, ack / NAK / in-progress,
 * and the per-loop-turn ack batch. Loop thread unless said otherwise. */
#ifndef JB_DISP_SETTLE_H
#define JB_DISP_SETTLE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"
#include "dispatcher/disp_internal.h"

struct event;
struct event_base;

/* Settling by publishing to the message's reply subject: nats.c 3.4.1's natsMsg_Ack
 * and friends need a JetStream subscription (they dereference it). what: "+ACK",
 * "+WPI", "+TERM". Any thread (nats.c's publish is thread-safe). */
natsStatus jb_disp_settle(natsConnection *nc, natsMsg *msg, const char *what);
/* "-NAK {"delay":...}": redelivered after delay_ms (at least 1). Any thread. */
natsStatus jb_disp_nak(natsConnection *nc, natsMsg *msg, int64_t delay_ms);

/* The graveyard: messages the loop is done with. nats.c 3.4.1 hands every received
 * message to its garbage-collector thread on natsMsg_Destroy (natsGC_collect: a
 * global lock, and a condition signal whenever that thread waits, i.e. for the first
 * message after each of its passes); a wake-up costs ~33 µs of CPU on a VM, and the
 * collector's free() of memory the loop allocated contends with the loop's malloc()
 * for glibc's arena lock. Two ways, chosen once in jb_dgrave_init:
 *  - direct (nats.c 3.4.x whose natsMsg_free is exported): each message is freed at
 *    once on the loop thread with natsMsg_free, what the collector would run; nothing
 *    is kept, no other thread is involved;
 *  - otherwise batches through natsMsg_Destroy, so the collector wakes once per
 *    batch. Bounds, all explicit: at most cap messages and max_bytes (each counted as
 *    its nats.c block, malloc_usable_size: the struct, subject, reply, header block
 *    and data, plus JB_DGRAVE_MAP_BYTES for the header map the decoder makes nats.c
 *    build), and a message waits at most ms (a timer armed by the first burial).
 *    Flushed when a bound is reached, by the timer (so an idle loop keeps nothing),
 *    and by jb_dgrave_flush / jb_dgrave_free (stop, shutdown).
 * Loop thread only. */
#define JB_DGRAVE_MAX       256        /* messages */
#define JB_DGRAVE_MAX_BYTES (1u << 20) /* 1 MiB */
#define JB_DGRAVE_MAP_BYTES 512        /* per message, beside its block */
#define JB_DGRAVE_MS        50         /* the longest a message waits */
typedef struct jb_dgrave {
    bool direct;    /* natsMsg_free on the loop thread: nothing is kept */
    natsMsg **msgs; /* NULL: not set up (or freed): messages are destroyed at once */
    size_t n, cap;
    size_t bytes, max_bytes;
    int64_t ms;
    struct event *ev;
    uint64_t flushes; /* batches handed to nats.c so far (tests, counts) */
} jb_dgrave;
jb_status jb_dgrave_init(jb_dgrave *g, struct event_base *base, size_t cap, size_t max_bytes,
                         int64_t ms);
/* Takes msg (NULL: nothing) to be destroyed with the others; destroys them all now
 * when msg reaches a bound. */
void jb_dgrave_bury(jb_dgrave *g, natsMsg *msg);
/* Destroys what it holds now. */
void jb_dgrave_flush(jb_dgrave *g);
/* Flushes and frees; later burials destroy at once. */
void jb_dgrave_free(jb_dgrave *g);

/* Acks collected during a loop turn and sent together at its end: nats.c wakes its
 * flusher thread once per burst instead of once per ack. At most cap wait. */
typedef struct jb_dacks {
    natsConnection *nc;
    jb_dgrave *grave; /* where the acked messages go */
    natsMsg **msgs;
    size_t n, cap;
    struct event *ev;
} jb_dacks;
/* grave is borrowed and must outlive a (jb_dacks_free buries into it). */
jb_status jb_dacks_init(jb_dacks *a, struct event_base *base, natsConnection *nc, size_t cap,
                        jb_dgrave *grave);
/* Takes msg for an ack at the end of this loop turn; false when the batch is full
 * (ack it now). */
bool jb_dacks_add(jb_dacks *a, natsMsg *msg);
/* Sends the acks now (their messages go to the graveyard). */
void jb_dacks_flush(jb_dacks *a);
/* Flushes and frees. */
void jb_dacks_free(jb_dacks *a);

#endif
