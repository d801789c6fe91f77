/*
 * Shared by the publisher integration suites: a real nats-server, the real
 * `jetbridge publisher` process, and a nats.c client to read what was stored.
 * Compiled once into the harness library (tests/harness/tpub.c).
 */
#ifndef TEST_PUB_UTIL_H
#define TEST_PUB_UTIL_H

#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

typedef struct pubenv {
    jb_tnats *nats;
    jb_tproc *proc;
    int port;  /* INGRESS_PORT */
    int admin; /* METRICS_ADDR port */
    natsConnection *nc;
    jsCtx *js;
} pubenv;

/* Polls GET path on port until it answers want, at most timeout_ms. */
bool pe_wait_status(int port, const char *path, int want, int timeout_ms);

/* Starts the publisher against e->nats with extra env entries (NULL-terminated). */
bool pe_start_publisher(pubenv *e, const char *const *extra);

/* A nats.c client (e->nc, e->js) to e->nats. */
bool pe_connect_client(pubenv *e);

/* A fresh nats-server, the publisher on it (pe_start_publisher) and a client. */
bool pe_start(pubenv *e, const char *const *extra);

/* SIGTERM and the exit status (0 is a clean exit: under the sanitizers it also
 * says that no error or leak was found in the process). -2 when not running. */
int pe_terminate(pubenv *e);

/* For test bodies: asserts the clean exit, then frees everything. */
void pe_stop(pubenv *e);

/* POST with headers; returns the status, body in *resp (malloc'd, may be NULL). */
int pe_post(const pubenv *e, const char *path, const char *headers, const char *body, size_t len,
            char **resp, char **resp_headers);

/* The last message stored on subject in stream "sap", or NULL. */
natsMsg *pe_last_msg(const pubenv *e, const char *subject);

/* Messages in stream "sap" (-1 on error). */
int64_t pe_stream_msgs(const pubenv *e);

/* Header value of a stored message or "" when absent (never NULL). */
const char *pe_hdr(natsMsg *m, const char *name);

/* GET the admin /metrics text (malloc'd) or NULL. */
char *pe_metrics(const pubenv *e);

/* Binary-mode headers for an event. */
void pe_binary_headers(char *out, size_t cap, const char *id, const char *source, const char *type);

/* The Nats-Msg-Id the publisher must set for (source, id[, subject]). */
void pe_expected_msg_id(const char *source, const char *id, const char *subject, char out[33]);

#endif
