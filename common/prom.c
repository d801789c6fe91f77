/* Reading the Prometheus text exposition format (version 0.0.4) back, for
 * `jetbridge stats`: one sample line at a time, every read bounded by the text's
 * length. The writer is metrics.c; what it escapes (\\, \" and \n in label values)
 * is what jb_prom_label undoes. */
#include "common/jb_common.h"

#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

static size_t skip_blanks(const char *s, size_t i, size_t end)
{
    while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    return i;
}

/* A name at s[i..end): its end, or i when there is none. */
static size_t scan_name(const char *s, size_t i, size_t end)
{
    size_t j = i;
    while (j < end && name_char(s[j], j == i))
        j++;
    return j;
}

/* One `key="value"` at s[*i..end), blanks around allowed. On success *i is past the
 * closing quote and key/value are set (value still escaped). */
static bool scan_label(const char *s, size_t *i, size_t end, const char **key, size_t *klen,
                       const char **val, size_t *vlen)
{
    size_t k = skip_blanks(s, *i, end), ke = scan_name(s, k, end);
    size_t q = skip_blanks(s, ke, end);
    if (ke == k || q >= end || s[q] != '=')
        return false;
    q = skip_blanks(s, q + 1, end);
    if (q >= end || s[q] != '"')
        return false;
    size_t v = ++q;
    while (q < end && s[q] != '"')
        q += s[q] == '\\' ? 2 : 1;
    if (q >= end)
        return false; /* unterminated, or an escape running past the end */
    *key = s + k;
    *klen = ke - k;
    *val = s + v;
    *vlen = q - v;
    *i = q + 1;
    return true;
}

/* The label block starting after '{' at s[i..end): the index of its '}', or end when
 * it is malformed. Labels are separated by ',' (a trailing one is allowed). */
static size_t scan_labels(const char *s, size_t i, size_t end)
{
    const char *k, *v;
    size_t kl, vl;
    for (;;) {
        i = skip_blanks(s, i, end);
        if (i < end && s[i] == '}')
            return i;
        if (!scan_label(s, &i, end, &k, &kl, &v, &vl))
            return end;
        i = skip_blanks(s, i, end);
        if (i < end && s[i] == ',')
            i++;
        else if (i >= end || s[i] != '}')
            return end;
    }
}

/* The value token s[i..end) up to a blank: a number strtod takes whole. */
static bool scan_value(const char *s, size_t i, size_t end, double *out)
{
    size_t j = i;
    while (j < end && s[j] != ' ' && s[j] != '\t' && s[j] != '\r')
        j++;
    char buf[64];
    if (j == i || j - i >= sizeof(buf))
        return false;
    memcpy(buf, s + i, j - i);
    buf[j - i] = '\0';
    char *e = NULL;
    double v = strtod(buf, &e);
    if (e != buf + (j - i))
        return false;
    *out = v;
    return true;
}

/* Parses the line s[b..e); false when it is not a sample. */
static bool parse_line(const char *s, size_t b, size_t e, jb_prom_sample *out)
{
    size_t n = skip_blanks(s, b, e), ne = scan_name(s, n, e);
    if (ne == n)
        return false; /* blank, a comment, or no name */
    jb_prom_sample smp = {s + n, ne - n, NULL, 0, 0};
    size_t i = ne;
    if (i < e && s[i] == '{') {
        size_t close = scan_labels(s, i + 1, e);
        if (close >= e)
            return false;
        smp.labels = s + i + 1;
        smp.labels_len = close - i - 1;
        i = close + 1;
    }
    size_t v = skip_blanks(s, i, e);
    if (v == i || !scan_value(s, v, e, &smp.value))
        return false; /* a value must follow a blank */
    *out = smp;
    return true;
}

bool jb_prom_next(const char *text, size_t len, size_t *pos, jb_prom_sample *out)
{
    while (*pos < len) {
        size_t b = *pos;
        const char *nl = memchr(text + b, '\n', len - b);
        size_t e = nl != NULL ? (size_t)(nl - text) : len;
        *pos = nl != NULL ? e + 1 : len;
        if (parse_line(text, b, e, out))
            return true;
    }
    return false;
}

bool jb_prom_label(const jb_prom_sample *s, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key), i = 0, end = s->labels_len;
    const char *k, *v;
    size_t kl, vl;
    while (scan_label(s->labels, &i, end, &k, &kl, &v, &vl)) {
        if (kl == klen && memcmp(k, key, klen) == 0) {
            size_t o = 0;
            for (size_t j = 0; j < vl && o + 1 < cap; j++) {
                char c = v[j];
                if (c == '\\' && j + 1 < vl) {
                    c = v[++j];
                    c = c == 'n' ? '\n' : c;
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return true;
        }
        i = skip_blanks(s->labels, i, end);
        if (i < end && s->labels[i] == ',')
            i++;
    }
    return false;
}
