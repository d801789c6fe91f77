/* Cleaning, subjects and the publisher's list of subscribed event types (the
 * consumers a subscription needs are consumers.c's). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

static size_t clean(const char *in, size_t len, char *out, size_t cap, const char *drop)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (isspace(ch) || (ch != 0 && strchr(drop, ch) != NULL))
            continue;
        if (n + 1 < cap)
            out[n] = (char)ch;
        n++;
    }
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

size_t jb_sub_clean_source(const char *src, size_t len, char *out, size_t cap)
{
    return clean(src, len, out, cap, ".>*/\\");
}

size_t jb_sub_clean_type(const char *type, size_t len, char *out, size_t cap)
{
    return clean(type, len, out, cap, ">*/\\");
}

/* Go's url.Parse scheme rule: a letter, then letters, digits, '+', '-', '.'. */
static bool scheme_char(unsigned char c, bool first)
{
    return isalpha(c) || (!first && (isdigit(c) || c == '+' || c == '-' || c == '.'));
}

bool jb_sub_source_valid(const char *src, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == '%' && (i + 2 >= len || !isxdigit((unsigned char)src[i + 1]) ||
                         !isxdigit((unsigned char)src[i + 2])))
            return false;
    }
    /* The first segment ends at '/', '?' or '#'. A ':' in it must end a scheme;
     * Go refuses "missing protocol scheme" (":x") and "first path segment in URL
     * cannot contain colon" ("1a:b", "my app:x"). */
    size_t first = 0;
    while (first < len && src[first] != ':' && src[first] != '/' && src[first] != '?' &&
           src[first] != '#')
        first++;
    if (first == len || src[first] != ':')
        return true;
    if (first == 0)
        return false;
    for (size_t i = 0; i < first; i++)
        if (!scheme_char((unsigned char)src[i], i == 0))
            return false;
    return true;
}

/* True when s[0..len) split at dots has an empty part (leading, trailing or "..").
 * An empty string counts as one empty part. */
static bool has_empty_segment(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return true;
    for (size_t i = 1; i < len; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return true;
    return false;
}

static int clip(size_t len, size_t max)
{
    return (int)(len > max ? max : len);
}

jb_status jb_sub_standard_subject(const char *subject_prefix, const char *source, size_t slen,
                                  const char *type, size_t tlen, char **out, jb_err *err)
{
    jb_status rc = JB_ERR_NOMEM;
    size_t plen = strlen(subject_prefix);
    char *buf = malloc(plen + slen + tlen + 3);
    if (buf == NULL) {
        jb_err_set(err, rc, "out of memory");
        goto done;
    }
    memcpy(buf, subject_prefix, plen);
    size_t o = plen;
    buf[o++] = '.';
    /* Cleaning only removes characters, so len + 1 is always room enough. */
    size_t cs = jb_sub_clean_source(source, slen, buf + o, slen + 1);
    if (cs == 0) {
        rc = jb_err_set(err, JB_ERR_INVALID, "source: \"%.*s\" is empty after cleaning",
                        clip(slen, 200), source);
        goto done;
    }
    o += cs;
    buf[o++] = '.';
    size_t ct = jb_sub_clean_type(type, tlen, buf + o, tlen + 1);
    o += ct;
    buf[o] = '\0';
    /* NATS subjects cannot carry control bytes; cleaning keeps them, so refuse. */
    for (size_t i = 0; i < o; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            rc = jb_err_set(err, JB_ERR_INVALID, "type: control character in the subject");
            goto done;
        }
    }
    if (ct == 0 || has_empty_segment(buf, o)) {
        rc = jb_err_set(err, JB_ERR_INVALID,
                        "type: \"%.*s\" gives the subject \"%.*s\" with an empty segment",
                        clip(tlen, 200), type, clip(o, 300), buf);
        goto done;
    }
    *out = buf;
    buf = NULL;
    rc = JB_OK;
done:
    free(buf);
    return rc;
}

const char *jb_sub_exact_subject_problem(const char *subject)
{
    size_t seg = 0;
    bool wild = false;
    for (const unsigned char *p = (const unsigned char *)subject;; p++) {
        if (*p == '.' || *p == '\0') {
            if (seg == 0)
                return "must not have empty segments";
            /* NATS reads a token as a wildcard only when it is exactly '*' or '>';
             * inside a longer token both are literals. */
            if (seg == 1 && wild)
                return "must not contain NATS wildcard tokens";
            if (*p == '\0')
                return NULL;
            seg = 0;
            continue;
        }
        if (*p <= ' ' || *p == 0x7f)
            return "must not contain whitespace or control characters";
        wild = seg == 0 && (*p == '*' || *p == '>');
        seg++;
    }
}

static jb_status exact_subject(const char *prefix, const char *type, char **out, jb_err *err)
{
    size_t len = strlen(prefix) + strlen(type) + 2;
    char *subj = malloc(len);
    if (subj == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    snprintf(subj, len, "%s.%s", prefix, type);
    const char *why = jb_sub_exact_subject_problem(subj);
    if (why != NULL) {
        free(subj);
        return jb_err_set(err, JB_ERR_INVALID, "%s", why);
    }
    *out = subj;
    return JB_OK;
}

jb_status jb_sub_subject(const jb_sub *s, const jb_cfg *cfg, const char *type, char **out,
                         jb_err *err)
{
    const char *prefix = cfg->stream_subject_prefix;
    if (s->tm == JB_SUB_MATCH_EXACT)
        return exact_subject(prefix, type, out, err);
    return jb_sub_standard_subject(prefix, s->source, strlen(s->source), type, strlen(type), out,
                                   err);
}

/* ------------------------------------------------ subscribed event types */

static bool add_event(cJSON *arr, const char *type, size_t len)
{
    const char *dot = NULL;
    for (size_t i = 0; i < len; i++)
        if (type[i] == '.')
            dot = type + i;
    if (dot == NULL || dot == type || dot == type + len - 1)
        return true; /* no name.version split possible: not listed */
    size_t nlen = (size_t)(dot - type);
    char *name = strndup(type, nlen);
    char *ver = strndup(dot + 1, len - nlen - 1);
    bool ok = name && ver;
    for (cJSON *e = arr->child; ok && e != NULL; e = e->next) {
        if (strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name) == 0 &&
            strcmp(cJSON_GetObjectItem(e, "version")->valuestring, ver) == 0) {
            free(name);
            free(ver);
            return true;
        }
    }
    cJSON *o = ok ? cJSON_CreateObject() : NULL;
    ok = o && cJSON_AddStringToObject(o, "name", name) &&
         cJSON_AddStringToObject(o, "version", ver) && cJSON_AddItemToArray(arr, o);
    if (!ok)
        cJSON_Delete(o);
    free(name);
    free(ver);
    return ok;
}

static bool add_sub_events(const jb_sub *s, const char *tp, const char *app, size_t app_len,
                           cJSON *arr)
{
    size_t tplen = strlen(tp);
    for (size_t i = 0; i < s->ntypes; i++) {
        const char *t = s->types[i];
        size_t tl = strlen(t);
        if (s->tm == JB_SUB_MATCH_EXACT) {
            /* "<prefix>.<app>.rest" lists "rest". */
            if (tl <= tplen + app_len + 2 || memcmp(t, tp, tplen) != 0 || t[tplen] != '.' ||
                memcmp(t + tplen + 1, app, app_len) != 0 || t[tplen + 1 + app_len] != '.')
                continue;
            size_t off = tplen + app_len + 2;
            if (!add_event(arr, t + off, tl - off))
                return false;
        } else if (s->tm == JB_SUB_MATCH_STANDARD && strlen(s->source) == app_len &&
                   memcmp(s->source, app, app_len) == 0) {
            if (!add_event(arr, t, tl))
                return false;
        }
    }
    return true;
}

jb_status jb_sub_subscribed_json(const jb_sub_vec *subs, const jb_cfg *cfg, const char *app,
                                 size_t app_len, char **json, size_t *json_len)
{
    const char *tp = cfg->event_type_prefix;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "eventsInfo") : NULL;
    jb_status st = JB_ERR_NOMEM;
    if (arr == NULL)
        goto done;
    for (size_t i = 0; subs != NULL && i < subs->n; i++)
        if (!add_sub_events(subs->items[i], tp, app, app_len, arr))
            goto done;
    char *out = cJSON_PrintUnformatted(root);
    if (out == NULL)
        goto done;
    *json = out;
    *json_len = strlen(out);
    st = JB_OK;
done:
    cJSON_Delete(root);
    return st;
}
