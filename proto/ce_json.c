/*
 * JSON event format (structured and batch). Decoding uses cJSON for the
 * structure and a small scanner over the same bytes to find the raw span of each
 * member: JSON data is kept as the exact bytes the producer sent (no re-printing,
 * so numbers keep their precision and the body reaches a sink byte for byte).
 * Encoding writes JSON directly (attribute values may hold any bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/jb_common.h"
#include "proto/ce_internal.h"
#include "proto/jb_ce.h"

/* ---------------------------------------------------------- raw scanning */

static size_t js_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is '"'. Returns the index after the closing quote; *nul is set when the
 * string contains the escape \u0000 (cJSON would silently cut the string there).
 * memchr finds the closing quote and the backslashes before it: a 16 KiB event's
 * data is one long string, and a loop over its bytes cost ~10 instructions per
 * byte. Only an escaped quote moves the closing quote further, so every byte is
 * searched at most twice. */
static size_t find_quote(const char *s, size_t n, size_t i)
{
    const char *q = i < n ? memchr(s + i, '"', n - i) : NULL;
    return q != NULL ? (size_t)(q - s) : n;
}

static size_t js_string(const char *s, size_t n, size_t i, bool *nul)
{
    i++;
    size_t qi = find_quote(s, n, i);
    while (i < qi) {
        const char *b = memchr(s + i, '\\', qi - i);
        if (b == NULL)
            break;
        size_t bi = (size_t)(b - s);
        if (bi + 5 < n && s[bi + 1] == 'u' && memcmp(s + bi + 2, "0000", 4) == 0)
            *nul = true;
        i = bi + 2; /* the escaped character, a backslash or a quote included */
        if (i > qi)
            qi = find_quote(s, n, i);
    }
    return qi < n ? qi + 1 : n;
}

/* Returns the index after the value starting at s[i] (cJSON has already checked
 * that the document is well-formed). */
static size_t js_value(const char *s, size_t n, size_t i, bool *nul)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return js_string(s, n, i, nul);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        bool ignored = false;
        for (; i < n; i++) {
            if (s[i] == '"') {
                i = js_string(s, n, i, &ignored) - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return n;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

/* A member or element span: [vb, ve) is the value; nul as for js_string. */
typedef struct js_span {
    size_t vb, ve;
    bool nul;     /* the value has \u0000 */
    bool key_nul; /* the member name has \u0000 */
} js_span;

/* Moves *pos (after '{', '[' or a previous ',') over one member (obj) or element
 * and fills sp. */
static bool js_next(const char *s, size_t n, size_t *pos, bool obj, js_span *sp)
{
    size_t i = js_ws(s, n, *pos);
    if (i < n && s[i] == ',')
        i = js_ws(s, n, i + 1);
    sp->nul = false;
    sp->key_nul = false;
    if (obj) {
        if (i >= n || s[i] != '"')
            return false;
        i = js_ws(s, n, js_string(s, n, i, &sp->key_nul));
        if (i >= n || s[i] != ':')
            return false;
        i = js_ws(s, n, i + 1);
    }
    sp->vb = i;
    sp->ve = js_value(s, n, i, &sp->nul);
    *pos = sp->ve;
    return sp->ve > sp->vb;
}

/* ---------------------------------------------------------------- decoding */

/* One member that is an attribute or extension: strings as they are; integers
 * and booleans in their canonical string form; null means unset. */
static jb_status decode_attr(jb_ce *ce, const cJSON *m, const js_span *sp, jb_err *err)
{
    const char *name = m->string;
    if (cJSON_IsNull(m))
        return JB_OK;
    if (cJSON_IsString(m)) {
        if (sp->nul)
            return jb_err_set(err, JB_ERR_INVALID, "%.64s: MUST NOT contain U+0000", name);
        return jb_ce_set_decoded(ce, name, m->valuestring, strlen(m->valuestring), err);
    }
    if (cJSON_IsBool(m))
        return jb_ce_set_decoded(ce, name, cJSON_IsTrue(m) ? "true" : "false",
                                 cJSON_IsTrue(m) ? 4 : 5, err);
    if (cJSON_IsNumber(m)) {
        double d = m->valuedouble;
        if (d >= -2147483648.0 && d <= 2147483647.0 && (double)(int32_t)d == d) {
            /* No printf family on the decoding path. */
            char buf[JB_DEC_MAX];
            size_t j = jb_dec_i64(buf, (int32_t)d);
            return jb_ce_set_decoded(ce, name, buf, j, err);
        }
    }
    return jb_err_set(err, JB_ERR_INVALID, "%.64s: MUST be a string, a boolean or an integer",
                      name);
}

static jb_status decode_data(jb_ce *ce, const cJSON *data, const js_span *dsp, const cJSON *b64,
                             const char *raw, jb_err *err)
{
    jb_status st = JB_OK;
    if (data != NULL && cJSON_IsNull(data))
        data = NULL;
    if (b64 != NULL && cJSON_IsNull(b64))
        b64 = NULL;
    if (data != NULL && b64 != NULL)
        return jb_err_set(err, JB_ERR_INVALID, "data: MUST NOT be present with data_base64");
    if (b64 != NULL) {
        if (!cJSON_IsString(b64))
            return jb_err_set(err, JB_ERR_INVALID, "data_base64: MUST be a base64 string");
        uint8_t *bytes;
        size_t blen;
        st = jb_base64_decode(b64->valuestring, strlen(b64->valuestring), &bytes, &blen);
        if (st != JB_OK)
            return jb_err_set(err, st, "data_base64: MUST be a base64 string");
        void *p = bytes;
        jb_ce_take_data(ce, JB_CE_DATA_BINARY, &p, blen);
        free(p);
        return JB_OK;
    }
    if (data == NULL)
        return JB_OK;
    size_t ctl;
    const char *ct = jb_ce_get(ce, "datacontenttype", &ctl);
    /* Structured mode: an absent datacontenttype means application/json. */
    bool json = ct == NULL || jb_ce_is_json_media(ct, ctl);
    if (cJSON_IsString(data) && !json) {
        if (dsp->nul)
            return jb_err_set(err, JB_ERR_INVALID, "data: MUST NOT contain U+0000");
        st = jb_ce_set_data(ce, JB_CE_DATA_TEXT, data->valuestring, strlen(data->valuestring));
    } else {
        st = jb_ce_set_data(ce, JB_CE_DATA_JSON, raw + dsp->vb, dsp->ve - dsp->vb);
    }
    if (st != JB_OK)
        return jb_err_set(err, st, "out of memory");
    return JB_OK;
}

/* Decodes the object obj whose text is raw[0..n) (starting with '{'). */
static jb_status decode_obj(const cJSON *obj, const char *raw, size_t n, jb_ce **out, jb_err *err)
{
    jb_status st = JB_OK;
    const cJSON *data = NULL, *b64 = NULL;
    js_span dsp = {0, 0, false, false}, sp;
    size_t pos = js_ws(raw, n, 0) + 1;
    if (!cJSON_IsObject(obj))
        return jb_err_set(err, JB_ERR_INVALID, "event: MUST be a JSON object");
    jb_ce *ce = jb_ce_create();
    if (ce == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        if (!js_next(raw, n, &pos, true, &sp)) {
            st = jb_err_set(err, JB_ERR_INTERNAL, "JSON scanner lost its place");
            goto done;
        }
        if (sp.key_nul) {
            st = jb_err_set(err, JB_ERR_INVALID, "member names MUST NOT contain U+0000");
            goto done;
        }
        if (strcmp(m->string, "data") == 0 || strcmp(m->string, "data_base64") == 0) {
            bool is_data = m->string[4] == '\0';
            if ((is_data && data != NULL) || (!is_data && b64 != NULL)) {
                st = jb_err_set(err, JB_ERR_INVALID, "%s: duplicate member", m->string);
                goto done;
            }
            if (is_data) {
                data = m;
                dsp = sp;
            } else {
                b64 = m;
            }
            continue;
        }
        st = decode_attr(ce, m, &sp, err);
        if (st != JB_OK)
            goto done;
    }
    st = decode_data(ce, data, &dsp, b64, raw, err);
done:
    if (st != JB_OK) {
        jb_ce_destroy(ce);
        return st;
    }
    *out = ce;
    return JB_OK;
}

static bool hexdigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* cJSON turns a \u escape without four hex digits into U+0000 (cutting the
 * string short) instead of failing. In a document cJSON accepted, a backslash
 * only occurs inside strings, so one pass finds such an escape. Returns the
 * offset of the first bad escape, or len when there is none. */
static size_t bad_escape(const char *s, size_t len)
{
    size_t i = 0;
    const char *b;
    while (i < len && (b = memchr(s + i, '\\', len - i)) != NULL) { /* most bodies have none */
        i = (size_t)(b - s);
        if (i + 1 < len && s[i + 1] == 'u' &&
            (i + 5 >= len || !hexdigit(s[i + 2]) || !hexdigit(s[i + 3]) || !hexdigit(s[i + 4]) ||
             !hexdigit(s[i + 5])))
            return i;
        i += 2; /* the backslash and the escaped character, a backslash included */
    }
    return len;
}

/* cJSON also takes any byte below 0x20 as whitespace between tokens and leaves raw
 * control bytes in strings. JSON allows neither (only tab, LF, CR and space are
 * whitespace; control characters in strings must be escaped), and a document read
 * that way would not read back the same. Returns the offset of the first such byte,
 * or len. */
static size_t bad_control(const char *s, size_t len)
{
    /* Eight bytes at a time (the classic "has a byte less than n" test), byte by
     * byte only in a block that has one: a byte-wise loop cost ~4 instructions
     * per byte of a 16 KiB body. */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (((w - ones * 0x20) & ~w & highs) == 0) {
                i += 8;
                continue;
            }
        }
        size_t end = i + 8 < len ? i + 8 : len;
        for (; i < end; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return i;
        }
    }
    return len;
}

/* Parses exactly one JSON document; NULL (with err set) when it is not one. */
static cJSON *parse(const char *buf, size_t len, jb_err *err)
{
    const char *end = NULL;
    if (len == 0) {
        jb_err_set(err, JB_ERR_INVALID, "invalid JSON: empty body");
        return NULL;
    }
    cJSON *r = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (r == NULL) {
        size_t at = end != NULL && end >= buf ? (size_t)(end - buf) : 0;
        jb_err_set(err, JB_ERR_INVALID, "invalid JSON at byte %zu", at);
        return NULL;
    }
    size_t rest = end != NULL ? (size_t)(end - buf) : len;
    if (js_ws(buf, len, rest) != len) {
        cJSON_Delete(r);
        jb_err_set(err, JB_ERR_INVALID, "invalid JSON: trailing bytes at byte %zu", rest);
        return NULL;
    }
    size_t bad = bad_escape(buf, len);
    if (bad != len) {
        cJSON_Delete(r);
        jb_err_set(err, JB_ERR_INVALID, "invalid JSON: bad \\u escape at byte %zu", bad);
        return NULL;
    }
    bad = bad_control(buf, len);
    if (bad != len) {
        cJSON_Delete(r);
        jb_err_set(err, JB_ERR_INVALID, "invalid JSON: control character at byte %zu", bad);
        return NULL;
    }
    return r;
}

jb_status jb_ce_from_json(const char *buf, size_t len, jb_ce **out, jb_err *err)
{
    cJSON *root = parse(buf, len, err);
    if (root == NULL)
        return JB_ERR_INVALID;
    size_t b = js_ws(buf, len, 0);
    jb_status st = decode_obj(root, buf + b, len - b, out, err);
    cJSON_Delete(root);
    return st;
}

void jb_ce_batch_free(jb_ce **ces, size_t n)
{
    if (ces == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        jb_ce_destroy(ces[i]);
    free(ces);
}

jb_status jb_ce_batch_from_json(const char *buf, size_t len, jb_ce ***out, size_t *n, jb_err *err)
{
    jb_ce **ces = NULL;
    size_t count = 0;
    jb_status st = JB_OK;
    cJSON *root = parse(buf, len, err);
    if (root == NULL)
        return JB_ERR_INVALID;
    if (!cJSON_IsArray(root)) {
        st = jb_err_set(err, JB_ERR_INVALID, "batch: MUST be a JSON array");
        goto done;
    }
    size_t total = (size_t)cJSON_GetArraySize(root);
    if (total > JB_CE_MAX_BATCH) {
        st = jb_err_set(err, JB_ERR_INVALID, "batch: more than %d events", JB_CE_MAX_BATCH);
        goto done;
    }
    ces = calloc(total > 0 ? total : 1, sizeof(*ces));
    if (ces == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t pos = js_ws(buf, len, 0) + 1;
    for (const cJSON *e = root->child; e != NULL; e = e->next, count++) {
        js_span sp;
        jb_err sub;
        if (!js_next(buf, len, &pos, false, &sp)) {
            st = jb_err_set(err, JB_ERR_INTERNAL, "JSON scanner lost its place");
            goto done;
        }
        st = decode_obj(e, buf + sp.vb, sp.ve - sp.vb, &ces[count], &sub);
        if (st != JB_OK) {
            jb_err_set(err, st, "batch[%zu]: %s", count, sub.msg);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (st != JB_OK) {
        jb_ce_batch_free(ces, count);
        return st;
    }
    if (count == 0) {
        free(ces);
        ces = NULL;
    }
    *out = ces;
    *n = count;
    return JB_OK;
}

/* ---------------------------------------------------------------- encoding */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

static void put(jbuf *b, const void *s, size_t n)
{
    if (b->oom || n == 0) /* n == 0 may come with s == NULL (empty data) */
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap == 0 ? 256 : b->cap;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_lit(jbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_string(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F)
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c == '\n') {
            put(b, "\\n", 2);
        } else if (c == '\t') {
            put(b, "\\t", 2);
        } else if (c == '\r') {
            put(b, "\\r", 2);
        } else {
            put(b, esc, 6);
        }
    }
    if (n > run)
        put(b, s + run, n - run);
    put(b, "\"", 1);
}

/* Is d[0..n) exactly one JSON value (whitespace around allowed)? */
static bool valid_json(const uint8_t *d, size_t n, bool *is_string)
{
    const char *end = NULL;
    if (n == 0)
        return false;
    cJSON *r = cJSON_ParseWithLengthOpts((const char *)d, n, &end, false);
    if (r == NULL)
        return false;
    *is_string = cJSON_IsString(r);
    cJSON_Delete(r);
    return js_ws((const char *)d, n, (size_t)(end - (const char *)d)) == n &&
           bad_escape((const char *)d, n) == n && bad_control((const char *)d, n) == n;
}

/* Writes the data member so that decoding gives the same bytes back: verbatim
 * JSON when the content type says JSON, a string for text, else data_base64. */
static void put_data(jbuf *b, const jb_ce *ce)
{
    size_t n, ctl;
    const uint8_t *d = jb_ce_data(ce, &n);
    jb_ce_data_kind kind = jb_ce_data_kind_of(ce);
    if (kind == JB_CE_DATA_NONE && n == 0)
        return;
    const char *ct = jb_ce_get(ce, "datacontenttype", &ctl);
    bool json_ct = ct == NULL || jb_ce_is_json_media(ct, ctl);
    bool is_string = false;
    if (kind == JB_CE_DATA_JSON || kind == JB_CE_DATA_TEXT) {
        if (json_ct && valid_json(d, n, &is_string)) {
            puts_lit(b, ",\"data\":");
            put(b, d, n);
            return;
        }
        bool text_ok = !json_ct && (n == 0 || memchr(d, '\0', n) == NULL) && jb_ce_utf8_valid(d, n);
        if (text_ok && kind == JB_CE_DATA_TEXT) {
            puts_lit(b, ",\"data\":");
            put_string(b, (const char *)d, n);
            return;
        }
        /* JSON kind under a non-JSON type: a non-string value reads back raw. */
        if (!json_ct && kind == JB_CE_DATA_JSON && valid_json(d, n, &is_string) && !is_string) {
            puts_lit(b, ",\"data\":");
            put(b, d, n);
            return;
        }
    }
    char *enc;
    size_t el;
    if (jb_base64_encode(d, n, &enc, &el) != JB_OK) {
        b->oom = true;
        return;
    }
    puts_lit(b, ",\"data_base64\":");
    put_string(b, enc, el);
    free(enc);
}

static void put_event(jbuf *b, const jb_ce *ce)
{
    put(b, "{", 1);
    size_t n = jb_ce_attr_count(ce);
    for (size_t i = 0; i < n; i++) {
        const char *name, *v;
        size_t len;
        jb_ce_attr_at(ce, i, &name, &v, &len);
        if (i > 0)
            put(b, ",", 1);
        put_string(b, name, strlen(name));
        put(b, ":", 1);
        put_string(b, v, len);
    }
    size_t before = b->len;
    put_data(b, ce);
    /* put_data writes a leading comma; drop it when no attribute precedes. */
    if (n == 0 && b->len > before && !b->oom) {
        memmove(b->p + before, b->p + before + 1, b->len - before);
        b->len--;
    }
    put(b, "}", 1);
}

static jb_status finish(jbuf *b, char **out, size_t *len)
{
    if (b->oom) {
        free(b->p);
        return JB_ERR_NOMEM;
    }
    *out = b->p;
    *len = b->len;
    return JB_OK;
}

jb_status jb_ce_to_json(const jb_ce *ce, char **out, size_t *len)
{
    jbuf b = {NULL, 0, 0, false};
    put_event(&b, ce);
    return finish(&b, out, len);
}

jb_status jb_ce_batch_to_json(jb_ce *const *ces, size_t n, char **out, size_t *len)
{
    jbuf b = {NULL, 0, 0, false};
    put(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            put(&b, ",", 1);
        put_event(&b, ces[i]);
    }
    put(&b, "]", 1);
    return finish(&b, out, len);
}
