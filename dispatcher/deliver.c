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

typedef struct hdr_ctx {
    struct curl_slist *list;
    bool content_type;
    bool failed;
} hdr_ctx;

/* Adds "name: value". An empty value removes a header curl would add itself
 * (Content-Type, Expect) unless keep_empty, which sends it empty ("name;" is
 * curl's spelling for that). */
static void add_header_line(hdr_ctx *c, const char *name, const char *value, size_t len,
                            bool keep_empty)
{
    if (c->failed)
        return;
    /* A value with a line break would inject headers; the publisher refuses such
     * values with this same rule, this is the last line of defence. */
    if (len > 0 && !jb_ce_http_value_ok(value, len))
        return;
    size_t nlen = strlen(name);
    char stackbuf[1024];
    char *line = nlen + len + 3 <= sizeof(stackbuf) ? stackbuf : malloc(nlen + len + 3);
    if (line == NULL) {
        c->failed = true;
        return;
    }
    memcpy(line, name, nlen);
    if (len == 0 && keep_empty) {
        memcpy(line + nlen, ";", 2);
    } else {
        memcpy(line + nlen, ": ", 2);
        memcpy(line + nlen + 2, value, len);
        line[nlen + 2 + len] = '\0';
    }
    struct curl_slist *n = curl_slist_append(c->list, line);
    if (n == NULL)
        c->failed = true;
    else
        c->list = n;
    if (line != stackbuf)
        free(line);
    if (strcasecmp(name, "content-type") == 0)
        c->content_type = true;
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

static void restore_producer_view(jb_ce *ce, hdr_ctx *c)
{
    size_t len;
    const char *orig = jb_ce_get(ce, "originaltype", &len);
    if (orig != NULL && len > 0) {
        if (jb_ce_set(ce, "type", orig, len) != JB_OK)
            c->failed = true;
        jb_ce_unset(ce, "originaltype");
    }
    for (size_t i = 0; i < sizeof(tracing) / sizeof(tracing[0]); i++) {
        const char *v = jb_ce_get(ce, tracing[i].ext, &len);
        if (v == NULL)
            continue;
        add_header(c, tracing[i].header, v, len);
        jb_ce_unset(ce, tracing[i].ext);
    }
}

jb_status jb_dreq_build(jb_ce *ce, bool structured, jb_dreq *out)
{
    jb_status st = JB_ERR_NOMEM;
    hdr_ctx c = {0};
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
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    add_header(&c, "Expect", "", 0);
    if (c.failed) {
        st = JB_ERR_NOMEM;
        goto out;
    }
    out->headers = c.list;
    c.list = NULL;
    out->body = json;
    if (structured) {
        out->data = (const uint8_t *)json;
        out->len = json_len;
    } else {
        out->data = jb_ce_data(ce, &out->len);
    }
    json = NULL;
    st = JB_OK;
out:
    curl_slist_free_all(c.list);
    free(json);
    return st;
}

void jb_dreq_free(jb_dreq *r)
{
    curl_slist_free_all(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}
