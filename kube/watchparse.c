/* The watch stream parser: newline-delimited JSON events, read incrementally into a
 * bounded line buffer. Input is untrusted: a line too long or not an event is skipped
 * (and counted), never fatal. */
#include <stdlib.h>
#include <string.h>

#include "kube/kube_internal.h"

struct jb_kube_watch_parser {
    char *buf;
    size_t len;
    size_t max;
    bool skipping; /* inside a line that grew past max: drop until its newline */
    jb_kube_event_fn fn;
    void *ud;
    uint64_t malformed;
    uint64_t oversized;
};

jb_kube_watch_parser *jb_kube_watch_parser_create(size_t max_line, jb_kube_event_fn fn, void *ud)
{
    jb_kube_watch_parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->max = max_line ? max_line : 1;
    p->fn = fn;
    p->ud = ud;
    return p;
}

void jb_kube_watch_parser_destroy(jb_kube_watch_parser *p)
{
    if (p == NULL)
        return;
    free(p->buf);
    free(p);
}

uint64_t jb_kube_watch_malformed(const jb_kube_watch_parser *p)
{
    return p->malformed;
}

uint64_t jb_kube_watch_oversized(const jb_kube_watch_parser *p)
{
    return p->oversized;
}

static bool event_type(const char *s, jb_kube_event_type *out)
{
    static const struct {
        const char *name;
        jb_kube_event_type t;
    } names[] = {{"ADDED", JB_KUBE_ADDED},
                 {"MODIFIED", JB_KUBE_MODIFIED},
                 {"DELETED", JB_KUBE_DELETED},
                 {"BOOKMARK", JB_KUBE_BOOKMARK},
                 {"ERROR", JB_KUBE_ERROR}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].t;
            return true;
        }
    return false;
}

/* One complete line (without its newline). False when the callback said stop. */
static bool line(jb_kube_watch_parser *p, const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n == 0)
        return true;
    cJSON *root = cJSON_ParseWithLength(s, n);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "object");
    jb_kube_event_type t;
    bool ok = true;
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj) || !event_type(type->valuestring, &t)) {
        p->malformed++;
        jb_log(JB_LOG_WARN, "kube", "malformed watch event skipped", NULL);
    } else {
        ok = p->fn(t, obj, p->ud);
    }
    cJSON_Delete(root);
    return ok;
}

bool jb_kube_watch_feed(jb_kube_watch_parser *p, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (p->skipping) {
            if (nl != NULL)
                p->skipping = false;
        } else if (p->len + take > p->max) {
            p->oversized++;
            jb_log(JB_LOG_WARN, "kube", "oversized watch event skipped (KUBE_MAX_EVENT_BYTES)",
                   NULL);
            p->len = 0;
            p->skipping = nl == NULL;
        } else if (nl != NULL && p->len == 0) {
            if (!line(p, data, take)) /* the common case: no copy */
                return false;
        } else {
            if (p->buf == NULL && (p->buf = malloc(p->max)) == NULL)
                return false;
            memcpy(p->buf + p->len, data, take);
            p->len += take;
            if (nl != NULL) {
                size_t n = p->len;
                p->len = 0;
                if (!line(p, p->buf, n))
                    return false;
            }
        }
        if (nl == NULL)
            break;
        len -= take + 1;
        data = nl + 1;
    }
    return true;
}
