/*
 * libFuzzer target for the dispatcher's JetStream reply-subject parser
 * (jb_disp_parse_ack_subject, dispatcher/pull.c): `$JS.ACK.<stream>.<consumer>.<delivered>.
 * <sseq>.<cseq>.<ts>.<pending>`, or with `<domain>.<account hash>` after the prefix and an
 * optional trailing token. The input is copied to an exact-size buffer (no NUL), so any
 * read past its length is caught. Properties: a refused subject leaves the out-param
 * alone; an accepted one starts with `$JS.ACK.`, has 7, 9 or 10 non-empty tokens after it,
 * a consumer that is one whole token of the input (no dot, inside the buffer), a delivery
 * count >= 1, and numbers that print back to the digits they came from; an accepted
 * subject is still accepted with the same result when rebuilt in the other form.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/disp_internal.h"

#define PRE "$JS.ACK."

static bool parse(const char *s, size_t len, jb_disp_meta *m)
{
    char *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return false;
    if (len > 0)
        memcpy(buf, s, len);
    jb_disp_meta sentinel = {(const char *)&sentinel, 7, 99, 98}, got = sentinel;
    bool ok = jb_disp_parse_ack_subject(buf, len, &got);
    if (!ok && memcmp(&got, &sentinel, sizeof(got)) != 0)
        abort(); /* out-param written on failure */
    if (ok) {
        if (got.consumer < buf || got.consumer + got.consumer_len > buf + len ||
            got.consumer_len == 0 || memchr(got.consumer, '.', got.consumer_len) != NULL)
            abort();
        /* The consumer is one whole token: dots (or the ends) on both sides. */
        if (got.consumer[-1] != '.' ||
            (got.consumer + got.consumer_len < buf + len && got.consumer[got.consumer_len] != '.'))
            abort();
        if (got.delivered == 0)
            abort();
        got.consumer = s + (got.consumer - buf); /* rebased: buf is freed */
    }
    free(buf);
    if (ok)
        *m = got;
    return ok;
}

/* Splits s after the prefix into tokens; -1 when a token is empty or there are > 16. */
static int tokens(const char *s, size_t len, const char *tok[16], size_t tlen[16])
{
    size_t plen = sizeof(PRE) - 1;
    if (len < plen || memcmp(s, PRE, plen) != 0)
        return -1;
    int n = 0;
    const char *p = s + plen, *end = s + len;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *e = dot != NULL ? dot : end;
        if (e == p || n == 16)
            return -1;
        tok[n] = p;
        tlen[n++] = (size_t)(e - p);
        if (dot == NULL)
            return n;
        p = dot + 1;
    }
}

static void check_number(const char *t, size_t len, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
    /* Leading zeros are digits too: compare the value, not the spelling. */
    size_t z = 0;
    while (z + 1 < len && t[z] == '0')
        z++;
    if (n < 0 || (size_t)n != len - z || memcmp(buf, t + z, len - z) != 0)
        abort();
}

/* The old form <stream>.<consumer>.<7 numbers> and the new one with a domain and an
 * account hash in front say the same thing. */
static void check_other_form(const char *tok[16], const size_t tlen[16], int n,
                             const jb_disp_meta *m)
{
    int at = n == 7 ? 0 : 2;
    char buf[4096];
    size_t o = 0;
    const char *front = n == 7 ? PRE "dom.acchash." : PRE;
    size_t flen = strlen(front);
    memcpy(buf, front, flen);
    o = flen;
    for (int i = at; i < at + 7; i++) {
        if (o + tlen[i] + 1 > sizeof(buf))
            return;
        memcpy(buf + o, tok[i], tlen[i]);
        o += tlen[i];
        buf[o++] = '.';
    }
    o--; /* the last dot */
    jb_disp_meta m2;
    if (!parse(buf, o, &m2))
        abort();
    if (m2.delivered != m->delivered || m2.stream_seq != m->stream_seq ||
        m2.consumer_len != m->consumer_len ||
        memcmp(m2.consumer, m->consumer, m->consumer_len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    jb_disp_meta m;
    bool ok = parse(s, size, &m);
    if (!ok)
        return 0;
    const char *tok[16];
    size_t tlen[16];
    int n = tokens(s, size, tok, tlen);
    if (n != 7 && n != 9 && n != 10)
        abort();
    int at = n == 7 ? 0 : 2;
    if (m.consumer != tok[at + 1] || m.consumer_len != tlen[at + 1])
        abort();
    check_number(tok[at + 2], tlen[at + 2], m.delivered);
    check_number(tok[at + 3], tlen[at + 3], m.stream_seq);
    check_other_form(tok, tlen, n, &m);
    return 0;
}
