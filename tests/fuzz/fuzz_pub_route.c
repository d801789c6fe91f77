/*
 * libFuzzer target for the publisher's route matcher (jb_pub_match_route). The input is
 * a request path, copied to an exact-size buffer (no NUL), so any read past its length
 * is caught. Properties: the answer equals an independent reading of the route table
 * (/publish, /healthz, /readyz, and /{app}/v1/events, /{app}/v1/events/subscribed,
 * /{app}/events, /{app}/v2/events with a non-empty app without '/'); the app segment,
 * when given, points into the path right after its first '/'; *app is left alone for
 * the other routes; a route that takes CloudEvents is exactly /publish or an app
 * CloudEvents route.
 */
#include <stdlib.h>
#include <string.h>

#include "publisher/pub_internal.h"

static bool is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* The route table read from the documentation, written without the matcher's code. */
static jb_pub_route reference(const char *p, size_t len, size_t *app_len)
{
    if (is(p, len, "/publish"))
        return R_PUBLISH;
    if (is(p, len, "/healthz"))
        return R_HEALTHZ;
    if (is(p, len, "/readyz"))
        return R_READYZ;
    if (len == 0 || p[0] != '/')
        return R_NONE;
    size_t a = 1;
    while (a < len && p[a] != '/')
        a++;
    if (a == 1 || a == len)
        return R_NONE;
    *app_len = a - 1;
    const char *rest = p + a;
    size_t rlen = len - a;
    if (is(rest, rlen, "/v1/events"))
        return R_LEGACY;
    if (is(rest, rlen, "/v1/events/subscribed"))
        return R_SUBSCRIBED;
    if (is(rest, rlen, "/events"))
        return R_APP_EVENTS;
    if (is(rest, rlen, "/v2/events"))
        return R_APP_V2;
    return R_NONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size > 0 ? size : 1);
    if (path == NULL)
        return 0;
    if (size > 0)
        memcpy(path, data, size);
    static const char untouched[] = "untouched";
    const char *app = untouched;
    size_t app_len = 12345, want_len = 0;
    jb_pub_route r = jb_pub_match_route(path, size, &app, &app_len);
    jb_pub_route want = reference(path, size, &want_len);
    if (r != want)
        abort();
    bool has_app = r == R_LEGACY || r == R_SUBSCRIBED || r == R_APP_EVENTS || r == R_APP_V2;
    if (has_app && (app != path + 1 || app_len != want_len || app_len == 0 ||
                    memchr(app, '/', app_len) != NULL))
        abort();
    if (!has_app && (app != untouched || app_len != 12345))
        abort();
    if (jb_pub_route_is_ce(r) != (r == R_PUBLISH || r == R_APP_EVENTS || r == R_APP_V2))
        abort();
    free(path);
    return 0;
}
