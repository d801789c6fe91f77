/*
 * Enrichment (docs/contract.md 2.3): from an event's type and source to the NATS subject,
 * plus tracing headers and the Nats-Msg-Id. Pure functions: no I/O, no globals, so
 * they are table-tested and fuzzed directly.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/jb_common.h"
#include "publisher/pub_internal.h"
#include "subscription/jb_sub_subject.h"

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

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool jb_pub_is_prefixed(const char *type_prefix, const char *type, size_t len)
{
    size_t pl = strlen(type_prefix);
    return pl > 0 && len > pl && memcmp(type, type_prefix, pl) == 0 && type[pl] == '.';
}

/* Appends the characters of s[0..len) that keep() accepts. */
static size_t append_kept(char *dst, const char *s, size_t len, bool dots)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++)
        if (is_alnum(s[i]) || (dots && s[i] == '.'))
            dst[o++] = s[i];
    return o;
}

/* The prefixed-path cleaning of type[0..len), which starts with "<type_prefix>.":
 * at least min_parts non-empty parts after the prefix (app, event segments...,
 * operation, version); the app keeps [A-Za-z0-9], the event segments between app
 * and the last two parts are joined without dots, then everything outside
 * [A-Za-z0-9.] goes. */
static jb_status prefixed_clean(const char *type_prefix, const char *type, size_t len,
                                size_t min_parts, char **out, jb_err *err)
{
    size_t pl = strlen(type_prefix);
    if (!jb_pub_is_prefixed(type_prefix, type, len))
        return jb_err_set(err, JB_ERR_INVALID, "type: invalid format: missing prefix %s",
                          type_prefix);
    const char *rest = type + pl + 1;
    size_t rlen = len - pl - 1;
    if (jb_pub_is_prefixed(type_prefix, rest, rlen))
        return jb_err_set(err, JB_ERR_INVALID, "type: invalid format: prefix %s repeated",
                          type_prefix);
    size_t nparts = 1;
    for (size_t i = 0; i < rlen; i++)
        nparts += rest[i] == '.';
    if (nparts < min_parts || has_empty_segment(rest, rlen))
        return jb_err_set(err, JB_ERR_INVALID,
                          "type: invalid format: want %s.<app>.<event>.<operation>.<version>",
                          type_prefix);
    char *buf = malloc(len + 2);
    if (buf == NULL)
        return JB_ERR_NOMEM;
    size_t o = append_kept(buf, type_prefix, pl, true);
    buf[o++] = '.';
    size_t dot_app = (size_t)((const char *)memchr(rest, '.', rlen) - rest);
    o += append_kept(buf + o, rest, dot_app, false);
    /* The operation and version are the last two parts; everything between the app
     * and them is joined without dots (nothing, when there are only three parts). */
    size_t dots_seen = 0, last2 = 0;
    for (size_t i = rlen; i-- > 0;)
        if (rest[i] == '.' && ++dots_seen == 2) {
            last2 = i;
            break;
        }
    if (last2 > dot_app) {
        buf[o++] = '.';
        o += append_kept(buf + o, rest + dot_app + 1, last2 - dot_app - 1, false);
    }
    o += append_kept(buf + o, rest + last2, rlen - last2, true);
    buf[o] = '\0';
    if (has_empty_segment(buf, o)) {
        free(buf);
        return jb_err_set(err, JB_ERR_INVALID,
                          "type: invalid format: a part is empty after cleaning");
    }
    *out = buf;
    return JB_OK;
}

jb_status jb_pub_prefixed_type(const char *type_prefix, const char *type, size_t len, char **out,
                               jb_err *err)
{
    return prefixed_clean(type_prefix, type, len, 4, out, err);
}

jb_status jb_pub_legacy_type(const char *type_prefix, const char *type, size_t len, char **out,
                             jb_err *err)
{
    return prefixed_clean(type_prefix, type, len, 3, out, err);
}

/* "<subject_prefix>.<type>", malloc'd; NULL when out of memory. */
static char *prefix_subject(const char *subject_prefix, const char *type)
{
    size_t pl = strlen(subject_prefix), cl = strlen(type);
    char *subj = malloc(pl + cl + 2);
    if (subj == NULL)
        return NULL;
    memcpy(subj, subject_prefix, pl);
    subj[pl] = '.';
    memcpy(subj + pl + 1, type, cl + 1);
    return subj;
}

jb_status jb_pub_enrich(const jb_pub_names *n, jb_ce *ce, char **subject, jb_err *err)
{
    size_t tlen = 0, slen = 0;
    const char *type = jb_ce_get(ce, "type", &tlen);
    const char *source = jb_ce_get(ce, "source", &slen);
    if (type == NULL || source == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "type: MUST be a non-empty string");
    /* The subscription side applies the same rule to spec.source. */
    if (!jb_sub_source_valid(source, slen))
        return jb_err_set(err, JB_ERR_INVALID,
                          "source: \"%.*s\" is not valid: it must not be empty or hold a control "
                          "character, a '%%' without two hex digits, or a ':' in its first "
                          "segment that does not end a scheme",
                          (int)(slen > 200 ? 200 : slen), source);
    char *subj = NULL, *clean = NULL;
    jb_status rc;
    if (jb_pub_is_prefixed(n->type_prefix, type, tlen)) {
        rc = jb_pub_prefixed_type(n->type_prefix, type, tlen, &clean, err);
        if (rc != JB_OK)
            goto done;
        rc = JB_ERR_NOMEM;
        if ((subj = prefix_subject(n->subject_prefix, clean)) == NULL)
            goto done;
        rc = jb_ce_set_str(ce, "type", clean);
    } else {
        rc = jb_sub_standard_subject(n->subject_prefix, source, slen, type, tlen, &subj, err);
        if (rc != JB_OK)
            goto done;
        /* type points into ce: set originaltype before type is replaced. */
        rc = jb_ce_set(ce, "originaltype", type, tlen);
        if (rc == JB_OK)
            rc = jb_ce_set_str(ce, "type", subj);
    }
    if (rc != JB_OK)
        goto done;
    *subject = subj;
    subj = NULL;
done:
    free(subj);
    free(clean);
    return rc;
}

jb_status jb_pub_enrich_legacy_copy(const jb_pub_names *n, jb_ce *ce, char **subject, jb_err *err)
{
    size_t tlen = 0;
    const char *type = jb_ce_get(ce, "type", &tlen);
    char *clean = NULL, *subj = NULL;
    if (type == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "type: MUST be a non-empty string");
    jb_status rc = jb_pub_legacy_type(n->type_prefix, type, tlen, &clean, err);
    if (rc != JB_OK)
        return rc;
    rc = JB_ERR_NOMEM;
    if ((subj = prefix_subject(n->subject_prefix, clean)) != NULL)
        rc = jb_ce_set_str(ce, "type", clean);
    free(clean);
    if (rc != JB_OK) {
        free(subj);
        return rc;
    }
    *subject = subj;
    return JB_OK;
}

static const struct {
    const char *header;
    const char *ext;
} tracing_map[] = {
    {"traceparent", "traceparent"},          {"X-B3-TraceId", "b3traceid"},
    {"X-B3-ParentSpanId", "b3parentspanid"}, {"X-B3-SpanId", "b3spanid"},
    {"X-B3-Sampled", "b3sampled"},           {"X-B3-Flags", "b3flags"},
};

jb_status jb_pub_apply_tracing(jb_ce *ce, const jb_ce_header *hdrs, size_t n, jb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        /* Every tracing header starts with 't' or 'x': the others (most of a
         * request's headers) are passed over without comparing names. */
        char first = (char)(hdrs[i].name_len > 0 ? hdrs[i].name[0] | 0x20 : 0);
        if (first != 't' && first != 'x')
            continue;
        for (size_t k = 0; k < sizeof(tracing_map) / sizeof(tracing_map[0]); k++) {
            size_t hl = strlen(tracing_map[k].header);
            if (hdrs[i].name_len != hl || strncasecmp(hdrs[i].name, tracing_map[k].header, hl))
                continue;
            if (hdrs[i].value_len == 0)
                continue;
            /* The dispatcher sends these back unencoded: refuse now what it could
             * not send, rather than store an event its sink would refuse. */
            if (!jb_ce_http_value_ok(hdrs[i].value, hdrs[i].value_len))
                return jb_err_set(err, JB_ERR_INVALID,
                                  "%s: MUST NOT contain control characters or begin or end "
                                  "with whitespace",
                                  tracing_map[k].header);
            jb_status rc = jb_ce_set(ce, tracing_map[k].ext, hdrs[i].value, hdrs[i].value_len);
            if (rc != JB_OK)
                return jb_err_set(err, rc, "%s",
                                  rc == JB_ERR_INVALID ? "too many attributes" : "out of memory");
        }
    }
    return JB_OK;
}

void jb_pub_msg_id(const char *source, size_t slen, const char *id, size_t ilen,
                   const char *subject, char out[JB_PUB_MSG_ID_LEN + 1])
{
    jb_pub_msg_id_ctx(NULL, source, slen, id, ilen, subject, out);
}

void jb_pub_msg_id_ctx(EVP_MD_CTX *keep, const char *source, size_t slen, const char *id,
                       size_t ilen, const char *subject, char out[JB_PUB_MSG_ID_LEN + 1])
{
    static const char hexdig[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* Streaming digest: the parts are separated by NUL so that ("ab","c") and
     * ("a","bc") differ, and nothing is copied however long the parts are. */
    EVP_MD_CTX *ctx = keep != NULL ? keep : EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, jb_sha256_md(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, source, slen) == 1 && EVP_DigestUpdate(ctx, "", 1) == 1 &&
              EVP_DigestUpdate(ctx, id, ilen) == 1;
    if (ok && subject != NULL)
        ok = EVP_DigestUpdate(ctx, "", 1) == 1 &&
             EVP_DigestUpdate(ctx, subject, strlen(subject)) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 >= JB_PUB_MSG_ID_LEN;
    if (keep == NULL)
        EVP_MD_CTX_free(ctx);
    if (!ok) {
        /* Only out of memory gets here: an empty id disables deduplication for this
         * one event instead of failing the request. */
        out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < JB_PUB_MSG_ID_LEN / 2; i++) {
        out[2 * i] = hexdig[md[i] >> 4];
        out[2 * i + 1] = hexdig[md[i] & 15];
    }
    out[JB_PUB_MSG_ID_LEN] = '\0';
}
