/* The answer to one HTTP/1.1 POST, parsed as it arrives (RFC 9112): status line,
 * header lines, then a body framed by chunked coding, Content-Length or the
 * connection's close. Interim 1xx answers are skipped. Only what the dispatcher
 * uses is read (status, Retry-After, whether the connection stays open, the first
 * JB_DHTTP_BODY_KEEP bytes of the body); the rest is counted and dropped. Lenient
 * where curl is (a bare LF ends a line, a line without a colon is ignored), strict
 * where framing is at stake (a bad or conflicting Content-Length, a bad chunk
 * size). */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "dispatcher/disp_h1.h"
#include "dispatcher/jb_disp.h"

enum {
    P_STATUS,     /* the status line */
    P_HEADERS,    /* header lines up to the empty one */
    P_BODY_LEN,   /* left more body bytes */
    P_BODY_CLOSE, /* body bytes up to the close */
    P_CHUNK_SIZE, /* a chunk-size line */
    P_CHUNK_DATA, /* left more bytes of the chunk */
    P_CHUNK_END,  /* the line break after a chunk's data */
    P_TRAILERS,   /* trailer lines up to the empty one */
    P_DONE,
    P_BAD,
};

/* Fits in 60 bits: no overflow adding to it, and beyond any body a sink sends. */
#define CHUNK_HEX_MAX 15
#define LENGTH_MAX    (UINT64_C(1) << 60)

static void reset_answer(jb_h1 *p)
{
    p->status = 0;
    p->retry_after_ms = -1;
    p->chunked = p->until_close = p->close = p->ka = p->cl_seen = false;
    p->content_length = 0;
}

void jb_h1_init(jb_h1 *p, int64_t now_wall_ms)
{
    memset(p, 0, offsetof(jb_h1, line));
    p->now_wall_ms = now_wall_ms;
    p->phase = P_STATUS;
    reset_answer(p);
}

static jb_h1_state bad(jb_h1 *p, const char *why)
{
    p->phase = P_BAD;
    p->error = why;
    return JB_H1_BAD;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* The header names whose values the parser reads. */
static bool name_read(const char *name, size_t len)
{
    return name_is(name, len, "content-length") || name_is(name, len, "transfer-encoding") ||
           name_is(name, len, "connection") || name_is(name, len, "retry-after");
}

/* "HTTP/1.x SSS[ reason]". */
static jb_h1_state status_line(jb_h1 *p, const char *s, size_t len)
{
    if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return bad(p, "the sink's answer is not HTTP/1.x");
    if (s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (len > 12 && s[12] != ' '))
        return bad(p, "the sink's answer has an invalid status code");
    p->version_minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (p->status == 101)
        return bad(p, "the sink switched protocols");
    p->phase = P_HEADERS;
    return JB_H1_MORE;
}

/* Calls tok(p, token, len) for each comma-separated token of v, trimmed. */
static void each_token(jb_h1 *p, const char *v, size_t len,
                       void (*tok)(jb_h1 *p, const char *t, size_t n))
{
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_blank(v[a]))
            a++;
        while (b > a && is_blank(v[b - 1]))
            b--;
        tok(p, v + a, b - a);
        i = j + 1;
    }
}

static void connection_token(jb_h1 *p, const char *t, size_t n)
{
    if (name_is(t, n, "close"))
        p->close = true;
    else if (name_is(t, n, "keep-alive"))
        p->ka = true;
}

/* The last coding decides: chunked, or anything else (the body runs to the close). */
static void coding_token(jb_h1 *p, const char *t, size_t n)
{
    if (n == 0)
        return;
    p->chunked = name_is(t, n, "chunked");
    p->until_close = !p->chunked;
}

static jb_h1_state content_length(jb_h1 *p, const char *v, size_t len)
{
    uint64_t n = 0;
    if (len == 0)
        return bad(p, "the sink's answer has an invalid Content-Length");
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n >= LENGTH_MAX / 10)
            return bad(p, "the sink's answer has an invalid Content-Length");
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (p->cl_seen && n != p->content_length)
        return bad(p, "the sink's answer has conflicting Content-Length headers");
    p->cl_seen = true;
    p->content_length = n;
    return JB_H1_MORE;
}

/* One header line (no line break). */
static jb_h1_state header_line(jb_h1 *p, const char *s, size_t len, bool truncated)
{
    if (len > 0 && is_blank(s[0]))
        return JB_H1_MORE; /* a folded continuation: of no header read here */
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return JB_H1_MORE;
    size_t nlen = (size_t)(colon - s);
    if (!name_read(s, nlen))
        return JB_H1_MORE;
    if (truncated)
        return bad(p, "a header of the sink's answer is too long");
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && is_blank(v[0]))
        v++, vlen--;
    while (vlen > 0 && is_blank(v[vlen - 1]))
        vlen--;
    switch (s[0] | 0x20) {
    case 'c':
        if (nlen == 14)
            return content_length(p, v, vlen);
        each_token(p, v, vlen, connection_token);
        break;
    case 't':
        each_token(p, v, vlen, coding_token);
        break;
    default: {
        int64_t ms;
        if (jb_disp_parse_retry_after(v, vlen, p->now_wall_ms, &ms))
            p->retry_after_ms = ms;
        break;
    }
    }
    return JB_H1_MORE;
}

/* The empty line after the headers: what frames the body. */
static jb_h1_state end_of_head(jb_h1 *p)
{
    if (p->status < 200) {
        reset_answer(p); /* interim: the real answer follows */
        p->phase = P_STATUS;
        return JB_H1_MORE;
    }
    p->keep_alive = !p->close && (p->version_minor >= 1 || p->ka);
    if (p->status == 204 || p->status == 304) {
        p->phase = P_DONE;
        return JB_H1_DONE;
    }
    if (p->chunked) {
        p->phase = P_CHUNK_SIZE;
    } else if (p->until_close || !p->cl_seen) {
        p->keep_alive = false;
        p->phase = P_BODY_CLOSE;
    } else if (p->content_length == 0) {
        p->phase = P_DONE;
        return JB_H1_DONE;
    } else {
        p->left = p->content_length;
        p->phase = P_BODY_LEN;
    }
    return JB_H1_MORE;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "<hex size>[ ; extensions]". */
static jb_h1_state chunk_size_line(jb_h1 *p, const char *s, size_t len)
{
    uint64_t n = 0;
    size_t i = 0;
    while (i < len && hex(s[i]) >= 0) {
        if (i == CHUNK_HEX_MAX)
            return bad(p, "a chunk of the sink's answer is too large");
        n = n << 4 | (uint64_t)hex(s[i]);
        i++;
    }
    if (i == 0 || (i < len && s[i] != ';' && !is_blank(s[i])))
        return bad(p, "the sink's answer has an invalid chunk size");
    if (n == 0) {
        p->phase = P_TRAILERS;
    } else {
        p->left = n;
        p->phase = P_CHUNK_DATA;
    }
    return JB_H1_MORE;
}

/* A whole line (the line break stripped) in the current phase. */
static jb_h1_state line_done(jb_h1 *p, bool truncated)
{
    size_t len = truncated ? sizeof(p->line) : p->line_len;
    if (len > 0 && p->line[len - 1] == '\r' && !truncated)
        len--;
    const char *s = p->line;
    switch (p->phase) {
    case P_STATUS:
        if (truncated)
            return bad(p, "the sink's status line is too long");
        return status_line(p, s, len);
    case P_HEADERS:
        return len == 0 ? end_of_head(p) : header_line(p, s, len, truncated);
    case P_CHUNK_SIZE:
        if (truncated)
            return bad(p, "a chunk-size line of the sink's answer is too long");
        return chunk_size_line(p, s, len);
    case P_CHUNK_END:
        if (len != 0)
            return bad(p, "a chunk of the sink's answer is longer than its size");
        p->phase = P_CHUNK_SIZE;
        return JB_H1_MORE;
    default: /* P_TRAILERS: read to the empty line, not used */
        if (len != 0)
            return JB_H1_MORE;
        p->phase = P_DONE;
        return JB_H1_DONE;
    }
}

static bool counts_as_head(const jb_h1 *p)
{
    return p->phase == P_STATUS || p->phase == P_HEADERS || p->phase == P_TRAILERS;
}

static void keep_body(jb_h1 *p, const char *data, size_t n)
{
    size_t room = sizeof(p->body) - p->body_len;
    size_t take = n < room ? n : room;
    memcpy(p->body + p->body_len, data, take);
    p->body_len += take;
}

jb_h1_state jb_h1_feed(jb_h1 *p, const char *data, size_t len, size_t *used)
{
    size_t i = 0;
    jb_h1_state st = p->phase == P_DONE ? JB_H1_DONE : p->phase == P_BAD ? JB_H1_BAD : JB_H1_MORE;
    while (st == JB_H1_MORE && i < len) {
        if (p->phase == P_BODY_LEN || p->phase == P_CHUNK_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > p->left)
                n = (size_t)p->left;
            keep_body(p, data + i, n);
            i += n;
            p->left -= n;
            if (p->left == 0) {
                if (p->phase == P_CHUNK_DATA) {
                    p->phase = P_CHUNK_END;
                } else {
                    p->phase = P_DONE;
                    st = JB_H1_DONE;
                }
            }
            continue;
        }
        if (p->phase == P_BODY_CLOSE) {
            keep_body(p, data + i, len - i);
            i = len;
            continue;
        }
        /* A line: up to and with its LF. */
        const char *lf = memchr(data + i, '\n', len - i);
        size_t n = lf != NULL ? (size_t)(lf - (data + i)) : len - i;
        if (counts_as_head(p)) {
            p->head += n + (lf != NULL);
            if (p->head > JB_H1_HEAD_MAX) {
                st = bad(p, "the sink's answer headers are too long");
                i += n + (lf != NULL);
                break;
            }
        }
        if (p->line_len < sizeof(p->line)) {
            size_t room = sizeof(p->line) - p->line_len;
            memcpy(p->line + p->line_len, data + i, n < room ? n : room);
        }
        p->line_len = p->line_len + n < p->line_len ? SIZE_MAX : p->line_len + n;
        i += n;
        if (lf == NULL)
            break;
        i++;
        bool truncated = p->line_len > sizeof(p->line);
        st = line_done(p, truncated);
        p->line_len = 0;
    }
    p->seen += i;
    *used = i;
    return st;
}

jb_h1_state jb_h1_eof(jb_h1 *p)
{
    if (p->phase == P_DONE)
        return JB_H1_DONE;
    if (p->phase == P_BAD)
        return JB_H1_BAD;
    if (p->phase == P_BODY_CLOSE) {
        p->phase = P_DONE;
        p->keep_alive = false;
        return JB_H1_DONE;
    }
    if (p->seen == 0)
        return bad(p, "empty reply from the sink");
    return bad(p, "the sink closed the connection before its answer was complete");
}
