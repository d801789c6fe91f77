/* Shared by the outbound-trust tests: running a helper program, writing a file,
 * and a certificate set made by openssl (a CA, a server certificate for 127.0.0.1,
 * a client certificate) in a directory: ca.pem, server.pem, server.key,
 * client.pem, client.key. Compiled once into the harness library
 * (tests/harness/tout.c). */
#ifndef TEST_OUT_ENV_H
#define TEST_OUT_ENV_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "jb_testenv.h"

#define OUT_OPENSSL "/usr/bin/openssl"

bool out_run_exe(const char *exe, const char *const *argv);

bool out_write_file(const char *path, const char *text);

bool out_make_certs(const char *dir);

/* tests/integration/helpers/out_peer.py: a sink or token endpoint on loopback, with
 * an implementation of its own (Python's standard library). */
#define PEER   JB_SOURCE_DIR "/tests/integration/helpers/out_peer.py"
#define PYTHON "/usr/bin/python3"

typedef struct peer {
    jb_tproc *p;
    int port;
    char log[200];
} peer;

bool peer_start(peer *pe, const char *dir, const char *name, const char *const *extra);

/* The recorded requests, as a JSON array. */
cJSON *peer_requests(const peer *pe);

/* Polls until n requests were recorded (at most 90 s: the machine may be loaded). */
cJSON *peer_wait(const peer *pe, int n);

const char *hdr_of(const cJSON *req, const char *name);

#endif
