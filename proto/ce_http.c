/*
 * HTTP protocol binding: content mode detection, binary mode (ce- headers) and
 * the percent-encoding of header values. This is the publisher's hot path, so
 * header values are decoded into a stack buffer and copied once into the model.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/ce_internal.h"
#include "proto/jb_ce.h"

/* ------------------------------------------------------------- detection */

static bool has_prefix_ci(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && jb_ce_ieq(s, n, lit);
}

/* Maps the format suffix after "+" to a mode. */
static jb_ce_http_mode format_mode(const char *f, size_t n, bool batch)
{
    if (jb_ce_ieq(f, n, "json"))
        return batch ? JB_CE_HTTP_BATCH_JSON : JB_CE_HTTP_STRUCTURED_JSON;
    if (jb_ce_ieq(f, n, "protobuf"))
        return batch ? JB_CE_HTTP_BATCH_PROTOBUF : JB_CE_HTTP_STRUCTURED_PROTOBUF;
    return JB_CE_HTTP_UNSUPPORTED;
}

jb_ce_http_mode jb_ce_http_detect(const char *content_type, size_t len)
{
    if (content_type == NULL)
        return JB_CE_HTTP_BINARY;
    size_t b = 0;
    while (b < len && (content_type[b] == ' ' || content_type[b] == '\t'))
        b++;
    size_t e = b;
    while (e < len && content_type[e] != ';')
        e++;
    while (e > b && (content_type[e - 1] == ' ' || content_type[e - 1] == '\t'))
        e--;
    const char *m = content_type + b;
    size_t n = e - b;
    static const char batch[] = "application/cloudevents-batch";
    static const char single[] = "application/cloudevents";
    /* The batch prefix first: "application/cloudevents" is a prefix of it. */
    if (has_prefix_ci(m, n, batch)) {
        size_t k = sizeof(batch) - 1;
        if (n == k)
            return JB_CE_HTTP_UNSUPPORTED;
        if (m[k] == '+')
            return format_mode(m + k + 1, n - k - 1, true);
        return JB_CE_HTTP_BINARY;
    }
    if (has_prefix_ci(m, n, single)) {
        size_t k = sizeof(single) - 1;
        if (n == k)
            return JB_CE_HTTP_UNSUPPORTED;
        if (m[k] == '+')
            return format_mode(m + k + 1, n - k - 1, false);
    }
    return JB_CE_HTTP_BINARY;
}

/* ------------------------------------------------------ percent-encoding */

static const char hexdig[] = "0123456789ABCDEF";

/* Bytes written as %XX: controls, space, DEL and above, '"' and '%'. */
static const bool pct_escaped[256] = {
    [0x00 ... 0x20] = 1,
    ['"'] = 1,
    ['%'] = 1,
    [0x7F ... 0xFF] = 1,
};

size_t jb_ce_pct_encode_into(const char *in, size_t len, char *out)
{
    /* Runs of bytes that stay as they are are copied at once: values are
     * mostly plain (every attribute of every event goes through here). */
    size_t j = 0, i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && !pct_escaped[(unsigned char)in[run]])
            run++;
        memcpy(out + j, in + i, run - i);
        j += run - i;
        if (run == len)
            break;
        unsigned char c = (unsigned char)in[run];
        out[j++] = '%';
        out[j++] = hexdig[c >> 4];
        out[j++] = hexdig[c & 15];
        i = run + 1;
    }
    out[j] = '\0';
    return j;
}

jb_status jb_ce_pct_encode(const char *in, size_t len, char **out, size_t *out_len)
{
    char *o = malloc(3 * len + 1);
    if (o == NULL)
        return JB_ERR_NOMEM;
    size_t n = jb_ce_pct_encode_into(in, len, o);
    *out = o;
    if (out_len != NULL)
        *out_len = n;
    return JB_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 7230 quoted-string: strips the quotes and the backslash of each
 * quoted-pair, in place into out (never longer than the input). */
static jb_status unquote(const char *in, size_t len, char *out, size_t *out_len, jb_err *err)
{
    size_t j = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        if (in[i] == '\\') {
            if (i + 2 >= len)
                return jb_err_set(err, JB_ERR_INVALID, "invalid quoted-string");
            i++;
        } else if (in[i] == '"') {
            return jb_err_set(err, JB_ERR_INVALID, "invalid quoted-string");
        }
        out[j++] = in[i];
    }
    *out_len = j;
    return JB_OK;
}

jb_status jb_ce_header_decode_into(const char *in, size_t len, char *out, size_t cap,
                                   size_t *out_len, jb_err *err)
{
    char qbuf[JB_CE_MAX_ENCODED_VALUE];
    while (len > 0 && (in[0] == ' ' || in[0] == '\t')) {
        in++;
        len--;
    }
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    if (len > JB_CE_MAX_ENCODED_VALUE)
        return jb_err_set(err, JB_ERR_INVALID, "value longer than %d bytes", JB_CE_MAX_ATTR_VALUE);
    if (len >= 2 && in[0] == '"' && in[len - 1] == '"') {
        size_t ql = 0;
        jb_status st = unquote(in, len, qbuf, &ql, err);
        if (st != JB_OK)
            return st;
        in = qbuf;
        len = ql;
    }
    size_t j = 0;
    if (memchr(in, '%', len) == NULL) {
        /* Nothing to decode (the common case): one copy. */
        if (len >= cap)
            return jb_err_set(err, JB_ERR_INVALID, "value longer than %zu bytes", cap - 1);
        memcpy(out, in, len);
        j = len;
    }
    for (size_t i = j; i < len; i++) {
        if (j + 1 >= cap)
            return jb_err_set(err, JB_ERR_INVALID, "value longer than %zu bytes", cap - 1);
        char c = in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(in[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return jb_err_set(err, JB_ERR_INVALID, "invalid percent-encoding");
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        out[j++] = c;
    }
    if (!jb_ce_utf8_valid((const uint8_t *)out, j))
        return jb_err_set(err, JB_ERR_INVALID, "not valid UTF-8 after percent-decoding");
    out[j] = '\0';
    *out_len = j;
    return JB_OK;
}

jb_status jb_ce_header_decode(const char *in, size_t len, char **out, size_t *out_len, jb_err *err)
{
    /* The decoded value is never longer than the input. */
    size_t cap = len + 1;
    char *o = malloc(cap);
    if (o == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    size_t n;
    jb_status st = jb_ce_header_decode_into(in, len, o, cap, &n, err);
    if (st != JB_OK) {
        free(o);
        return st;
    }
    *out = o;
    if (out_len != NULL)
        *out_len = n;
    return JB_OK;
}

/* ------------------------------------------------------------ binary mode */

static jb_status limit_err(jb_err *err)
{
    return jb_err_set(err, JB_ERR_INVALID, "too many attributes (at most %d)", JB_CE_MAX_ATTRS);
}

jb_status jb_ce_add_header_attr(jb_ce *ce, const char *name, size_t nlen, const char *value,
                                size_t vlen, jb_err *err)
{
    char lname[JB_CE_MAX_NAME];
    char buf[JB_CE_MAX_ATTR_VALUE + 1];
    if (nlen == 0 || nlen > JB_CE_MAX_NAME)
        return jb_err_set(err, JB_ERR_INVALID,
                          "attribute names MUST be 1 to 20 lower-case letters or digits");
    for (size_t i = 0; i < nlen; i++) {
        char c = name[i];
        lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    if (jb_ce_get_n(ce, lname, nlen, NULL) != NULL)
        return jb_err_set(err, JB_ERR_INVALID, "%.*s: duplicate attribute", (int)nlen, lname);
    size_t len = 0;
    jb_err sub;
    if (jb_ce_header_decode_into(value, vlen, buf, sizeof(buf), &len, &sub) != JB_OK)
        return jb_err_set(err, JB_ERR_INVALID, "%.*s: %s", (int)nlen, lname, sub.msg);
    jb_status st = jb_ce_add_n(ce, lname, nlen, buf, len);
    if (st == JB_ERR_INVALID)
        return limit_err(err);
    if (st != JB_OK)
        return jb_err_set(err, st, "out of memory");
    return JB_OK;
}

jb_status jb_ce_set_content_type(jb_ce *ce, const char *v, size_t len, jb_err *err)
{
    while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len > JB_CE_MAX_ATTR_VALUE)
        return jb_err_set(err, JB_ERR_INVALID, "datacontenttype: value longer than %d bytes",
                          JB_CE_MAX_ATTR_VALUE);
    /* The same rule as for ce- values, so that the value can travel as one. */
    if (!jb_ce_utf8_valid((const uint8_t *)v, len))
        return jb_err_set(err, JB_ERR_INVALID, "datacontenttype: not valid UTF-8");
    jb_status st = jb_ce_set(ce, "datacontenttype", v, len);
    if (st == JB_ERR_INVALID)
        return limit_err(err);
    if (st != JB_OK)
        return jb_err_set(err, st, "out of memory");
    return JB_OK;
}

static jb_status from_binary(const jb_ce_header *hdrs, size_t n, const uint8_t *body, size_t len,
                             bool borrow, jb_ce **out, jb_err *err)
{
    jb_status st = JB_OK;
    jb_ce *ce = jb_ce_create();
    if (ce == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    const jb_ce_header *ct = NULL;
    for (size_t i = 0; i < n; i++) {
        const jb_ce_header *h = &hdrs[i];
        if (h->name_len > 3 && (h->name[0] | 0x20) == 'c' && (h->name[1] | 0x20) == 'e' &&
            h->name[2] == '-') {
            st = jb_ce_add_header_attr(ce, h->name + 3, h->name_len - 3, h->value, h->value_len,
                                       err);
            if (st != JB_OK)
                goto done;
        } else if (h->name_len == 12 && jb_ce_ieq(h->name, h->name_len, "content-type")) {
            if (ct != NULL) {
                st = jb_err_set(err, JB_ERR_INVALID, "datacontenttype: duplicate attribute");
                goto done;
            }
            ct = h;
        }
    }
    /* Content-Type is where the binding carries datacontenttype; it wins over a
     * stray ce-datacontenttype header. */
    if (ct != NULL) {
        st = jb_ce_set_content_type(ce, ct->value, ct->value_len, err);
        if (st != JB_OK)
            goto done;
    }
    if (len > 0) {
        size_t ctl;
        const char *ctv = jb_ce_get(ce, "datacontenttype", &ctl);
        jb_ce_data_kind kind =
            ctv != NULL && jb_ce_is_json_media(ctv, ctl) ? JB_CE_DATA_JSON : JB_CE_DATA_BINARY;
        if (borrow)
            jb_ce_borrow_data(ce, kind, body, len);
        else
            st = jb_ce_set_data(ce, kind, body, len);
        if (st != JB_OK) {
            jb_err_set(err, st, "out of memory");
            goto done;
        }
    }
done:
    if (st != JB_OK) {
        jb_ce_destroy(ce);
        return st;
    }
    *out = ce;
    return JB_OK;
}

jb_status jb_ce_from_http_binary(const jb_ce_header *hdrs, size_t n, const uint8_t *body,
                                 size_t len, jb_ce **out, jb_err *err)
{
    return from_binary(hdrs, n, body, len, false, out, err);
}

jb_status jb_ce_from_http_binary_borrow(const jb_ce_header *hdrs, size_t n, const uint8_t *body,
                                        size_t len, jb_ce **out, jb_err *err)
{
    return from_binary(hdrs, n, body, len, true, out, err);
}

bool jb_ce_http_value_ok(const char *value, size_t len)
{
    if (len == 0 || value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' ||
        value[len - 1] == '\t')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* True when v has a byte that must not appear raw in a header value. */
static bool unsafe_header_value(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return true;
    }
    return false;
}

jb_status jb_ce_to_http_binary(const jb_ce *ce, jb_ce_emit_fn emit, void *ud)
{
    char name[3 + JB_CE_MAX_NAME + 1];
    char value[3 * JB_CE_MAX_ATTR_VALUE + 1];
    size_t n = jb_ce_attr_count(ce);
    /* Check everything before emitting anything, so a failure emits nothing. */
    for (size_t i = 0; i < n; i++) {
        const char *an, *av;
        size_t al;
        jb_ce_attr_at(ce, i, &an, &av, &al);
        if (!jb_ce_name_valid(an, strlen(an)))
            return JB_ERR_INVALID;
        if (strcmp(an, "datacontenttype") == 0 && unsafe_header_value(av, al))
            return JB_ERR_INVALID;
    }
    size_t ctl;
    const char *ct = jb_ce_get(ce, "datacontenttype", &ctl);
    if (ct != NULL)
        emit(ud, "Content-Type", ct, ctl);
    for (size_t i = 0; i < n; i++) {
        const char *an, *av;
        size_t al;
        jb_ce_attr_at(ce, i, &an, &av, &al);
        if (strcmp(an, "datacontenttype") == 0)
            continue;
        size_t nl = strlen(an);
        memcpy(name, "ce-", 3);
        memcpy(name + 3, an, nl + 1);
        size_t vl = jb_ce_pct_encode_into(av, al, value);
        emit(ud, name, value, vl);
    }
    return JB_OK;
}

/* ------------------------------------------------------------- any mode */

/* Wraps one decoded event as a one-element batch. */
static jb_status as_array(jb_status st, jb_ce *ce, jb_ce ***out, size_t *nout, jb_err *err)
{
    if (st != JB_OK)
        return st;
    jb_ce **arr = malloc(sizeof(*arr));
    if (arr == NULL) {
        jb_ce_destroy(ce);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    arr[0] = ce;
    *out = arr;
    *nout = 1;
    return JB_OK;
}

jb_status jb_ce_from_http(const jb_ce_header *hdrs, size_t n, const uint8_t *body, size_t len,
                          jb_ce ***out, size_t *nout, jb_ce_http_mode *mode, jb_err *err)
{
    const jb_ce_header *ct = NULL;
    for (size_t i = 0; i < n && ct == NULL; i++) {
        if (jb_ce_ieq(hdrs[i].name, hdrs[i].name_len, "content-type"))
            ct = &hdrs[i];
    }
    jb_ce_http_mode m =
        jb_ce_http_detect(ct != NULL ? ct->value : NULL, ct != NULL ? ct->value_len : 0);
    jb_ce *ce = NULL;
    jb_status st = JB_OK;
    switch (m) {
    case JB_CE_HTTP_BINARY:
        st = jb_ce_from_http_binary(hdrs, n, body, len, &ce, err);
        st = as_array(st, ce, out, nout, err);
        break;
    case JB_CE_HTTP_STRUCTURED_JSON:
        st = jb_ce_from_json((const char *)body, len, &ce, err);
        st = as_array(st, ce, out, nout, err);
        break;
    case JB_CE_HTTP_STRUCTURED_PROTOBUF:
        st = jb_ce_from_protobuf(body, len, &ce, err);
        st = as_array(st, ce, out, nout, err);
        break;
    case JB_CE_HTTP_BATCH_JSON:
        st = jb_ce_batch_from_json((const char *)body, len, out, nout, err);
        break;
    case JB_CE_HTTP_BATCH_PROTOBUF:
        st = jb_ce_batch_from_protobuf(body, len, out, nout, err);
        break;
    case JB_CE_HTTP_UNSUPPORTED:
        st = jb_err_set(err, JB_ERR_UNSUPPORTED, "content type %.*s: not supported",
                        (int)(ct->value_len > 100 ? 100 : ct->value_len), ct->value);
        break;
    }
    if (st == JB_OK && mode != NULL)
        *mode = m;
    return st;
}
