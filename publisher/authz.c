/*
 * Who may publish (see pub_authz.h). Rate limits are pub_rate's token buckets
 * (publisher/ratelimit.c), at most PUB_RATE_BUCKETS_MAX of them.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "application/jb_app.h"
#include "auth/jb_auth.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "proto/jb_ce.h"
#include "publisher/pub_authz.h"
#include "publisher/pub_rate.h"
#include "publisher/pub_tls.h"

#define NAME_MAX_LEN 254

struct pub_authz {
    const jb_cfg *cfg;
    jb_auth_source *jwks; /* NULL: JWTs are not accepted */
    _Atomic(jb_app_registry *) reg;
    jb_metric *auth_total; /* jetbridge_publisher_auth_total{application,result} */
    pub_rate *rate;        /* the applications' token buckets */
};

jb_status pub_authz_create(const jb_cfg *cfg, jb_metrics *metrics, pub_authz **out, jb_err *err)
{
    if (strcmp(cfg->ingress_auth, "required") != 0) {
        *out = NULL;
        return JB_OK;
    }
    pub_authz *z = calloc(1, sizeof(*z));
    if (z != NULL)
        z->rate = pub_rate_create(PUB_RATE_BUCKETS_MAX);
    if (z == NULL || z->rate == NULL) {
        free(z);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    z->cfg = cfg;
    if (cfg->ingress_jwks[0] != '\0') {
        jb_status rc =
            jb_auth_source_create(cfg->ingress_jwks, cfg->ingress_jwks_ca, &z->jwks, err);
        if (rc != JB_OK) {
            pub_authz_destroy(z);
            return rc;
        }
    }
    static const char *const labels[] = {"application", "result"};
    z->auth_total = jb_metrics_counter(
        metrics, "jetbridge_publisher_auth_total",
        "Requests by identified application and outcome (accepted, forbidden, rate_limited, "
        "unauthenticated, unknown_application)",
        2, labels);
    *out = z;
    return JB_OK;
}

void pub_authz_destroy(pub_authz *z)
{
    if (z == NULL)
        return;
    jb_auth_source_destroy(z->jwks);
    pub_rate_destroy(z->rate);
    free(z);
}

void pub_authz_set_registry(pub_authz *z, jb_app_registry *r)
{
    atomic_store(&z->reg, r);
}

void pub_authz_refresh(pub_authz *z)
{
    if (z != NULL)
        jb_auth_source_refresh(z->jwks);
}

/* A JWT: verified, then its application claim looked up. 401 or 404 on failure. */
static int identify_jwt(pub_authz *z, jb_app_registry *r, const char *tok, size_t len,
                        const jb_app **out)
{
    jb_auth_jwks *keys = jb_auth_source_get(z->jwks);
    if (keys == NULL)
        return 401;
    char name[NAME_MAX_LEN];
    size_t nl = 0;
    jb_auth_rules rules = {z->cfg->ingress_jwt_issuer, z->cfg->ingress_jwt_audience,
                           z->cfg->ingress_jwt_app_claim, jb_now_wall_ms() / 1000};
    jb_auth_result res = jb_auth_jwt_verify(keys, tok, len, &rules, name, sizeof(name), &nl);
    jb_auth_jwks_unref(keys);
    if (res == JB_AUTH_UNKNOWN_KID)
        jb_auth_source_kid_missed(z->jwks);
    if (res != JB_AUTH_OK)
        return 401;
    *out = jb_app_registry_find(r, name, nl);
    return *out != NULL ? 0 : 404;
}

void pub_authz_count(pub_authz *z, const jb_app *app, const char *result)
{
    const char *labels[] = {app != NULL ? jb_app_name(app) : "", result};
    jb_metric_add(z->auth_total, labels, 1);
}

int pub_authz_identify(pub_authz *z, struct evhttp_request *req, const jb_app **app)
{
    jb_app_registry *r = atomic_load(&z->reg);
    if (r == NULL || !jb_app_registry_loaded(r))
        return 503;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const jb_app *a = NULL;
    if (h != NULL) {
        /* A credential that is sent must be good: no falling back to the certificate. */
        if (strncasecmp(h, "Bearer ", 7) != 0)
            return 401;
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        if (len == 0 || len > JB_AUTH_JWT_MAX)
            return 401;
        if (z->jwks != NULL && jb_auth_looks_like_jwt(tok, len))
            return identify_jwt(z, r, tok, len, app);
        a = jb_app_registry_find_by_token(r, tok, len);
        if (a == NULL)
            return 401;
    } else {
        char cn[NAME_MAX_LEN];
        size_t cl = 0;
        if (!pub_tls_peer_cn(req, cn, sizeof(cn), &cl))
            return 401;
        a = jb_app_registry_find_by_client_id(r, cn, cl);
        if (a == NULL)
            return 404;
    }
    *app = a;
    return 0;
}

int pub_authz_path(pub_authz *z, const jb_app *app, const char *path_app, size_t len)
{
    const char *name = jb_app_name(app);
    if (strlen(name) == len && memcmp(name, path_app, len) == 0)
        return 0;
    const jb_app *other = jb_app_registry_find(atomic_load(&z->reg), path_app, len);
    if (other == NULL)
        return 404;
    jb_app_release(other);
    return 403;
}

static bool source_allowed(const jb_app *app, const char *s, size_t len)
{
    const char *name = jb_app_name(app);
    if (strlen(name) == len && memcmp(name, s, len) == 0)
        return true;
    for (size_t i = 0; i < jb_app_allowed_source_count(app); i++) {
        const char *a = jb_app_allowed_source(app, i);
        if (strlen(a) == len && memcmp(a, s, len) == 0)
            return true;
    }
    return false;
}

static bool type_allowed(const jb_app *app, const char *t, size_t len)
{
    size_t n = jb_app_allowed_type_count(app);
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        const char *p = jb_app_allowed_type(app, i);
        size_t pl = strlen(p);
        if (pl <= len && memcmp(p, t, pl) == 0)
            return true;
    }
    return false;
}

int pub_authz_events(const jb_app *app, jb_ce *const *ces, size_t n, const char **attr,
                     size_t *index)
{
    for (size_t i = 0; i < n; i++) {
        size_t sl = 0, tl = 0;
        const char *s = jb_ce_get(ces[i], "source", &sl);
        const char *t = jb_ce_get(ces[i], "type", &tl);
        if (s == NULL || !source_allowed(app, s, sl)) {
            *attr = "source";
            *index = i;
            return 403;
        }
        if (t == NULL || !type_allowed(app, t, tl)) {
            *attr = "type";
            *index = i;
            return 403;
        }
    }
    return 0;
}

int pub_authz_rate(pub_authz *z, const jb_app *app, size_t n, int *retry_after)
{
    double rate = 0;
    uint32_t burst = 0;
    if (!jb_app_rate_limit(app, &rate, &burst) || !(rate > 0))
        return 0;
    const char *name = jb_app_name(app);
    return pub_rate_take(z->rate, name, strlen(name), rate, burst, n, jb_now_monotonic_ns(),
                         retry_after);
}
