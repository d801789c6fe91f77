/* Shared set-up of the dispatcher integration tests: a real nats-server, a real
 * sink, subscriptions written to the real store, the real `jetbridge dispatcher`
 * binary, and events published the way the publisher stores them (CloudEvents NATS
 * binary mode on kyma.<source>.<type>). Included by each test_disp_*.c; compiled
 * once into the harness library (tests/harness/tdisp.c). */
#ifndef TEST_DISP_ENV_H
#define TEST_DISP_ENV_H

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"

typedef struct denv {
    jb_tnats *nats;
    jb_tsink *sink;
    natsConnection *nc;
    jsCtx *js;
    jb_cfg *cfg;
    char url_env[96];
} denv;

/* The client connection and its JetStream context to e->nats; true when up. */
bool denv_connect(denv *e);
/* A nats-server, the test sink and the client connection; true when all are up. */
bool denv_start(denv *e);
/* Stops and frees what denv_start made. */
void denv_stop(denv *e);

/* Stores Subscription default/<name> with source "myapp", one type, the sink, and
 * extra spec.config members (JSON members, e.g. "\"maxInFlightMessages\":\"1\"").
 * sink NULL: the test sink. */
bool denv_apply(denv *e, const char *name, const char *type, const char *config, const char *sink);

/* The consumer name of default/<name> for kyma.myapp.<type>. */
void denv_consumer(const char *name, const char *type, char out[33]);

/* Waits until the durable consumer exists (the dispatcher's reconciler made it). */
bool denv_wait_consumer(denv *e, const char *name, const char *type, int timeout_ms);

/* Starts `jetbridge dispatcher` with its admin port; extra is NULL or more "K=V". */
jb_tproc *denv_dispatcher(denv *e, int *admin_port, const char *const *extra);

/* Publishes one event as the publisher stores it: type rewritten to the subject
 * form, originaltype the producer's type, data untouched. */
bool denv_publish(denv *e, const char *type, const char *id, const char *data,
                  const char *traceparent);

/* Publishes n events "<prefix>-<i>" with data {"i":<i>}. */
size_t denv_publish_n(denv *e, const char *type, const char *prefix, size_t n);

/* How many distinct ce-id values with prefix the sink got with a 2xx answer. */
size_t denv_distinct_ok(denv *e, const char *prefix, size_t n, size_t *dups);

/* Waits until the sink got n distinct events of prefix with a 2xx answer. */
size_t denv_wait_distinct(denv *e, const char *prefix, size_t n, int timeout_ms);

/* `jetbridge dlq list -o json` parsed; NULL on failure. */
cJSON *denv_dlq_list(denv *e);

/* The dead-letter list once it has entries (dead-lettering is asynchronous to the
 * sink's answer), or what it is after 10 s. */
cJSON *denv_dlq_wait(denv *e);

/* Prints p's log to stderr when JB_TEST_LOGS is set (for a failing case). */
void denv_dump_log(jb_tproc *p);

/* jb_cunit_main, restricted to the case named by JB_CASE when set (for iterating
 * on one case). */
int denv_main(const char *suite, const jb_test_case *cases, size_t n);

#endif
