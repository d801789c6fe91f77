/* What jetbridge shows of values it did not write itself: URLs without their
 * userinfo (a password in a sink URL or NATS_URL must never reach logs, metrics,
 * status, dead letters or CLI output), and stored text with terminal control
 * sequences made visible (a manifest or a dead letter must not be able to drive
 * the operator's terminal). One helper each, so every place shows the same. */
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

#define REDACTED "redacted"

/* The end of the authority that starts at s: the first '/', '?', '#' or ',' (a
 * NATS_URL list), or the end of the string. */
static size_t authority_len(const char *s)
{
    return strcspn(s, "/?#,");
}

char *jb_redact_url(const char *url)
{
    if (url == NULL)
        return NULL;
    size_t len = strlen(url);
    /* Each userinfo is replaced by REDACTED, which may be longer than what it
     * replaces ("a@" -> "redacted@"): at most one per '@'. */
    size_t ats = 0;
    for (const char *p = url; (p = strchr(p, '@')) != NULL; p++)
        ats++;
    char *out = malloc(len + ats * sizeof(REDACTED) + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    const char *p = url;
    while (*p != '\0') {
        const char *scheme = strstr(p, "://");
        if (scheme == NULL) {
            size_t rest = strlen(p);
            memcpy(out + o, p, rest);
            o += rest;
            break;
        }
        const char *auth = scheme + 3;
        memcpy(out + o, p, (size_t)(auth - p));
        o += (size_t)(auth - p);
        size_t alen = authority_len(auth);
        /* The last '@' of the authority ends the userinfo (a password may hold '@'
         * when not percent-encoded). */
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i;
        if (at != NULL) {
            memcpy(out + o, REDACTED, sizeof(REDACTED) - 1);
            o += sizeof(REDACTED) - 1;
            auth = at;
            alen -= (size_t)(at - (scheme + 3));
        }
        memcpy(out + o, auth, alen);
        o += alen;
        p = auth + alen;
    }
    out[o] = '\0';
    return out;
}

bool jb_url_has_userinfo(const char *url)
{
    const char *scheme = url != NULL ? strstr(url, "://") : NULL;
    if (scheme == NULL)
        return false;
    const char *auth = scheme + 3;
    return memchr(auth, '@', authority_len(auth)) != NULL;
}

/* Length of the valid UTF-8 sequence at s[0..len), 0 when invalid. Overlong forms,
 * surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, cp = c & 0x07u;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    /* C1 controls (U+0080..U+009F): some terminals take U+009B as CSI. */
    if (cp >= 0x80 && cp <= 0x9f)
        return 0;
    return n;
}

char *jb_escape_text(const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL)
        len = 0;
    /* Worst case: every byte becomes \xNN. */
    char *out = malloc(len * 4 + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (u[i] >= 0x20 && u[i] < 0x7f) {
            out[o++] = (char)u[i++];
            continue;
        }
        size_t n = u[i] >= 0x80 ? utf8_seq(u + i, len - i) : 0;
        if (n > 0) {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
            continue;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
        i++;
    }
    out[o] = '\0';
    return out;
}
