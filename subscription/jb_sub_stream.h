/*
 * subscription/jb_sub_stream.h: the JetStream stream events are stored in.
 * Part of the subscription module; subscription/jb_sub.h includes it.
 */
#ifndef JB_SUB_STREAM_H
#define JB_SUB_STREAM_H

#include "common/jb_status.h"

struct jb_cfg;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

/* Creates the stream cfg->stream_name (subjects "<prefix>.>") with the settings
 * of docs/contract.md 2.4 when missing, and updates it when its settings differ (fields
 * that cannot change, such as storage, are left and logged). Idempotent; safe from
 * several processes at once. The publisher may call it too. */
jb_status jb_sub_ensure_stream(const struct jb_cfg *cfg, jsCtx *js, jb_err *err);

#endif
