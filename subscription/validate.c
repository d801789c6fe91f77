/* Validation with Kyma's rules and messages, and the effective delivery settings. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/jb_common.h"
#include "common/jb_text.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define MAX_IN_FLIGHT_LIMIT 100000
#define MAX_DELIVER_LIMIT   1000000

/* ------------------------------------------------------------ messages */

/* Appends a formatted piece at out[*pos], advancing *pos by what snprintf wanted, so
 * that *pos >= cap tells the caller the message was cut. */
__attribute__((format(printf, 4, 5))) static void put_fmt(char *out, size_t cap, size_t *pos,
                                                          const char *fmt, ...)
{
    if (*pos >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    *pos += w > 0 ? (size_t)w : 0;
}

/* Appends s[0..len) quoted as Go's %q does: printable characters as they are,
 * '"' and '\' escaped, control characters and invalid UTF-8 as escapes. */
static void go_quote(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
#define PUT(...) put_fmt(out, cap, pos, __VA_ARGS__)
    PUT("\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        static const char esc[] = "\a\b\f\n\r\t\v";
        static const char let[] = "abfnrtv";
        const char *e = c ? strchr(esc, c) : NULL;
        if (c == '"' || c == '\\')
            PUT("\\%c", c);
        else if (e != NULL)
            PUT("\\%c", let[e - esc]);
        else if (c < 0x20 || c == 0x7f)
            PUT("\\x%02x", c);
        else if (c < 0x80)
            PUT("%c", c);
        else {
            /* Copy one valid UTF-8 sequence, else escape the byte. */
            size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = n > 0 && i + n <= len;
            for (size_t k = 1; ok && k < n; k++)
                ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
            if (ok) {
                PUT("%.*s", (int)n, s + i);
                i += n - 1;
            } else
                PUT("\\x%02x", c);
        }
    }
    PUT("\"");
#undef PUT
}

typedef struct errs {
    jb_sub_errors *e;
    bool nomem;
} errs;

/* Adds `<path>: Invalid value: "<value>": <detail>`. */
static void add_err(errs *x, const char *path, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_err(errs *x, const char *path, const char *value, const char *fmt, ...)
{
    char buf[1024];
    size_t pos = 0;
    /* Bounded: the messages go into the status, one KV value. */
    if (x->e->n >= JB_SUB_MAX_ERRORS)
        return;
    int w = snprintf(buf, sizeof(buf), "%s: Invalid value: ", path);
    pos = w > 0 ? (size_t)w : 0;
    /* A URL's password never reaches the status or the CLI. */
    char *shown = jb_url_has_userinfo(value) ? jb_redact_url(value) : NULL;
    if (shown != NULL)
        value = shown;
    go_quote(buf, sizeof(buf), &pos, value, strlen(value));
    free(shown);
    if (pos + 2 < sizeof(buf)) {
        buf[pos++] = ':';
        buf[pos++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + pos, sizeof(buf) - pos, fmt, ap);
        va_end(ap);
    }
    char **m = realloc(x->e->msgs, (x->e->n + 1) * sizeof(char *));
    char *d = strdup(buf);
    if (m == NULL || d == NULL) {
        if (m != NULL)
            x->e->msgs = m;
        free(d);
        x->nomem = true;
        return;
    }
    x->e->msgs = m;
    x->e->msgs[x->e->n++] = d;
}

void jb_sub_errors_free(jb_sub_errors *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

/* Kyma's aggregate: one message as it is, several as "[a, b]". */
static char *aggregate(const jb_sub_errors *e)
{
    size_t len = 3;
    for (size_t i = 0; i < e->n; i++)
        len += strlen(e->msgs[i]) + 2;
    char *out = malloc(len);
    if (out == NULL)
        return NULL;
    if (e->n == 1) {
        memcpy(out, e->msgs[0], strlen(e->msgs[0]) + 1);
        return out;
    }
    size_t pos = 0;
    if (e->n > 0)
        out[pos++] = '[';
    for (size_t i = 0; i < e->n; i++) {
        size_t l = strlen(e->msgs[i]);
        if (i > 0) {
            out[pos++] = ',';
            out[pos++] = ' ';
        }
        memcpy(out + pos, e->msgs[i], l);
        pos += l;
    }
    if (e->n > 0)
        out[pos++] = ']';
    out[pos] = '\0';
    return out;
}

/* ------------------------------------------------------------ URIs */

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool sub_delim(unsigned char c)
{
    return c != 0 && strchr("!$&'()*+,;=", c) != NULL;
}

static bool pct_at(const char *s, size_t len, size_t i)
{
    return i + 2 < len && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2]);
}

/* Parses http(s)://[userinfo@]host[:port][/path][?query][#fragment]. Writes the
 * host (without port, lower-case) into host. Returns NULL, or what is wrong. */
static const char *parse_http_url(const char *url, char *host, size_t hcap)
{
    size_t skip = strncmp(url, "https://", 8) == 0 ? 8 : 7;
    const char *a = url + skip;
    size_t alen = strcspn(a, "/?#");
    const char *at = memchr(a, '@', alen);
    const char *h = at ? at + 1 : a;
    size_t hlen = alen - (size_t)(h - a);
    size_t nlen = hlen;
    if (hlen > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', hlen);
        if (close == NULL)
            return "missing ']' in host";
        nlen = (size_t)(close - h) + 1;
    } else {
        const char *colon = memchr(h, ':', hlen);
        nlen = colon ? (size_t)(colon - h) : hlen;
    }
    if (nlen == 0)
        return "empty host";
    if (nlen >= hcap)
        return "host too long";
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!unreserved(c) && !sub_delim(c) && c != '%' && !(h[0] == '[' && strchr("[]:", c)))
            return "invalid character in host name";
        host[i] = (char)tolower(c);
    }
    host[nlen] = '\0';
    if (nlen < hlen) {
        if (h[nlen] != ':' || nlen + 1 == hlen)
            return "invalid port";
        long port = 0;
        for (size_t i = nlen + 1; i < hlen; i++) {
            if (!isdigit((unsigned char)h[i]) || (port = port * 10 + (h[i] - '0')) > 65535)
                return "invalid port";
        }
    }
    const char *rest = a + alen;
    for (size_t i = 0; rest[i]; i++) {
        unsigned char c = (unsigned char)rest[i];
        if (c == '%' && !pct_at(rest, strlen(rest), i))
            return "invalid URL escape";
        if (c <= ' ' || c >= 0x7f || strchr("\"<>\\^`{|}", c))
            return "invalid character in URL";
    }
    return NULL;
}

static bool http_scheme(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

/* SINK_ALLOWED_HOSTS: comma-separated host names; "*.example.com" also matches
 * every subdomain of example.com. */
static bool host_allowed(const char *list, const char *host)
{
    size_t hl = strlen(host);
    for (const char *p = list; p && *p;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        size_t n = strcspn(p, ",");
        size_t e = n;
        while (e > 0 && isspace((unsigned char)p[e - 1]))
            e--;
        if (e > 2 && p[0] == '*' && p[1] == '.') {
            size_t sl = e - 1; /* ".example.com" */
            if (hl > sl && strncasecmp(host + hl - sl, p + 1, sl) == 0)
                return true;
        } else if (e == hl && e > 0 && strncasecmp(p, host, e) == 0) {
            return true;
        }
        p += n;
    }
    return false;
}

/* ------------------------------------------------------------ the rules */

static void check_source(const jb_sub *s, errs *x)
{
    if (s->source[0] == '\0') {
        if (s->tm != JB_SUB_MATCH_EXACT)
            add_err(x, "spec.source", s->source, "must not be empty");
        return;
    }
    if (!jb_sub_source_valid(s->source, strlen(s->source))) {
        add_err(x, "spec.source", s->source, "must be valid as per RFC 3986");
        return;
    }
    char tmp[8];
    if (s->tm != JB_SUB_MATCH_EXACT &&
        jb_sub_clean_source(s->source, strlen(s->source), tmp, sizeof(tmp)) == 0)
        add_err(x, "spec.source", s->source, "must not be empty after cleaning");
}

static bool dup_types(const jb_sub *s, errs *x)
{
    size_t len = 1;
    for (size_t i = 0; i < s->ntypes; i++)
        len += strlen(s->types[i]) + 1;
    char *list = calloc(1, len);
    size_t used = 0; /* bytes of list in use; len bounds every copy below */
    bool found = false;
    if (list == NULL) {
        x->nomem = true;
        return true;
    }
    for (size_t i = 1; i < s->ntypes; i++) {
        bool seen_before = false, listed = false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->types[i], s->types[j]) == 0) {
                if (seen_before)
                    listed = true; /* third or later copy: already listed */
                seen_before = true;
            }
        }
        if (seen_before && !listed) {
            size_t n = strlen(s->types[i]);
            if (found)
                list[used++] = ',';
            memcpy(list + used, s->types[i], n + 1);
            used += n;
            found = true;
        }
    }
    if (found)
        add_err(x, "spec.types", list, "must not have duplicate types");
    free(list);
    return found;
}

/* Our rule beyond Kyma: two types of one subscription must not map to the same
 * subject (Kyma silently merges them into one consumer). */
static void same_subject(const jb_sub *s, const jb_cfg *cfg, errs *x)
{
    char **subj = calloc(s->ntypes, sizeof(char *));
    jb_err err;
    if (subj == NULL) {
        x->nomem = true;
        return;
    }
    for (size_t i = 0; i < s->ntypes; i++) {
        if (jb_sub_subject(s, cfg, s->types[i], &subj[i], &err) != JB_OK)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (subj[j] != NULL && strcmp(subj[i], subj[j]) == 0) {
                size_t l = strlen(s->types[i]) + strlen(s->types[j]) + 2;
                char *v = malloc(l);
                if (v == NULL) {
                    x->nomem = true;
                } else {
                    snprintf(v, l, "%s,%s", s->types[j], s->types[i]);
                    add_err(x, "spec.types", v,
                            "must not have types that clean to the same "
                            "subject %s",
                            subj[i]);
                    free(v);
                }
                i = s->ntypes; /* one error for types, as Kyma does */
                break;
            }
        }
    }
    for (size_t i = 0; i < s->ntypes; i++)
        free(subj[i]);
    free(subj);
}

static void check_types(const jb_sub *s, const jb_cfg *cfg, errs *x, bool source_ok)
{
    if (s->ntypes == 0) {
        add_err(x, "spec.types", "", "must not be empty");
        return;
    }
    if (dup_types(s, x))
        return;
    const char *tp = cfg->event_type_prefix;
    for (size_t i = 0; i < s->ntypes; i++) {
        const char *t = s->types[i];
        size_t tl = strlen(t), trim = 0;
        if (tl == 0) {
            add_err(x, "spec.types", t, "must not be of length zero");
            return;
        }
        if (strchr(t, '.') == NULL) {
            add_err(x, "spec.types", t, "must have minimum 2 segments");
            return;
        }
        if (s->tm != JB_SUB_MATCH_EXACT && strncmp(t, tp, strlen(tp)) == 0) {
            add_err(x, "spec.types", t, "must not have %s as type prefix", tp);
            return;
        }
        for (size_t k = 0; k < tl; k++)
            trim += !isspace((unsigned char)t[k]);
        if (trim == 0) {
            add_err(x, "spec.types", t, "must be valid as per RFC 3986");
            return;
        }
        char *subj = NULL;
        jb_err err;
        if (source_ok && jb_sub_subject(s, cfg, t, &subj, &err) != JB_OK) {
            add_err(x, "spec.types", t, "%s",
                    s->tm == JB_SUB_MATCH_EXACT ? err.msg
                                                : "must not have empty segments after cleaning");
            return;
        }
        free(subj);
    }
    if (source_ok)
        same_subject(s, cfg, x);
}

/* Go's strconv.Atoi: optional sign, decimal digits, fits in 64 bits. */
static bool go_atoi(const char *s, int64_t *out)
{
    return jb_parse_int(s, strlen(s), INT64_MIN, INT64_MAX, out);
}

/* backoffDelay, backoffMax, timeout, retryAfterMax: ISO 8601 durations. */
static void check_durations(const jb_sub *s, jb_sub_delivery *d, errs *x)
{
    const char *p = "spec.config";
    const char *v;
    int64_t n;
    static const struct {
        const char *key;
        size_t off;
        int64_t min;
    } durs[] = {
        {"backoffDelay", offsetof(jb_sub_delivery, backoff_delay_ms), 1},
        {"backoffMax", offsetof(jb_sub_delivery, backoff_max_ms), 1},
        {"timeout", offsetof(jb_sub_delivery, timeout_ms), 1},
        {"retryAfterMax", offsetof(jb_sub_delivery, retry_after_max_ms), 0},
    };
    bool dur_ok = true;
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        if ((v = jb_sub_config_value(s, durs[i].key)) == NULL)
            continue;
        if (!jb_cfg_parse_iso8601_duration_ms(v, strlen(v), &n)) {
            add_err(x, p, v, "%s must be an ISO 8601 duration such as PT1S", durs[i].key);
            dur_ok = false;
        } else if (n < durs[i].min) {
            add_err(x, p, v, "%s must be greater than zero", durs[i].key);
            dur_ok = false;
        } else {
            *(int64_t *)(void *)((char *)d + durs[i].off) = n;
        }
    }
    const char *max = jb_sub_config_value(s, "backoffMax");
    /* Without backoffMax, a backoffDelay above its default raises the cap with it. */
    if (max == NULL && d->backoff_max_ms < d->backoff_delay_ms)
        d->backoff_max_ms = d->backoff_delay_ms;
    if (dur_ok && d->backoff_max_ms < d->backoff_delay_ms)
        add_err(x, p, max, "backoffMax must not be less than backoffDelay");
}

static void check_dead_letter(const jb_sub *s, const jb_cfg *cfg, jb_sub_delivery *d, errs *x)
{
    const char *p = "spec.config";
    const char *v;
    if ((v = jb_sub_config_value(s, "deadLetterSink")) != NULL) {
        char host[256];
        const char *why = NULL;
        if (!http_scheme(v))
            add_err(x, p, v, "deadLetterSink must have URL scheme 'http' or 'https'");
        else if (strlen(v) >= sizeof(d->dead_letter_sink))
            add_err(x, p, v, "deadLetterSink must be shorter than %zu characters",
                    sizeof(d->dead_letter_sink));
        else if ((why = parse_http_url(v, host, sizeof(host))) != NULL)
            add_err(x, p, v, "deadLetterSink: failed to parse URL: %s", why);
        else if (cfg->sink_validation == JB_SINK_ALLOWLIST &&
                 !host_allowed(cfg->sink_allowed_hosts, host))
            add_err(x, p, v, "deadLetterSink must have a host listed in SINK_ALLOWED_HOSTS");
        else
            memcpy(d->dead_letter_sink, v, strlen(v) + 1);
    }
}

/* Checks spec.config and fills d (defaults first). One error per bad key. */
static void check_config(const jb_sub *s, const jb_cfg *cfg, jb_sub_delivery *d, errs *x)
{
    memset(d, 0, sizeof(*d));
    d->max_in_flight = cfg->default_max_in_flight;
    d->max_deliver = JB_SUB_DEFAULT_MAX_DELIVER;
    d->backoff = JB_SUB_BACKOFF_EXPONENTIAL;
    d->backoff_delay_ms = JB_SUB_DEFAULT_BACKOFF_DELAY_MS;
    d->backoff_max_ms = JB_SUB_DEFAULT_BACKOFF_MAX_MS;
    d->timeout_ms = JB_SUB_DEFAULT_TIMEOUT_MS;
    d->retry_after_max_ms = JB_SUB_DEFAULT_RETRY_AFTER_MAX_MS;
    d->content_mode = JB_SUB_CONTENT_BINARY;
    const char *p = "spec.config";
    const char *v;
    int64_t n;
    if ((v = jb_sub_config_value(s, "maxInFlightMessages")) != NULL) {
        if (!go_atoi(v, &n))
            add_err(x, p, v, "maxInFlightMessages must be a stringified int value");
        else if (n < 1 || n > MAX_IN_FLIGHT_LIMIT)
            add_err(x, p, v, "maxInFlightMessages must be between 1 and %d", MAX_IN_FLIGHT_LIMIT);
        else
            d->max_in_flight = (int)n;
    }
    if ((v = jb_sub_config_value(s, "maxDeliver")) != NULL) {
        if (!go_atoi(v, &n))
            add_err(x, p, v, "maxDeliver must be a stringified int value");
        else if (n < 1 || n > MAX_DELIVER_LIMIT)
            add_err(x, p, v, "maxDeliver must be between 1 and %d", MAX_DELIVER_LIMIT);
        else
            d->max_deliver = (int)n;
    }
    if ((v = jb_sub_config_value(s, "backoffPolicy")) != NULL) {
        if (strcmp(v, "exponential") == 0)
            d->backoff = JB_SUB_BACKOFF_EXPONENTIAL;
        else if (strcmp(v, "linear") == 0)
            d->backoff = JB_SUB_BACKOFF_LINEAR;
        else if (strcmp(v, "constant") == 0)
            d->backoff = JB_SUB_BACKOFF_CONSTANT;
        else
            add_err(x, p, v, "backoffPolicy must be exponential, linear or constant");
    }
    check_durations(s, d, x);
    check_dead_letter(s, cfg, d, x);
    if ((v = jb_sub_config_value(s, "contentMode")) != NULL) {
        if (strcasecmp(v, "BINARY") == 0)
            d->content_mode = JB_SUB_CONTENT_BINARY;
        else if (strcasecmp(v, "STRUCTURED") == 0)
            d->content_mode = JB_SUB_CONTENT_STRUCTURED;
        else
            add_err(x, p, v, "contentMode must be BINARY or STRUCTURED");
    }
}

static void check_sink(const jb_sub *s, const jb_cfg *cfg, errs *x)
{
    const char *sink = s->sink;
    char host[256];
    const char *why;
    if (sink[0] == '\0') {
        add_err(x, "spec.sink", sink, "must not be empty");
        return;
    }
    if (!http_scheme(sink)) {
        add_err(x, "spec.sink", sink, "must have URL scheme 'http' or 'https'");
        return;
    }
    if ((why = parse_http_url(sink, host, sizeof(host))) != NULL) {
        add_err(x, "spec.sink", sink, "failed to parse subscription sink URL: %s", why);
        return;
    }
    jb_cfg_sink_validation mode = cfg->sink_validation;
    if (mode == JB_SINK_ALLOWLIST && !host_allowed(cfg->sink_allowed_hosts, host)) {
        add_err(x, "spec.sink", sink, "must have a host listed in SINK_ALLOWED_HOSTS");
        return;
    }
    if (mode != JB_SINK_KUBERNETES)
        return;
    static const char suffix[] = "svc.cluster.local";
    size_t hl = strlen(host);
    if (hl < sizeof(suffix) - 1 || strcmp(host + hl - (sizeof(suffix) - 1), suffix) != 0) {
        add_err(x, "spec.sink", sink, "must have valid sink URL suffix %s", suffix);
        return;
    }
    size_t labels = 1;
    for (size_t i = 0; i < hl; i++)
        labels += host[i] == '.';
    if (labels != 5) {
        add_err(x, "spec.sink", sink, "must have sink URL with 5 sub-domains: %s", host);
        return;
    }
    const char *ns = strchr(host, '.') + 1;
    size_t nslen = strcspn(ns, ".");
    if (strlen(s->ns) != nslen || strncmp(ns, s->ns, nslen) != 0)
        add_err(x, "metadata.namespace", sink,
                "must have the same namespace as the subscriber: %.*s", (int)nslen, ns);
}

/* The sink authentication keys (subscription/auth.c). The value of a secret key
 * (clientSecret) is never quoted. */
static void check_auth(const jb_sub *s, errs *x)
{
    jb_sub_auth a;
    jb_err err;
    jb_status st = jb_sub_auth_get(s, &a, &err);
    if (st == JB_OK) {
        jb_sub_auth_free(&a);
        return;
    }
    if (st == JB_ERR_NOMEM) {
        x->nomem = true;
        return;
    }
    char *bar = strchr(err.msg, '|');
    if (bar == NULL)
        return;
    *bar = '\0';
    const char *v = jb_sub_config_value(s, err.msg);
    add_err(x, "spec.config", strcmp(err.msg, "clientSecret") == 0 || v == NULL ? "" : v, "%s: %s",
            err.msg, bar + 1);
}

jb_status jb_sub_validate(const jb_sub *s, const jb_cfg *cfg, jb_sub_errors *out)
{
    jb_sub_errors e = {0};
    errs x = {&e, false};
    jb_sub_delivery d;
    if (s->tm == JB_SUB_MATCH_INVALID)
        add_err(&x, "spec.typeMatching", s->tm_raw,
                "must be a valid TypeMatching value exact or standard");
    size_t before = e.n;
    check_source(s, &x);
    bool source_ok = e.n == before;
    if (s->ntypes > JB_SUB_MAX_TYPES) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", s->ntypes);
        add_err(&x, "spec.types", n, "must not have more than %d types", JB_SUB_MAX_TYPES);
    } else {
        check_types(s, cfg, &x, source_ok);
    }
    check_config(s, cfg, &d, &x);
    check_auth(s, &x);
    check_sink(s, cfg, &x);
    if (!x.nomem && (e.message = e.n ? aggregate(&e) : strdup("")) == NULL)
        x.nomem = true;
    if (x.nomem) {
        jb_sub_errors_free(&e);
        return JB_ERR_NOMEM;
    }
    *out = e;
    return JB_OK;
}

jb_status jb_sub_delivery_get(const jb_sub *s, const jb_cfg *cfg, jb_sub_delivery *out, jb_err *err)
{
    jb_sub_errors e = {0};
    errs x = {&e, false};
    jb_sub_delivery d;
    check_config(s, cfg, &d, &x);
    jb_status st = JB_OK;
    if (x.nomem)
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    else if (e.n > 0)
        st = jb_err_set(err, JB_ERR_INVALID, "%s", e.msgs[0]);
    else
        *out = d;
    jb_sub_errors_free(&e);
    return st;
}
