/*
 * Shared by the ingress security suites (test_id_*.c): raw HTTP exchanges on
 * loopback, for requests that no well-behaved client library would send.
 * Compiled once into the harness library (tests/harness/tid.c).
 */
#ifndef TEST_ID_UTIL_H
#define TEST_ID_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_pub_util.h"

/* A connected TCP socket to 127.0.0.1:port with a receive timeout, or -1. */
int id_connect(int port, int rcv_timeout_ms);

bool id_send(int fd, const char *s, size_t n);

/* Reads until the peer closes (true) or the receive timeout passes (false); what
 * arrived is in *out (malloc'd, NUL-terminated, at most 64 KiB). */
bool id_read_all(int fd, char **out);

/* How many HTTP responses (status lines) text holds. */
int id_count_responses(const char *text);

/* Sends req on a new connection, then reads until close (rcv timeout 20 s). The
 * status of the first answer, or -1; *all gets everything read (malloc'd) when
 * not NULL; *closed says whether the server closed. */
int id_exchange(int port, const char *req, size_t len, char **all, bool *closed);

#endif
