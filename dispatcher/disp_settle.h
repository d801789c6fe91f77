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

/* Acks collected during a loop turn and sent together at its end: nats.c wakes its
 * flusher thread once per burst instead of once per ack. At most cap wait. */
typedef struct jb_dacks {
    natsConnection *nc;
    natsMsg **msgs;
    size_t n, cap;
    struct event *ev;
} jb_dacks;
jb_status jb_dacks_init(jb_dacks *a, struct event_base *base, natsConnection *nc, size_t cap);
/* Takes msg for an ack at the end of this loop turn; false when the batch is full
 * (ack it now). */
bool jb_dacks_add(jb_dacks *a, natsMsg *msg);
/* Sends the acks now (and destroys their messages). */
void jb_dacks_flush(jb_dacks *a);
/* Flushes and frees. */
void jb_dacks_free(jb_dacks *a);

#endif
