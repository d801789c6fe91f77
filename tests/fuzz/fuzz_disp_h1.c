/*
 * libFuzzer target for the plain-HTTP lane's response parser (dispatcher/h1.c). The
 * first input byte picks how the rest (the sink's bytes) is cut into pieces: a fixed
 * size of 1 to 64 bytes, pseudo-random sizes of 0 to 16 (empty feeds included), a cut
 * after every LF, or a cut after every CR. Each piece is copied into a buffer of its
 * exact size, so that a read past it is caught; when the pieces leave the parser
 * wanting more, the close (jb_h1_eof) follows. Properties: no crash or undefined
 * behaviour; `used` never exceeds the piece, and is all of it while the parser wants
 * more; after DONE the status is 200..599 and body_len <= JB_DHTTP_BODY_KEEP; a BAD
 * answer has a non-empty error; after DONE or BAD a further feed uses nothing and a
 * feed or a close keeps the state; the whole input fed at once gives the same state,
 * status, keep_alive, Retry-After, error and body bytes as the pieces, and after DONE
 * the same bytes used (on BAD a whole feed may use the rest of the line it stopped on).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/disp_h1.h"

/* A fixed "now" (2026-01-01T00:00:00Z) for Retry-After dates. */
#define NOW_MS 1767225600000LL

typedef struct {
    jb_h1 p;
    jb_h1_state st;
    size_t used;
} run_t;

/* Feeds data[0..n) from an exact-size copy. */
static void feed(run_t *r, const uint8_t *data, size_t n)
{
    char *piece = malloc(n > 0 ? n : 1);
    if (piece == NULL)
        abort();
    if (n > 0)
        memcpy(piece, data, n);
    size_t used = SIZE_MAX;
    jb_h1_state was = r->st;
    r->st = jb_h1_feed(&r->p, piece, n, &used);
    free(piece);
    if (used > n)
        abort();
    if (r->st == JB_H1_MORE && used != n)
        abort();
    if (was != JB_H1_MORE && (used != 0 || r->st != was))
        abort(); /* nothing more is read after DONE or BAD */
    r->used += used;
}

/* The end of the piece that starts at off, for split pattern `how`. */
static size_t cut(uint8_t how, const uint8_t *data, size_t off, size_t size, uint32_t *rnd)
{
    size_t left = size - off, n;
    switch (how & 3) {
    case 0:
        n = (size_t)(how >> 2) + 1;
        break;
    case 1:
        *rnd ^= *rnd << 13;
        *rnd ^= *rnd >> 17;
        *rnd ^= *rnd << 5;
        n = *rnd % 17;
        break;
    default: {
        const uint8_t *end = memchr(data + off, (how & 3) == 2 ? '\n' : '\r', left);
        n = end != NULL ? (size_t)(end - (data + off)) + 1 : left;
        break;
    }
    }
    return n < left ? n : left;
}

static void finish(run_t *r)
{
    if (r->st == JB_H1_MORE)
        r->st = jb_h1_eof(&r->p);
    if (r->st == JB_H1_MORE)
        abort(); /* the close always decides */
    if (r->st == JB_H1_DONE &&
        (r->p.status < 200 || r->p.status > 599 || r->p.body_len > JB_DHTTP_BODY_KEEP))
        abort();
    if (r->st == JB_H1_BAD && (r->p.error == NULL || r->p.error[0] == '\0'))
        abort();
    static const uint8_t more[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    jb_h1_state st = r->st;
    feed(r, more, sizeof(more) - 1);
    if (jb_h1_eof(&r->p) != st)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t how = data[0];
    data++;
    size--;

    static run_t whole, pieces;
    jb_h1_init(&whole.p, NOW_MS);
    whole.st = JB_H1_MORE;
    whole.used = 0;
    feed(&whole, data, size);
    finish(&whole);

    jb_h1_init(&pieces.p, NOW_MS);
    pieces.st = JB_H1_MORE;
    pieces.used = 0;
    uint32_t rnd = 0x9e3779b9u ^ how;
    size_t feeds = 0;
    for (size_t off = 0; pieces.st == JB_H1_MORE && off < size; feeds++) {
        /* Empty pieces are fed too, but not forever: the rest at once past a bound. */
        size_t n = feeds < 4 * size + 16 ? cut(how, data, off, size, &rnd) : size - off;
        feed(&pieces, data + off, n);
        off += n;
    }
    finish(&pieces);

    if (whole.st != pieces.st || whole.p.status != pieces.p.status ||
        whole.p.keep_alive != pieces.p.keep_alive ||
        whole.p.retry_after_ms != pieces.p.retry_after_ms || whole.p.error != pieces.p.error ||
        whole.p.body_len != pieces.p.body_len ||
        memcmp(whole.p.body, pieces.p.body, whole.p.body_len) != 0)
        abort();
    if (whole.st == JB_H1_DONE && whole.used != pieces.used)
        abort();
    return 0;
}
