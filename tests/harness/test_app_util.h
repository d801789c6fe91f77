/*
 * Shared by the application suites: what a reader of NATS sees in a KV bucket.
 * Compiled once into the harness library (tests/harness/tapp.c).
 */
#ifndef TEST_APP_UTIL_H
#define TEST_APP_UTIL_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_testenv.h"

/* A real nats-server, a connection to it, and the application store on it. */
typedef struct app_env {
    jb_tnats *n;
    jb_cfg *cfg;
    natsConnection *nc;
    jsCtx *js;
    jb_app_store *st;
} app_env;

bool app_env_start(app_env *e);

void app_env_stop(app_env *e);

/* Every key and value of bucket (read with js), one "key=value" line each: what an
 * attacker with read access to NATS would see. malloc'd; "" when the bucket is
 * missing. */
char *app_bucket_dump(jsCtx *js, const char *bucket);

#endif
