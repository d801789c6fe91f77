/* dispatcher/ private: the HTTP/1.1 response parser of the plain-HTTP lane
 * (h1.c). It reads a sink's answer to one POST, incrementally, from untrusted
 * bytes: every limit is fixed here and nothing is allocated. */
#ifndef JB_DISP_H1_H
#define JB_DISP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatcher/disp_internal.h"

/* All header lines of one answer (interim 1xx answers and chunked trailers
 * included) together: more is a bad answer. */
#define JB_H1_HEAD_MAX 65536
/* The part of a header line that is kept; a longer line is skipped, unless it is
 * one the parser reads (Content-Length, Transfer-Encoding, Connection,
 * Retry-After): that is a bad answer. */
#define JB_H1_LINE_KEEP 1024

typedef enum { JB_H1_MORE, JB_H1_DONE, JB_H1_BAD } jb_h1_state;

typedef struct jb_h1 {
    /* Results, valid once jb_h1_feed / jb_h1_eof said JB_H1_DONE. */
    int status;             /* 100..599 of the final answer */
    int64_t retry_after_ms; /* -1: none or not understood */
    bool keep_alive;        /* the connection may carry the next request */
    const char *error;      /* JB_H1_BAD: why (a fixed string) */
    size_t body_len;        /* bytes of body kept (the first JB_DHTTP_BODY_KEEP) */
    char body[JB_DHTTP_BODY_KEEP];
    uint64_t seen; /* bytes fed so far */
    /* Parser state. */
    int64_t now_wall_ms; /* for a Retry-After date */
    int phase;
    int version_minor;
    bool chunked, until_close, close, ka, cl_seen;
    uint64_t content_length;
    uint64_t left; /* body or chunk bytes still to come */
    size_t head;   /* header bytes so far */
    size_t line_len;
    char line[JB_H1_LINE_KEEP];
} jb_h1;

/* Ready for an answer; now_wall_ms is the wall clock for Retry-After dates. */
void jb_h1_init(jb_h1 *p, int64_t now_wall_ms);
/* Feeds data[0..len). *used: bytes consumed (all of them unless DONE or BAD: bytes
 * after a complete answer are not part of it). JB_H1_MORE: wants more. */
jb_h1_state jb_h1_feed(jb_h1 *p, const char *data, size_t len, size_t *used);
/* The peer closed the connection: DONE when that ends the answer (a body that
 * runs to the close), else BAD. */
jb_h1_state jb_h1_eof(jb_h1 *p);

#endif
