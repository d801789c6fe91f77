/*
 * The CloudEvent model: attributes (name, canonical string value) in insertion
 * order plus data bytes and their kind. Each attribute is stored as
 * "name\0value\0"; the first JB_CE_INLINE_ATTRS attribute slots and the first
 * JB_CE_ARENA bytes of attribute text live inside the event, so a typical event
 * (a dozen short attributes) costs one allocation for itself and one for the
 * data: the publisher creates and destroys one per request, and malloc/free were
 * a quarter of its instructions. Text that does not fit in the arena (long
 * values, many attributes) gets an allocation of its own, as before.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/ce_internal.h"
#include "proto/jb_ce.h"

#define JB_CE_INLINE_ATTRS 12
/* Attribute text kept inside the event. The event stays below glibc's 1 KiB
 * "large request" size, whose allocation consolidates the fast bins. */
#define JB_CE_ARENA 400

typedef struct ce_attr {
    char *name;  /* name NUL value NUL: in the event's arena or its own allocation */
    char *value; /* points into name's storage */
    size_t name_len;
    size_t len;
} ce_attr;

struct jb_ce {
    ce_attr *attrs; /* inline_attrs until more are needed */
    size_t n;
    size_t cap;
    uint8_t *data;
    size_t data_len;
    jb_ce_data_kind kind;
    bool data_borrowed; /* data belongs to the caller (jb_ce_borrow_data) */
    size_t arena_used;  /* bump allocation; a replaced value's bytes are not reused */
    ce_attr inline_attrs[JB_CE_INLINE_ATTRS];
    char arena[JB_CE_ARENA];
};

jb_ce *jb_ce_create(void)
{
    /* Not calloc: the slots and the arena are written before they are read. */
    jb_ce *ce = malloc(sizeof(*ce));
    if (ce == NULL)
        return NULL;
    ce->attrs = ce->inline_attrs;
    ce->n = 0;
    ce->cap = JB_CE_INLINE_ATTRS;
    ce->data = NULL;
    ce->data_len = 0;
    ce->kind = JB_CE_DATA_NONE;
    ce->data_borrowed = false;
    ce->arena_used = 0;
    return ce;
}

static bool in_arena(const jb_ce *ce, const char *p)
{
    return p >= ce->arena && p < ce->arena + JB_CE_ARENA;
}

/* Storage for "name\0value\0" of size bytes: the arena while it has room. */
static char *attr_storage(jb_ce *ce, size_t size)
{
    if (size <= JB_CE_ARENA - ce->arena_used) {
        char *p = ce->arena + ce->arena_used;
        ce->arena_used += size;
        return p;
    }
    return malloc(size);
}

static void attr_release(const jb_ce *ce, char *p)
{
    if (!in_arena(ce, p))
        free(p);
}

static void data_release(jb_ce *ce)
{
    if (!ce->data_borrowed)
        free(ce->data);
    ce->data = NULL;
    ce->data_borrowed = false;
}

void jb_ce_destroy(jb_ce *ce)
{
    if (ce == NULL)
        return;
    for (size_t i = 0; i < ce->n; i++)
        attr_release(ce, ce->attrs[i].name);
    if (ce->attrs != ce->inline_attrs)
        free(ce->attrs);
    data_release(ce);
    free(ce);
}

static ce_attr *find(const jb_ce *ce, const char *name, size_t name_len)
{
    for (size_t i = 0; i < ce->n; i++) {
        ce_attr *a = &ce->attrs[i];
        if (a->name_len == name_len && memcmp(a->name, name, name_len) == 0)
            return a;
    }
    return NULL;
}

/* Makes room for one more attribute; never past JB_CE_MAX_ATTRS. */
static jb_status grow(jb_ce *ce)
{
    if (ce->n < ce->cap)
        return JB_OK;
    if (ce->n >= JB_CE_MAX_ATTRS)
        return JB_ERR_INVALID;
    size_t ncap = ce->cap * 2 > JB_CE_MAX_ATTRS ? JB_CE_MAX_ATTRS : ce->cap * 2;
    ce_attr *na = malloc(ncap * sizeof(*na));
    if (na == NULL)
        return JB_ERR_NOMEM;
    memcpy(na, ce->attrs, ce->n * sizeof(*na));
    if (ce->attrs != ce->inline_attrs)
        free(ce->attrs);
    ce->attrs = na;
    ce->cap = ncap;
    return JB_OK;
}

/* a: the attribute to replace, or NULL to add one. */
static jb_status set_attr(jb_ce *ce, ce_attr *a, const char *name, size_t name_len,
                          const char *value, size_t len)
{
    /* A NUL inside a name would make it read differently as a C string. */
    if (name_len == 0 || name_len > JB_CE_MAX_NAME || len > JB_CE_MAX_ATTR_VALUE ||
        memchr(name, '\0', name_len) != NULL)
        return JB_ERR_INVALID;
    if (a == NULL) {
        jb_status st = grow(ce);
        if (st != JB_OK)
            return st;
    }
    char *buf = attr_storage(ce, name_len + len + 2);
    if (buf == NULL)
        return JB_ERR_NOMEM;
    memcpy(buf, name, name_len);
    buf[name_len] = '\0';
    if (len > 0)
        memcpy(buf + name_len + 1, value, len);
    buf[name_len + 1 + len] = '\0';
    if (a == NULL) {
        a = &ce->attrs[ce->n++];
    } else {
        attr_release(ce, a->name);
    }
    a->name = buf;
    a->value = buf + name_len + 1;
    a->name_len = name_len;
    a->len = len;
    return JB_OK;
}

jb_status jb_ce_set_n(jb_ce *ce, const char *name, size_t name_len, const char *value, size_t len)
{
    return set_attr(ce, find(ce, name, name_len), name, name_len, value, len);
}

jb_status jb_ce_add_n(jb_ce *ce, const char *name, size_t name_len, const char *value, size_t len)
{
    return set_attr(ce, NULL, name, name_len, value, len);
}

jb_status jb_ce_set(jb_ce *ce, const char *name, const char *value, size_t len)
{
    return jb_ce_set_n(ce, name, strlen(name), value, len);
}

jb_status jb_ce_set_str(jb_ce *ce, const char *name, const char *value)
{
    return jb_ce_set_n(ce, name, strlen(name), value, strlen(value));
}

const char *jb_ce_get_n(const jb_ce *ce, const char *name, size_t name_len, size_t *len)
{
    const ce_attr *a = find(ce, name, name_len);
    if (a == NULL)
        return NULL;
    if (len != NULL)
        *len = a->len;
    return a->value;
}

const char *jb_ce_get(const jb_ce *ce, const char *name, size_t *len)
{
    return jb_ce_get_n(ce, name, strlen(name), len);
}

void jb_ce_unset(jb_ce *ce, const char *name)
{
    ce_attr *a = find(ce, name, strlen(name));
    if (a == NULL)
        return;
    attr_release(ce, a->name);
    size_t i = (size_t)(a - ce->attrs);
    /* Shift rather than swap: insertion order is part of the model. */
    memmove(&ce->attrs[i], &ce->attrs[i + 1], (ce->n - i - 1) * sizeof(*a));
    ce->n--;
}

size_t jb_ce_attr_count(const jb_ce *ce)
{
    return ce->n;
}

void jb_ce_attr_at(const jb_ce *ce, size_t i, const char **name, const char **value, size_t *len)
{
    const ce_attr *a = &ce->attrs[i];
    if (name != NULL)
        *name = a->name;
    if (value != NULL)
        *value = a->value;
    if (len != NULL)
        *len = a->len;
}

jb_status jb_ce_set_data(jb_ce *ce, jb_ce_data_kind kind, const void *data, size_t len)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return JB_ERR_NOMEM;
        memcpy(copy, data, len);
    }
    data_release(ce);
    ce->data = copy;
    ce->data_len = len;
    ce->kind = kind;
    return JB_OK;
}

void jb_ce_take_data(jb_ce *ce, jb_ce_data_kind kind, void **data, size_t len)
{
    data_release(ce);
    ce->data = *data;
    ce->data_len = ce->data == NULL ? 0 : len;
    ce->kind = kind;
    *data = NULL;
}

void jb_ce_borrow_data(jb_ce *ce, jb_ce_data_kind kind, const void *data, size_t len)
{
    data_release(ce);
    ce->data = len > 0 ? (uint8_t *)(uintptr_t)data : NULL;
    ce->data_len = len > 0 ? len : 0;
    ce->data_borrowed = len > 0;
    ce->kind = kind;
}

const uint8_t *jb_ce_data(const jb_ce *ce, size_t *len)
{
    if (len != NULL)
        *len = ce->data_len;
    return ce->data;
}

jb_ce_data_kind jb_ce_data_kind_of(const jb_ce *ce)
{
    return ce->kind;
}

jb_ce *jb_ce_clone(const jb_ce *ce)
{
    jb_ce *c = jb_ce_create();
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < ce->n; i++) {
        const ce_attr *a = &ce->attrs[i];
        if (jb_ce_set_n(c, a->name, a->name_len, a->value, a->len) != JB_OK)
            goto fail;
    }
    if (jb_ce_set_data(c, ce->kind, ce->data, ce->data_len) != JB_OK)
        goto fail;
    return c;
fail:
    jb_ce_destroy(c);
    return NULL;
}

bool jb_ce_equal(const jb_ce *a, const jb_ce *b)
{
    if (a->n != b->n || a->data_len != b->data_len)
        return false;
    if (a->data_len > 0 && memcmp(a->data, b->data, a->data_len) != 0)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const ce_attr *x = &a->attrs[i];
        const ce_attr *y = find(b, x->name, x->name_len);
        if (y == NULL || y->len != x->len || memcmp(x->value, y->value, x->len) != 0)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ small helpers */

bool jb_ce_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* Attribute values are mostly ASCII: eight bytes without a high bit at once. */
        uint64_t w;
        if (len - i >= 8 && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ULL) == 0)) {
            i += 8;
            continue;
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, overlong lead (C0/C1) or > F4 */
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool jb_ce_ieq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (n != len)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower(s[i]) != lower(lit[i]))
            return false;
    }
    return true;
}

bool jb_ce_is_json_media(const char *ct, size_t len)
{
    size_t b = 0, e = 0;
    while (b < len && (ct[b] == ' ' || ct[b] == '\t'))
        b++;
    e = b;
    while (e < len && ct[e] != ';')
        e++;
    while (e > b && (ct[e - 1] == ' ' || ct[e - 1] == '\t'))
        e--;
    const char *m = ct + b;
    size_t n = e - b;
    if (jb_ce_ieq(m, n, "application/json") || jb_ce_ieq(m, n, "text/json"))
        return true;
    return n > 5 && memchr(m, '/', n - 5) != NULL && jb_ce_ieq(m + n - 5, 5, "+json");
}

/* [a-z0-9] as a table: every attribute name is checked twice per event. */
static const bool name_char[256] = {['a' ... 'z'] = 1, ['0' ... '9'] = 1};

bool jb_ce_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char[(unsigned char)name[i]])
            return false;
    return true;
}

/* ------------------------------------------------------------------ base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

jb_status jb_base64_encode(const uint8_t *in, size_t len, char **out, size_t *out_len)
{
    size_t n = 4 * ((len + 2) / 3);
    char *o = malloc(n + 1);
    if (o == NULL)
        return JB_ERR_NOMEM;
    size_t j = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        o[j++] = b64_alphabet[(v >> 18) & 63];
        o[j++] = b64_alphabet[(v >> 12) & 63];
        o[j++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        o[j++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    o[j] = '\0';
    *out = o;
    if (out_len != NULL)
        *out_len = j;
    return JB_OK;
}

static int b64_val(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* The one base64 decoder; the flags say which of the forms in use it accepts. */
jb_status jb_base64_decode_ex(const char *in, size_t len, unsigned flags, uint8_t **out,
                              size_t *out_len)
{
    bool url = (flags & JB_B64_URL) != 0, nopad = (flags & JB_B64_NOPAD) != 0,
         lenient = (flags & JB_B64_LENIENT) != 0;
    uint8_t *o = malloc(len / 4 * 3 + 4);
    if (o == NULL)
        return JB_ERR_NOMEM;
    size_t j = 0, symbols = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (lenient && (c == ' ' || c == '\n' || c == '\r' || c == '\t'))
            continue;
        if (c == '=' && !nopad) {
            pad++;
            continue;
        }
        int v = b64_val(c, url);
        if (v < 0 || pad > 0) /* a foreign byte, or data after padding */
            goto fail;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        symbols++;
        if (bits >= 8) {
            bits -= 8;
            o[j++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (!lenient) {
        /* One encoding per byte string: a possible length, zero bits after the last
         * symbol, and (when padded) exactly the padding that length needs. */
        if (symbols % 4 == 1 || acc != 0)
            goto fail;
        if (!nopad && pad != (4 - symbols % 4) % 4)
            goto fail;
    }
    o[j] = '\0';
    *out = o;
    *out_len = j;
    return JB_OK;
fail:
    free(o);
    return JB_ERR_INVALID;
}

/* Strict: padded, standard alphabet, no whitespace, zero bits after the last
 * symbol (so that each byte string has exactly one encoding). */
jb_status jb_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    return jb_base64_decode_ex(in, len, 0, out, out_len);
}

/* The checks every structured decoder (JSON, protobuf) applies to an attribute it
 * read, with the messages the publisher returns in its 400 body. */
jb_status jb_ce_set_decoded(jb_ce *ce, const char *name, const char *v, size_t len, jb_err *err)
{
    size_t nlen = strlen(name);
    if (nlen == 0)
        return jb_err_set(err, JB_ERR_INVALID,
                          ": attribute names MUST be 1 to 20 lower-case letters or digits");
    if (nlen > JB_CE_MAX_NAME)
        return jb_err_set(err, JB_ERR_INVALID, "attribute name longer than %d bytes",
                          JB_CE_MAX_NAME);
    if (jb_ce_get_n(ce, name, nlen, NULL) != NULL)
        return jb_err_set(err, JB_ERR_INVALID, "%s: duplicate attribute", name);
    if (len > JB_CE_MAX_ATTR_VALUE)
        return jb_err_set(err, JB_ERR_INVALID, "%s: value longer than %d bytes", name,
                          JB_CE_MAX_ATTR_VALUE);
    /* Every decoder yields UTF-8 values (JSON and proto3 strings must be), so an
     * event can move to the header bindings, which require it. */
    if (!jb_ce_utf8_valid((const uint8_t *)v, len))
        return jb_err_set(err, JB_ERR_INVALID, "%s: MUST be valid UTF-8", name);
    jb_status st = jb_ce_set_n(ce, name, nlen, v, len);
    if (st == JB_ERR_INVALID)
        return jb_err_set(err, st, "too many attributes (at most %d)", JB_CE_MAX_ATTRS);
    if (st != JB_OK)
        return jb_err_set(err, st, "out of memory");
    return JB_OK;
}
