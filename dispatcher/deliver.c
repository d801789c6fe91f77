/* How a stored event becomes the HTTP request a sink sees: the producer's type
 * (originaltype), tracing headers restored, CloudEvents binary mode by default. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dispatcher/disp_internal.h"
#include "proto/jb_ce.h"

/* Tracing extensions as the publisher stored them, and the headers they came from
 * (docs/contract.md 2.3). */
static const struct {
    const char *ext;
    const char *header;
} tracing[] = {
    {"traceparent", "traceparent"},          {"b3traceid", "X-B3-TraceId"},
    {"b3parentspanid", "X-B3-ParentSpanId"}, {"b3spanid", "X-B3-SpanId"},
    {"b3sampled", "X-B3-Sampled"},           {"b3flags", "X-B3-Flags"},
};

/* Header lines are collected here ("name: value" each, NUL-terminated) and become
 * one allocation at the end (finish_headers): a list built with curl_slist_append
 * costs two allocations per header, a dozen per event. */
#define HDR_STACK 2048

typedef struct hdr_ctx {
    char *buf; /* stack, or malloc'd once the lines outgrow it */
    size_t len, cap, n;
    bool content_type;
    bool failed;
    char stack[HDR_STACK];
} hdr_ctx;

/* Room for more bytes of lines; false (and c->failed) when out of memory. */
static bool reserve(hdr_ctx *c, size_t more)
{
    if (more <= c->cap - c->len)
        return true;
    size_t cap = c->cap * 2 > c->len + more ? c->cap * 2 : c->len + more;
    char *b = c->buf == c->stack ? malloc(cap) : realloc(c->buf, cap);
    if (b == NULL) {
        c->failed = true;
        return false;
    }
    if (c->buf == c->stack)
        memcpy(b, c->stack, c->len);
    c->buf = b;
    c->cap = cap;
    return true;
}

/* Adds "name: value". An empty value removes a header curl would add itself
 * (Content-Type, Expect) unless keep_empty, which sends it empty ("name;" is
 * curl's spelling for that). */
static void add_header_line(hdr_ctx *c, const char *name, const char *value, size_t len,
                            bool keep_empty)
{
    if (c->failed)
        return;
    /* A value with a line break would inject headers; the publisher refuses such
     * values with this same rule, this is the last line of defence. It also
     * refuses NUL, which would end the line early. */
    if (len > 0 && !jb_ce_http_value_ok(value, len))
        return;
    size_t nlen = strlen(name);
    if (!reserve(c, nlen + len + 3))
        return;
    char *line = c->buf + c->len;
    memcpy(line, name, nlen);
    if (len == 0 && keep_empty) {
        memcpy(line + nlen, ";", 2);
        c->len += nlen + 2;
    } else {
        memcpy(line + nlen, ": ", 2);
        memcpy(line + nlen + 2, value, len);
        line[nlen + 2 + len] = '\0';
        c->len += nlen + len + 3;
    }
    c->n++;
    if (nlen == 12 && strcasecmp(name, "content-type") == 0)
        c->content_type = true;
}

/* The collected lines as one block: the list nodes, then the lines they point
 * to, in buf[0..cap) when they fit, else allocated. On success sets out's headers,
 * hblock, hblock_own and hlast (all NULL for no lines). */
static jb_status finish_headers(const hdr_ctx *c, void *buf, size_t cap, jb_dreq *out)
{
    out->hblock_own = false;
    if (c->n == 0) {
        out->headers = out->hlast = NULL;
        out->hblock = NULL;
        return JB_OK;
    }
    size_t nodes = c->n * sizeof(struct curl_slist);
    char *block = buf;
    if (buf == NULL || nodes + c->len > cap) {
        block = malloc(nodes + c->len);
        if (block == NULL)
            return JB_ERR_NOMEM;
        out->hblock_own = true;
    }
    struct curl_slist *l = (struct curl_slist *)(void *)block;
    char *text = block + nodes;
    memcpy(text, c->buf, c->len);
    size_t off = 0;
    for (size_t i = 0; i < c->n; i++) {
        l[i].data = text + off;
        l[i].next = i + 1 < c->n ? &l[i + 1] : NULL;
        off += strlen(text + off) + 1;
    }
    out->headers = l;
    out->hlast = &l[c->n - 1];
    out->hblock = block;
    return JB_OK;
}

static void add_header(hdr_ctx *c, const char *name, const char *value, size_t len)
{
    add_header_line(c, name, value, len, false);
}

/* An attribute's header: an empty extension value reaches the sink as an empty
 * header, not as no header. */
static void emit(void *ud, const char *name, const char *value, size_t value_len)
{
    add_header_line(ud, name, value, value_len, true);
}

#define NTRACING (sizeof(tracing) / sizeof(tracing[0]))

static void restore_producer_view(jb_ce *ce, hdr_ctx *c)
{
    /* One pass over the attributes finds what seven lookups by name found (names
     * are unique; values stay where they are until their own attribute changes);
     * the changes then follow in the same order. */
    const char *orig = NULL, *tv[NTRACING] = {NULL};
    size_t olen = 0, tl[NTRACING] = {0};
    size_t n = jb_ce_attr_count(ce);
    for (size_t i = 0; i < n; i++) {
        const char *an, *av;
        size_t al;
        jb_ce_attr_at(ce, i, &an, &av, &al);
        if (an[0] == 'o' && strcmp(an, "originaltype") == 0) {
            orig = av;
            olen = al;
            continue;
        }
        if (an[0] != 't' && an[0] != 'b')
            continue;
        for (size_t k = 0; k < NTRACING; k++) {
            if (an[0] == tracing[k].ext[0] && strcmp(an, tracing[k].ext) == 0) {
                tv[k] = av;
                tl[k] = al;
                break;
            }
        }
    }
    if (orig != NULL && olen > 0) {
        if (jb_ce_set(ce, "type", orig, olen) != JB_OK)
            c->failed = true;
        jb_ce_unset(ce, "originaltype");
    }
    for (size_t k = 0; k < NTRACING; k++) {
        if (tv[k] == NULL)
            continue;
        add_header(c, tracing[k].header, tv[k], tl[k]);
        jb_ce_unset(ce, tracing[k].ext);
    }
}

jb_status jb_dreq_build(jb_ce *ce, bool structured, jb_dreq *out)
{
    return jb_dreq_build_in(ce, structured, NULL, 0, out);
}

jb_status jb_dreq_build_in(jb_ce *ce, bool structured, void *buf, size_t cap, jb_dreq *out)
{
    jb_status st = JB_ERR_NOMEM;
    hdr_ctx c;
    c.buf = c.stack;
    c.len = c.n = 0;
    c.cap = sizeof(c.stack);
    c.content_type = c.failed = false;
    char *json = NULL;
    size_t json_len = 0;
    restore_producer_view(ce, &c);
    if (structured) {
        st = jb_ce_to_json(ce, &json, &json_len);
        if (st != JB_OK)
            goto out;
        add_header(&c, "Content-Type", "application/cloudevents+json", 28);
    } else {
        st = jb_ce_to_http_binary(ce, emit, &c);
        if (st != JB_OK)
            goto out;
        /* Without this, curl labels a POST application/x-www-form-urlencoded. */
        if (!c.content_type)
            add_header(&c, "Content-Type", "", 0);
    }
    /* No "Expect: 100-continue" round trip for large bodies (curl asks for one
     * past 1 MiB). */
    add_header(&c, "Expect", "", 0);
    st = c.failed ? JB_ERR_NOMEM : finish_headers(&c, buf, cap, out);
    if (st != JB_OK)
        goto out;
    out->body = json;
    if (structured) {
        out->data = (const uint8_t *)json;
        out->len = json_len;
    } else {
        out->data = jb_ce_data(ce, &out->len);
    }
    json = NULL;
out:
    if (c.buf != c.stack)
        free(c.buf);
    free(json);
    return st;
}

void jb_dreq_free(jb_dreq *r)
{
    /* What was appended after the built block (the sink's credentials: wiped),
     * then the block; a list without a block was appended to an empty one. */
    struct curl_slist *tail = r->hblock != NULL ? r->hlast->next : r->headers;
    for (struct curl_slist *x = tail; x != NULL; x = x->next)
        explicit_bzero(x->data, strlen(x->data));
    curl_slist_free_all(tail);
    if (r->hblock_own)
        free(r->hblock);
    free(r->body);
    memset(r, 0, sizeof(*r));
}
