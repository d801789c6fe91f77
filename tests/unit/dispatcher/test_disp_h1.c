/* dispatcher/: the HTTP/1.1 response parser of the plain-HTTP lane (h1.c), on the
 * answers a real sink gives. Every answer is fed whole and then in pieces of 1, 2, 3
 * and 7 bytes (each piece in a buffer of its exact size, so that ASan sees a read
 * past it): each way must give the same state, results and bytes used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/disp_h1.h"
#include "jb_cunit.h"

/* The wall clock passed to jb_h1_init: 2026-01-01T00:00:00Z (a Thursday). */
#define NOW_MS 1767225600000LL

#define MORE JB_H1_MORE
#define DONE JB_H1_DONE
#define BAD  JB_H1_BAD

#define NOT_HTTP        "the sink's answer is not HTTP/1.x"
#define BAD_STATUS      "the sink's answer has an invalid status code"
#define BAD_CL          "the sink's answer has an invalid Content-Length"
#define CUT             "the sink closed the connection before its answer was complete"
#define BAD_CHUNK       "the sink's answer has an invalid chunk size"
#define LONG_CHUNK      "a chunk of the sink's answer is longer than its size"
#define HEAD_LONG       "the sink's answer headers are too long"
#define HEADER_LONG     "a header of the sink's answer is too long"
#define LONG_STATUS     "the sink's status line is too long"
#define LONG_CHUNK_LINE "a chunk-size line of the sink's answer is too long"

/* The head of a chunked 200. */
#define CHUNKED "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

/* What one answer must give. eof: the bytes alone leave the parser wanting more
 * (MORE), and the close that follows gives st. rest: bytes at the end of the input
 * that are not part of the answer (not used). On BAD, disp_h1.h promises only the
 * state and the error; the other fields hold what the parser had read when it
 * stopped (the caller closes the connection whatever keep_alive says), pinned here
 * so that a change to them is seen. */
typedef struct {
    const char *name;
    const char *in;
    jb_h1_state st;
    bool eof;
    int status;
    bool keep_alive;
    int64_t retry_after_ms;
    const char *body;
    size_t rest;
    const char *error;
} h1_case;

typedef struct {
    jb_h1 p;
    jb_h1_state st;
    size_t used;
} h1_run;

/* Feeds in[0..len) in pieces of `step` bytes (0: whole) until DONE or BAD, then
 * jb_h1_eof when `eof`. */
static void run(h1_run *r, const char *in, size_t len, size_t step, bool eof)
{
    jb_h1_init(&r->p, NOW_MS);
    r->st = MORE;
    r->used = 0;
    for (size_t off = 0; r->st == MORE && off < len;) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        char *piece = malloc(n);
        CU_ASSERT_FATAL(piece != NULL);
        memcpy(piece, in + off, n);
        size_t used = SIZE_MAX;
        r->st = jb_h1_feed(&r->p, piece, n, &used);
        free(piece);
        CU_ASSERT_TRUE(used <= n);
        if (r->st == MORE)
            CU_ASSERT_EQUAL(used, n);
        r->used += used;
        off += n;
    }
    if (eof) {
        CU_ASSERT_EQUAL(r->st, MORE);
        if (r->st == MORE)
            r->st = jb_h1_eof(&r->p);
    }
}

static bool same_error(const char *got, const char *want)
{
    if (want == NULL)
        return got == NULL;
    return got != NULL && strcmp(got, want) == 0;
}

/* After DONE or BAD nothing more is read: a feed keeps the state and uses nothing,
 * and so does the close. */
static bool stays(h1_run *r)
{
    static const char more[] = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
    jb_h1 before = r->p;
    size_t used = 1;
    bool ok = jb_h1_feed(&r->p, more, sizeof(more) - 1, &used) == r->st && used == 0;
    ok = ok && jb_h1_eof(&r->p) == r->st;
    return ok && r->p.status == before.status && r->p.keep_alive == before.keep_alive &&
           r->p.body_len == before.body_len && r->p.error == before.error &&
           r->p.retry_after_ms == before.retry_after_ms;
}

/* Runs c on in[0..len) in every way and checks the results against c, with the
 * expected body body[0..body_len). */
static void check_input(const h1_case *c, const char *in, size_t len, const char *body,
                        size_t body_len)
{
    static const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t s = 0; s < JB_CASES_N(steps); s++) {
        h1_run r;
        run(&r, in, len, steps[s], c->eof);
        bool ok = r.st == c->st && r.p.status == c->status && r.p.keep_alive == c->keep_alive &&
                  r.p.retry_after_ms == c->retry_after_ms && r.p.body_len == body_len &&
                  memcmp(r.p.body, body, body_len) == 0 && r.used == len - c->rest &&
                  same_error(r.p.error, c->st == BAD ? c->error : NULL);
        if (!ok)
            fprintf(stderr,
                    "case %s, pieces of %zu: state %d status %d keep_alive %d retry_after %lld "
                    "body_len %zu used %zu error %s\n",
                    c->name, steps[s], (int)r.st, r.p.status, (int)r.p.keep_alive,
                    (long long)r.p.retry_after_ms, r.p.body_len, r.used,
                    r.p.error != NULL ? r.p.error : "(none)");
        CU_ASSERT_TRUE(ok);
        CU_ASSERT_TRUE(stays(&r));
    }
}

static void check(const h1_case *c)
{
    check_input(c, c->in, strlen(c->in), c->body, strlen(c->body));
}

static void check_all(const h1_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check(&cases[i]);
}

/* Status lines, Connection and HTTP/1.0, header names in any case, bare LF. */
static void test_framing_basic(void)
{
    static const h1_case cases[] = {
        {"200 with Content-Length",
         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", DONE,
         false, 200, true, -1, "hello", 0, NULL},
        {"202 Content-Length 0, no reason phrase", "HTTP/1.1 202\r\nContent-Length: 0\r\n\r\n",
         DONE, false, 202, true, -1, "", 0, NULL},
        {"204 without body", "HTTP/1.1 204 No Content\r\nServer: sink\r\n\r\n", DONE, false, 204,
         true, -1, "", 0, NULL},
        {"304 with a Content-Length, still no body",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", DONE, false, 304, true, -1, "",
         0, NULL},
        {"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", DONE, false, 200, false, -1,
         "ok", 0, NULL},
        {"HTTP/1.0 keep-alive",
         "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", DONE, false,
         200, true, -1, "ok", 0, NULL},
        {"HTTP/1.1 Connection: close",
         "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", DONE, false, 200,
         false, -1, "ok", 0, NULL},
        {"Connection tokens, close among them",
         "HTTP/1.1 200 OK\r\nConnection: Upgrade , close\r\nContent-Length: 0\r\n\r\n", DONE, false,
         200, false, -1, "", 0, NULL},
        {"header names and tokens in any case",
         "HTTP/1.1 503 Busy\r\ncOnTeNt-LeNgTh: 4\r\nCONNECTION: CLOSE\r\nretry-AFTER: 7\r\n\r\n"
         "busy",
         DONE, false, 503, false, 7000, "busy", 0, NULL},
        {"HTTP/1.0 Keep-Alive in capitals",
         "HTTP/1.0 200 OK\r\nCONNECTION: Keep-Alive\r\nCONTENT-LENGTH: 1\r\n\r\nk", DONE, false,
         200, true, -1, "k", 0, NULL},
        {"blanks around values",
         "HTTP/1.1 200 OK\r\nContent-Length: \t3 \t\r\nConnection:close\r\n\r\nabc", DONE, false,
         200, false, -1, "abc", 0, NULL},
        {"the same Content-Length twice",
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", DONE, false, 200,
         true, -1, "ok", 0, NULL},
        {"bare LF line ends", "HTTP/1.1 201 Created\nContent-Length: 3\n\nabc", DONE, false, 201,
         true, -1, "abc", 0, NULL},
        {"CRLF and LF mixed", "HTTP/1.1 200 OK\r\nContent-Length: 3\n\r\nabc", DONE, false, 200,
         true, -1, "abc", 0, NULL},
        {"a line without a colon and a folded line are ignored",
         "HTTP/1.1 200 OK\r\nnonsense\r\nX-A: 1\r\n  Content-Length: 9\r\nContent-Length: 1\r\n"
         "\r\nx",
         DONE, false, 200, true, -1, "x", 0, NULL},
        {"a body of CRLFs and a status line",
         "HTTP/1.1 400 Bad\r\nContent-Length: 21\r\n\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", DONE, false,
         400, true, -1, "\r\nHTTP/1.1 200 OK\r\n\r\n", 0, NULL},
        {"599", "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n", DONE, false, 599, true, -1,
         "", 0, NULL},
    };
    check_all(cases, JB_CASES_N(cases));
}

/* Chunked bodies, other codings, bodies that run to the close. */
static void test_framing_body(void)
{
    static const h1_case cases[] = {
        {"chunked: several chunks, extensions, trailers",
         CHUNKED "5;name=val\r\nhello\r\n1 ; a=\"b;c\"\r\n,\r\nA\r\n world!!!!\r\n"
                 "0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
         DONE, false, 200, true, -1, "hello, world!!!!", 0, NULL},
        {"chunked, hex in both cases, bare LF",
         "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\nb\n0123456789a\nB\n0123456789b\n0\n\n",
         DONE, false, 200, true, -1, "0123456789a0123456789b", 0, NULL},
        {"chunked, 15 hex digits", CHUNKED "000000000000003\r\nabc\r\n0\r\n\r\n", DONE, false, 200,
         true, -1, "abc", 0, NULL},
        {"chunked: last chunk with an extension, no trailers", CHUNKED "0;done\r\n\r\n", DONE,
         false, 200, true, -1, "", 0, NULL},
        {"chunked wins over Content-Length",
         "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nok\r\n0\r\n\r\n",
         DONE, false, 200, true, -1, "ok", 0, NULL},
        {"chunked on HTTP/1.0",
         "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nok\r\n0\r\n\r\n",
         DONE, false, 200, false, -1, "ok", 0, NULL},
        {"gzip, chunked is chunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\n\x1f\x8b\x08\r\n0\r\n"
         "\r\n",
         DONE, false, 200, true, -1, "\x1f\x8b\x08", 0, NULL},
        {"empty codings are not codings",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked, \r\n\r\n1\r\nz\r\n0\r\n\r\n", DONE, false,
         200, true, -1, "z", 0, NULL},
        {"an empty Transfer-Encoding: Content-Length frames",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\nContent-Length: 1\r\n\r\nz", DONE, false, 200,
         true, -1, "z", 0, NULL},
        {"codings on two lines, chunked last",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
         "1\r\nz\r\n0\r\n\r\n",
         DONE, false, 200, true, -1, "z", 0, NULL},
        {"gzip alone: to the close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc\r\n0",
         DONE, true, 200, false, -1, "abc\r\n0", 0, NULL},
        {"chunked, gzip: to the close, Content-Length ignored",
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxyz",
         DONE, true, 200, false, -1, "xyz", 0, NULL},
        {"no Content-Length, not chunked: to the close",
         "HTTP/1.1 500 Internal\r\nContent-Type: text/plain\r\n\r\nboom", DONE, true, 500, false,
         -1, "boom", 0, NULL},
        {"to the close, empty body", "HTTP/1.1 200 OK\r\n\r\n", DONE, true, 200, false, -1, "", 0,
         NULL},
        {"HTTP/1.0 keep-alive, no Content-Length: to the close",
         "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbye", DONE, true, 200, false, -1, "bye",
         0, NULL},
    };
    check_all(cases, JB_CASES_N(cases));
}

/* Interim 1xx answers are skipped, with whatever headers they had; 101 is refused. */
static void test_interim(void)
{
    static const h1_case cases[] = {
        {"100 Continue",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", DONE, false,
         200, true, -1, "ok", 0, NULL},
        {"two interim answers, their headers forgotten",
         "HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n"
         "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nRetry-After: 9\r\nContent-Length: 5\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         DONE, false, 200, true, -1, "", 0, NULL},
        {"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", BAD, false, 101, false,
         -1, "", 16, "the sink switched protocols"},
        {"100 then 101", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", BAD, false,
         101, false, -1, "", 2, "the sink switched protocols"},
        {"the close after 100 only", "HTTP/1.1 100 Continue\r\n\r\n", BAD, true, 0, false, -1, "",
         0, CUT},
    };
    check_all(cases, JB_CASES_N(cases));
}

/* The parser stops at the end of the answer: what follows is not used. */
static void test_bytes_after(void)
{
    static const h1_case cases[] = {
        {"Content-Length, then the next answer",
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", DONE, false, 200,
         true, -1, "ok", 17, NULL},
        {"Content-Length 0, then garbage", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nxyz", DONE,
         false, 200, true, -1, "", 3, NULL},
        {"204, then the next answer",
         "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", DONE, false, 204, true,
         -1, "", 27, NULL},
        {"chunked, then bytes", CHUNKED "1\r\na\r\n0\r\n\r\n1\r\nb\r\n", DONE, false, 200, true, -1,
         "a", 6, NULL},
        {"chunked with a trailer, then bytes", CHUNKED "0\r\nT: 1\r\n\r\nHTTP", DONE, false, 200,
         true, -1, "", 4, NULL},
    };
    check_all(cases, JB_CASES_N(cases));
}

static void test_retry_after(void)
{
    static const h1_case cases[] = {
        {"seconds",
         "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n", DONE,
         false, 429, true, 120000, "", 0, NULL},
        {"zero seconds", "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n", DONE,
         false, 503, true, 0, "", 0, NULL},
        {"IMF-fixdate, a minute after now",
         "HTTP/1.1 503 Busy\r\nRetry-After: Thu, 01 Jan 2026 00:01:00 GMT\r\nContent-Length: 0"
         "\r\n\r\n",
         DONE, false, 503, true, 60000, "", 0, NULL},
        {"RFC 850 date",
         "HTTP/1.1 503 Busy\r\nRetry-After: Thursday, 01-Jan-26 00:00:05 GMT\r\n"
         "Content-Length: 0\r\n\r\n",
         DONE, false, 503, true, 5000, "", 0, NULL},
        {"a date in the past is 0",
         "HTTP/1.1 429 Slow\r\nRetry-After: Wed, 31 Dec 2025 23:00:00 GMT\r\nContent-Length: 0"
         "\r\n\r\n",
         DONE, false, 429, true, 0, "", 0, NULL},
        {"the last valid one counts",
         "HTTP/1.1 429 Slow\r\nRetry-After: 5\r\nRetry-After: 6\r\nContent-Length: 0\r\n\r\n", DONE,
         false, 429, true, 6000, "", 0, NULL},
        {"not understood: ignored",
         "HTTP/1.1 429 Slow\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n", DONE, false, 429,
         true, -1, "", 0, NULL},
        {"negative: ignored", "HTTP/1.1 429 Slow\r\nRetry-After: -5\r\nContent-Length: 0\r\n\r\n",
         DONE, false, 429, true, -1, "", 0, NULL},
        {"empty: ignored", "HTTP/1.1 429 Slow\r\nRetry-After:\r\nContent-Length: 0\r\n\r\n", DONE,
         false, 429, true, -1, "", 0, NULL},
        {"an invalid one keeps a valid one",
         "HTTP/1.1 429 Slow\r\nRetry-After: 3\r\nRetry-After: later\r\nContent-Length: 0\r\n\r\n",
         DONE, false, 429, true, 3000, "", 0, NULL},
        {"in a chunked trailer: not read",
         "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nRetry-After: 9\r\n\r\n", DONE,
         false, 503, true, -1, "", 0, NULL},
    };
    check_all(cases, JB_CASES_N(cases));
}

/* Answers that are not HTTP/1.x or whose framing cannot be trusted. */
static void test_bad_head(void)
{
    static const h1_case cases[] = {
        {"HTTP/2", "HTTP/2 200\r\n\r\n", BAD, false, 0, false, -1, "", 2, NOT_HTTP},
        {"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", BAD, false, 0, false, -1, "", 2, NOT_HTTP},
        {"lower case http", "http/1.1 200 OK\r\n\r\n", BAD, false, 0, false, -1, "", 2, NOT_HTTP},
        {"not HTTP at all", "SSH-2.0-OpenSSH_9.6\r\nmore", BAD, false, 0, false, -1, "", 4,
         NOT_HTTP},
        {"an empty first line", "\r\nHTTP/1.1 200 OK\r\n\r\n", BAD, false, 0, false, -1, "", 19,
         NOT_HTTP},
        {"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", BAD, false, 0, false, -1, "", 2,
         BAD_STATUS},
        {"status 099", "HTTP/1.1 099\r\n\r\n", BAD, false, 0, false, -1, "", 2, BAD_STATUS},
        {"status 600", "HTTP/1.1 600 Beyond\r\n\r\n", BAD, false, 0, false, -1, "", 2, BAD_STATUS},
        {"status with letters", "HTTP/1.1 2O0 OK\r\n\r\n", BAD, false, 0, false, -1, "", 2,
         BAD_STATUS},
        {"Content-Length 12a", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", BAD, false, 200,
         false, -1, "", 2, BAD_CL},
        {"Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length:  \r\n\r\n", BAD, false, 200,
         false, -1, "", 2, BAD_CL},
        {"Content-Length -1", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", BAD, false, 200,
         false, -1, "", 2, BAD_CL},
        {"Content-Length +1", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", BAD, false, 200,
         false, -1, "", 3, BAD_CL},
        {"Content-Length as a list", "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", BAD, false,
         200, false, -1, "", 3, BAD_CL},
        {"Content-Length 2^64", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
         BAD, false, 200, false, -1, "", 2, BAD_CL},
        {"Content-Length 2^60", "HTTP/1.1 200 OK\r\nContent-Length: 1152921504606846976\r\n\r\n",
         BAD, false, 200, false, -1, "", 2, BAD_CL},
        {"Content-Length far beyond 2^64",
         "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999999999\r\n\r\n", BAD, false,
         200, false, -1, "", 2, BAD_CL},
        {"conflicting Content-Length",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", BAD, false, 200,
         false, -1, "", 8, "the sink's answer has conflicting Content-Length headers"},
    };
    check_all(cases, JB_CASES_N(cases));
}

static void test_bad_chunks(void)
{
    static const h1_case cases[] = {
        {"chunk size not hex", CHUNKED "zz\r\n", BAD, false, 200, true, -1, "", 0, BAD_CHUNK},
        {"chunk size with junk", CHUNKED "5x\r\nhello\r\n", BAD, false, 200, true, -1, "", 7,
         BAD_CHUNK},
        {"chunk size negative", CHUNKED "-5\r\n", BAD, false, 200, true, -1, "", 0, BAD_CHUNK},
        {"chunk size line empty", CHUNKED "\r\n0\r\n\r\n", BAD, false, 200, true, -1, "", 5,
         BAD_CHUNK},
        {"chunk size 0x5", CHUNKED "0x5\r\nhello\r\n", BAD, false, 200, true, -1, "", 7, BAD_CHUNK},
        {"chunk longer than its size", CHUNKED "3\r\nabcd\r\n0\r\n\r\n", BAD, false, 200, true, -1,
         "abc", 5, LONG_CHUNK},
        {"chunk without its line end", CHUNKED "3\r\nabc0\r\n\r\n", BAD, false, 200, true, -1,
         "abc", 2, LONG_CHUNK},
        {"chunk size of 16 hex digits", CHUNKED "0000000000000001\r\na\r\n0\r\n\r\n", BAD, false,
         200, true, -1, "", 8, "a chunk of the sink's answer is too large"},
        {"chunk size 2^64", CHUNKED "10000000000000000\r\n", BAD, false, 200, true, -1, "", 0,
         "a chunk of the sink's answer is too large"},
    };
    check_all(cases, JB_CASES_N(cases));
}

/* The connection closed at every point where the answer is not complete. */
static void test_bad_eof(void)
{
    static const h1_case cases[] = {
        {"nothing", "", BAD, true, 0, false, -1, "", 0, "empty reply from the sink"},
        {"mid status line", "HTTP/1.1 20", BAD, true, 0, false, -1, "", 0, CUT},
        {"mid headers", "HTTP/1.1 200 OK\r\nContent-Le", BAD, true, 200, false, -1, "", 0, CUT},
        {"before the empty line", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", BAD, true, 200, false,
         -1, "", 0, CUT},
        {"mid body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", BAD, true, 200, true, -1,
         "abc", 0, CUT},
        {"mid chunk", CHUNKED "5\r\nab", BAD, true, 200, true, -1, "ab", 0, CUT},
        {"before the last chunk", CHUNKED "2\r\nab\r\n", BAD, true, 200, true, -1, "ab", 0, CUT},
        {"mid trailers", CHUNKED "0\r\nT: 1\r\n", BAD, true, 200, true, -1, "", 0, CUT},
    };
    check_all(cases, JB_CASES_N(cases));
}

/* A body pattern long enough to tell where a copy came from. */
static void fill(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 26) % 26);
}

/* Bodies longer than JB_DHTTP_BODY_KEEP: the first JB_DHTTP_BODY_KEEP bytes kept, the
 * whole answer used, with Content-Length, chunked and to the close. */
static void test_long_body(void)
{
    enum { LEN = JB_DHTTP_BODY_KEEP + 300 };
    char body[LEN];
    fill(body, LEN);
    char in[LEN + 256];

    int o = snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", LEN);
    memcpy(in + o, body, LEN);
    h1_case cl = {"long body, Content-Length", NULL, DONE, false, 200, true, -1, NULL, 0, NULL};
    check_input(&cl, in, (size_t)o + LEN, body, JB_DHTTP_BODY_KEEP);

    cl.name = "long body, Content-Length, then bytes";
    memcpy(in + o + LEN, "HTTP/1.1", 8);
    cl.rest = 8;
    check_input(&cl, in, (size_t)o + LEN + 8, body, JB_DHTTP_BODY_KEEP);

    /* Chunks of 500 and the rest: the cut falls inside the second chunk. */
    size_t n = (size_t)snprintf(in, sizeof(in), CHUNKED "1f4\r\n");
    memcpy(in + n, body, 500);
    n += 500;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n%x\r\n", LEN - 500);
    memcpy(in + n, body + 500, LEN - 500);
    n += LEN - 500;
    memcpy(in + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    h1_case ch = {"long body, chunked", NULL, DONE, false, 200, true, -1, NULL, 0, NULL};
    check_input(&ch, in, n, body, JB_DHTTP_BODY_KEEP);

    o = snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\n\r\n");
    memcpy(in + o, body, LEN);
    h1_case cl2 = {"long body, to the close", NULL, DONE, true, 200, false, -1, NULL, 0, NULL};
    check_input(&cl2, in, (size_t)o + LEN, body, JB_DHTTP_BODY_KEEP);

    o = snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                 JB_DHTTP_BODY_KEEP);
    memcpy(in + o, body, JB_DHTTP_BODY_KEEP);
    h1_case exact = {
        "body of exactly JB_DHTTP_BODY_KEEP", NULL, DONE, false, 200, true, -1, NULL, 0, NULL};
    check_input(&exact, in, (size_t)o + JB_DHTTP_BODY_KEEP, body, JB_DHTTP_BODY_KEEP);
}

/* "HTTP/1.1 200 OK", Content-Length: 0, then X-Pad lines of up to 1000 bytes, so that
 * the head (status line to the empty line, both included) is exactly `head` bytes
 * (>= 64). Returns the length. */
static size_t padded_answer(char *buf, size_t head)
{
    static const char start[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
    size_t o = sizeof(start) - 1;
    memcpy(buf, start, o);
    size_t end = head - 2;
    while (o < end) {
        size_t line = end - o > 1016 ? 1000 : end - o;
        memcpy(buf + o, "X-Pad: ", 7);
        memset(buf + o + 7, 'p', line - 9);
        memcpy(buf + o + line - 2, "\r\n", 2);
        o += line;
    }
    memcpy(buf + o, "\r\n", 2);
    return o + 2;
}

/* The header section is bounded by JB_H1_HEAD_MAX, interim answers included. */
static void test_head_max(void)
{
    char *in = malloc(JB_H1_HEAD_MAX + 4096);
    CU_ASSERT_FATAL(in != NULL);

    size_t n = padded_answer(in, JB_H1_HEAD_MAX);
    CU_ASSERT_EQUAL(n, JB_H1_HEAD_MAX);
    h1_case fits = {
        "head of exactly JB_H1_HEAD_MAX", NULL, DONE, false, 200, true, -1, NULL, 0, NULL};
    check_input(&fits, in, n, "", 0);

    n = padded_answer(in, JB_H1_HEAD_MAX + 1);
    h1_case over = {"head one byte over", NULL, DONE, false, 200, true, -1, NULL, 0, HEAD_LONG};
    over.st = BAD;
    over.keep_alive = false;
    check_input(&over, in, n, "", 0);

    /* An interim answer counts: the same head after a 100 Continue is too long. */
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t c = sizeof(cont) - 1;
    memcpy(in, cont, c);
    n = c + padded_answer(in + c, JB_H1_HEAD_MAX - c + 1);
    over.name = "100 Continue, then a head that makes it one byte over";
    check_input(&over, in, n, "", 0);

    /* Header lines that never end: BAD at the line that crosses the bound, which
     * a whole feed uses to its end. */
    n = padded_answer(in, JB_H1_HEAD_MAX + 2000);
    h1_run r;
    run(&r, in, n, 0, false);
    CU_ASSERT_EQUAL(r.st, BAD);
    CU_ASSERT_TRUE(same_error(r.p.error, HEAD_LONG));
    CU_ASSERT_TRUE(r.used > JB_H1_HEAD_MAX && r.used < n);
    CU_ASSERT_EQUAL(in[r.used - 1], '\n');
    CU_ASSERT_TRUE(stays(&r));
    run(&r, in, n, 1, false);
    CU_ASSERT_EQUAL(r.st, BAD);
    CU_ASSERT_EQUAL(r.used, JB_H1_HEAD_MAX + 1); /* a byte at a time: the byte that crosses */
    CU_ASSERT_TRUE(same_error(r.p.error, HEAD_LONG));
    free(in);
}

enum { LONG = JB_H1_LINE_KEEP + 500 };

/* Writes before, LONG bytes of fill, after; returns the length. */
static size_t around(char *buf, const char *before, char fill, const char *after)
{
    size_t n = strlen(before), m = strlen(after);
    memcpy(buf, before, n);
    memset(buf + n, fill, LONG);
    memcpy(buf + n + LONG, after, m);
    return n + LONG + m;
}

/* A header line longer than JB_H1_LINE_KEEP is skipped, unless the parser reads
 * it. */
static void test_long_lines(void)
{
    char in[3 * LONG];

    /* X-Long, then a Content-Length after it: the long line is skipped fine. */
    size_t n = around(in, "HTTP/1.1 200 OK\r\nX-Long: ", 'v', "\r\nContent-Length: 2\r\n\r\nok");
    h1_case c = {"X-Long skipped", NULL, DONE, false, 200, true, -1, NULL, 0, NULL};
    check_input(&c, in, n, "ok", 2);

    /* A line without a colon in its kept part, and a long trailer: skipped too. */
    n = around(in, "HTTP/1.1 200 OK\r\n", 'w',
               ": x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nk\r\n0\r\nX-T: ");
    n += around(in + n, "", 't', "\r\n\r\n");
    c.name = "long colon-less line and long trailer skipped";
    check_input(&c, in, n, "k", 1);

    /* Content-Length with a value padded by blanks past the kept part: BAD. */
    n = around(in, "HTTP/1.1 200 OK\r\nContent-Length: 2", ' ', "\r\n\r\nok");
    c = (h1_case){
        "Content-Length line too long", NULL, BAD, false, 200, false, -1, NULL, 4, HEADER_LONG};
    check_input(&c, in, n, "", 0);

    /* So is a long Retry-After, Connection or Transfer-Encoding. */
    static const char *const heads[] = {
        "HTTP/1.1 503 Busy\r\nRetry-After: ", "HTTP/1.1 503 Busy\r\nconnection: ",
        "HTTP/1.1 503 Busy\r\nTransfer-Encoding: "};
    for (size_t i = 0; i < JB_CASES_N(heads); i++) {
        n = around(in, heads[i], '1', "\r\nContent-Length: 0\r\n\r\n");
        c = (h1_case){heads[i], NULL, BAD, false, 503, false, -1, NULL, 21, HEADER_LONG};
        check_input(&c, in, n, "", 0);
    }

    n = around(in, "HTTP/1.1 200 ", 'r', "\r\n\r\n");
    c = (h1_case){"status line too long", NULL, BAD, false, 0, false, -1, NULL, 2, LONG_STATUS};
    check_input(&c, in, n, "", 0);

    n = around(in, CHUNKED "1;ext=", 'e', "\r\nx\r\n0\r\n\r\n");
    c = (h1_case){
        "chunk-size line too long", NULL, BAD, false, 200, true, -1, NULL, 8, LONG_CHUNK_LINE};
    check_input(&c, in, n, "", 0);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"framing_basic", test_framing_basic},
        {"framing_body", test_framing_body},
        {"interim", test_interim},
        {"bytes_after", test_bytes_after},
        {"retry_after", test_retry_after},
        {"bad_head", test_bad_head},
        {"bad_chunks", test_bad_chunks},
        {"bad_eof", test_bad_eof},
        {"long_body", test_long_body},
        {"head_max", test_head_max},
        {"long_lines", test_long_lines},
    };
    return jb_cunit_main("dispatcher_h1", NULL, NULL, cases, JB_CASES_N(cases));
}
