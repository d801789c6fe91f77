/*
 * The ingress routes (docs/contract.md 2): from a request path to the route and its
 * application segment. Pure: used by the handlers and by the request guard (which
 * names the legacy endpoint in its 413), table-tested and fuzzed directly.
 */
#include <string.h>

#include "publisher/pub_internal.h"

bool jb_pub_route_is_ce(jb_pub_route r)
{
    return r == R_PUBLISH || r == R_APP_EVENTS || r == R_APP_V2;
}

jb_pub_route jb_pub_match_route(const char *path, size_t len, const char **app, size_t *app_len)
{
    if (len == 8 && memcmp(path, "/publish", 8) == 0)
        return R_PUBLISH;
    if (len == 8 && memcmp(path, "/healthz", 8) == 0)
        return R_HEALTHZ;
    if (len == 7 && memcmp(path, "/readyz", 7) == 0)
        return R_READYZ;
    if (len < 2 || path[0] != '/')
        return R_NONE;
    const char *slash = memchr(path + 1, '/', len - 1);
    if (slash == NULL || slash == path + 1)
        return R_NONE;
    size_t rest = len - (size_t)(slash - path);
    jb_pub_route r = R_NONE;
    if (rest == 10 && memcmp(slash, "/v1/events", 10) == 0)
        r = R_LEGACY;
    else if (rest == 7 && memcmp(slash, "/events", 7) == 0)
        r = R_APP_EVENTS;
    else if (rest == 10 && memcmp(slash, "/v2/events", 10) == 0)
        r = R_APP_V2;
    else if (rest == 21 && memcmp(slash, "/v1/events/subscribed", 21) == 0)
        r = R_SUBSCRIBED;
    if (r != R_NONE) {
        *app = path + 1;
        *app_len = (size_t)(slash - path - 1);
    }
    return r;
}
