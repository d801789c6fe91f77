/*
 * Shared by the Kubernetes-mode suites: a real etcd + kube-apiserver (jb_tkube), a
 * real nats-server, real sinks and the real binary; helpers that poll kubectl and
 * the admin endpoints with generous deadlines (never fixed sleeps as assertions).
 * Compiled once into the harness library (tests/harness/tkenv.c).
 */
#ifndef TEST_KUBE_ENV_H
#define TEST_KUBE_ENV_H

#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

#define KWAIT_MS 90000

typedef struct kenv {
    jb_tkube *k;
    jb_tnats *n;
} kenv;

/* kubectl as admin; returns the exit code, *out (may be NULL) the output. */
int kctl(kenv *e, const char *args, const char *in, char **out);

/* kubectl apply of Subscription ns/name with one event type and a sink; the exit code. */
int kapply_sub(kenv *e, const char *ns, const char *name, const char *sink, const char *type);

/* `kubectl get ARGS -o json` parsed; NULL when it fails. */
cJSON *kget(kenv *e, const char *args);

/* The value of one series on an admin /metrics page ("name{labels}" or "name"), -1
 * when absent or unreachable. */
double metric(int port, const char *series);

/* Sum of every series of a family whose line contains `contains` (NULL: all). */
double metric_sum(int port, const char *family, const char *contains);

/* /readyz status code, and its body into why (may be NULL). */
int readyz(int port, char *why, size_t cap);

/* The Subscription's status.ready as kubectl shows it (READY column): 1 true, 0
 * false, -1 no status / no object. */
int sub_ready(kenv *e, const char *ns, const char *name);

/* Polls sub_ready until it equals want; true when it did within ms. */
bool wait_ready(kenv *e, const char *ns, const char *name, int want, int ms);

/* The READY column of `kubectl get subscriptions` for name ("true", "false", ""). */
bool get_column_ready(kenv *e, const char *ns, const char *name, char *out, size_t cap);

bool consumer_exists(const char *nats_url, const char *name);

bool wait_consumer(const char *nats_url, const char *name, bool want, int ms);

/* Waits until the process log contains needle. */
bool wait_log(jb_tproc *p, const char *needle, int ms);

size_t count_in_log(jb_tproc *p, const char *needle);

#endif
