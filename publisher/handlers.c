/*
 * The HTTP routes of one publisher thread (see pub_thread.h): health and
 * readiness, the identity checks of INGRESS_AUTH=required, and for the event
 * routes the body decoded (binary, structured, batch, legacy), validated,
 * authorized and enriched into messages that request.c publishes.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "application/jb_app.h"
#include "publisher/pub_thread.h"

/* Header views kept on the stack; a request with more headers gets an allocation. */
#define HDR_STACK 24

/* The request's headers as jb_ce_header views (libevent keeps them NUL-terminated),
 * in one walk over evhttp's list: into stack[HDR_STACK] when they fit, else into
 * *heap (malloc'd, the caller frees it). *ct is the first Content-Type value or
 * NULL, so that the caller needs no evhttp_find_header of its own. */
static jb_status collect_headers(struct evhttp_request *req, jb_ce_header *stack,
                                 jb_ce_header **heap, const jb_ce_header **out, size_t *n,
                                 const char **ct)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    size_t cnt = 0;
    for (struct evkeyval *kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next)
        cnt++;
    jb_ce_header *h = stack;
    if (cnt > HDR_STACK && (h = *heap = malloc(cnt * sizeof(*h))) == NULL)
        return JB_ERR_NOMEM;
    size_t i = 0;
    const char *c = NULL;
    for (struct evkeyval *kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next, i++) {
        size_t nl = strlen(kv->key);
        h[i] = (jb_ce_header){kv->key, nl, kv->value, strlen(kv->value)};
        if (c == NULL && nl == 12 && strcasecmp(kv->key, "Content-Type") == 0)
            c = kv->value;
    }
    *out = h;
    *n = cnt;
    if (ct != NULL)
        *ct = c;
    return JB_OK;
}

/* Moves the ce-* headers of the request (read into views already) from evhttp's
 * input list to *taken; the caller frees them with evhttp_clear_headers once the
 * views are no longer used. After the handler, libevent still looks up
 * "Connection" in the input list three times per request (keep-alive and close
 * checks), each a case-insensitive compare with every entry: a list without the
 * event's attributes makes those scans about half as long. */
static void take_ce_headers(struct evhttp_request *req, struct evkeyvalq *taken)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    TAILQ_INIT(taken);
    struct evkeyval *kv = TAILQ_FIRST(in);
    while (kv != NULL) {
        struct evkeyval *next = TAILQ_NEXT(kv, next);
        if ((kv->key[0] | 0x20) == 'c' && (kv->key[1] | 0x20) == 'e' && kv->key[2] == '-') {
            TAILQ_REMOVE(in, kv, next);
            TAILQ_INSERT_TAIL(taken, kv, next);
        }
        kv = next;
    }
}

/* A common mistake: a structured event (a JSON object with "specversion") sent
 * with content-type application/json, which CloudEvents reads as binary mode. True
 * when no ce-specversion header came and the body is such an object. */
static bool looks_structured(const jb_ce_header *h, size_t nh, const uint8_t *body, size_t len)
{
    for (size_t i = 0; i < nh; i++)
        if (h[i].name_len == 14 && strncasecmp(h[i].name, "ce-specversion", 14) == 0)
            return false;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return i < len && body[i] == '{' && memmem(body, len, "\"specversion\"", 13) != NULL;
}

/* Decodes the body by content mode into an array of events: a batch into a
 * malloc'd array, a single event into one[0] (*ces = one). A binary-mode event
 * borrows body, which outlives it (the events are destroyed before the request). */
static jb_status decode_events(jb_ce_http_mode mode, const jb_ce_header *h, size_t nh,
                               const uint8_t *body, size_t len, jb_ce *one[1], jb_ce ***ces,
                               size_t *n, jb_err *err)
{
    jb_status rc;
    one[0] = NULL;
    switch (mode) {
    case JB_CE_HTTP_BATCH_JSON:
        return jb_ce_batch_from_json((const char *)body, len, ces, n, err);
    case JB_CE_HTTP_BATCH_PROTOBUF:
        return jb_ce_batch_from_protobuf(body, len, ces, n, err);
    case JB_CE_HTTP_STRUCTURED_JSON:
        rc = jb_ce_from_json((const char *)body, len, &one[0], err);
        break;
    case JB_CE_HTTP_STRUCTURED_PROTOBUF:
        rc = jb_ce_from_protobuf(body, len, &one[0], err);
        break;
    case JB_CE_HTTP_BINARY:
        rc = jb_ce_from_http_binary_borrow(h, nh, body, len, &one[0], err);
        break;
    case JB_CE_HTTP_UNSUPPORTED:
    default:
        return jb_err_set(err, JB_ERR_UNSUPPORTED, "unsupported content type");
    }
    if (rc != JB_OK)
        return rc;
    *ces = one;
    *n = 1;
    return JB_OK;
}

/* Validates and enriches every event; fills subjects and ids. On failure err says
 * which event (batch index) and why. */
static jb_status prepare_events(const jb_pub_names *names, struct jb_app_registry *apps,
                                struct evp_md_ctx_st *md, jb_ce **ces, size_t n,
                                const jb_ce_header *h, size_t nh, char **subjects,
                                char (*ids)[JB_PUB_MSG_ID_LEN + 1], char **sent_types, bool batch,
                                jb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        jb_err e = {{0}};
        jb_status rc = jb_ce_validate(ces[i], &e);
        if (rc == JB_OK)
            rc = jb_pub_apply_tracing(ces[i], h, nh, &e);
        /* The id derives from the source as received, before enrichment. */
        size_t sl = 0, il = 0;
        const char *src = jb_ce_get(ces[i], "source", &sl);
        const char *id = jb_ce_get(ces[i], "id", &il);
        if (rc == JB_OK && src != NULL && id != NULL)
            jb_pub_msg_id_ctx(md, src, sl, id, il, NULL, ids[i]);
        if (rc == JB_OK && (sent_types[i] = strdup(jb_ce_get(ces[i], "type", NULL))) == NULL)
            rc = JB_ERR_NOMEM;
        if (rc == JB_OK)
            rc = pub_app_relabel(names, apps, ces[i]);
        if (rc == JB_OK)
            rc = jb_pub_enrich(names, ces[i], &subjects[i], &e);
        if (rc != JB_OK) {
            if (batch)
                return jb_err_set(err, rc, "event %zu: %s", i,
                                  e.msg[0] ? e.msg : jb_status_str(rc));
            return jb_err_set(err, rc, "%s", e.msg[0] ? e.msg : jb_status_str(rc));
        }
    }
    return JB_OK;
}

/* INGRESS_AUTH=required, after decoding: every event's source and type must be
 * the caller's, and the caller's rate limit must allow n more events. False when
 * the request was answered (403, 413 or 429). */
static bool check_events(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                         const jb_app *app, jb_ce *const *ces, size_t n)
{
    pub_authz *z = t->p->authz;
    const char *attr = NULL;
    size_t idx = 0;
    int retry = 0, code = pub_authz_events(app, ces, n, &attr, &idx);
    char msg[512];
    if (code != 0) {
        size_t vl = 0;
        const char *v = jb_ce_get(ces[idx], attr, &vl);
        char *esc = jb_pub_json_escape(v != NULL ? v : "", v != NULL ? vl : 0);
        char where[32] = "";
        if (n > 1)
            snprintf(where, sizeof(where), "event %zu: ", idx);
        snprintf(msg, sizeof(msg), "%s%s: \"%.200s\" is not allowed for application %s", where,
                 attr, esc != NULL ? esc : "", jb_app_name(app));
        free(esc);
        pub_authz_count(z, app, "forbidden");
    } else if ((code = pub_authz_rate(z, app, n, &retry)) != 0) {
        snprintf(msg, sizeof(msg),
                 code == 429 ? "rate limit of application %s reached"
                             : "batch larger than the rate-limit burst of "
                               "application %s",
                 jb_app_name(app));
        pub_authz_count(z, app, code == 429 ? "rate_limited" : "batch_too_large");
    } else {
        pub_authz_count(z, app, "accepted");
        return true;
    }
    char *esc = jb_pub_json_escape(msg, strlen(msg));
    char *body = NULL;
    int bl = r == R_LEGACY ? asprintf(&body, "{\"status\":%d,\"message\":\"%s\"}", code,
                                      esc != NULL ? esc : "")
                           : -1;
    pub_send_reply(t, req, r, evhttp_request_get_command(req), start,
                   (reply){.code = code,
                           .ctype = bl > 0 ? "application/json" : NULL,
                           .body = bl > 0 ? body : msg,
                           .len = bl > 0 ? (size_t)bl : strlen(msg),
                           .retry_after_s = code == 429 ? retry : 0});
    free(body);
    free(esc);
    return false;
}

static void handle_publish(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                           const uint8_t *body, size_t len, const jb_app *app)
{
    jb_ce_header hstack[HDR_STACK], *hheap = NULL;
    const jb_ce_header *h = NULL;
    const char *ct = NULL;
    size_t nh = 0, n = 0;
    jb_ce *one[1] = {NULL}, **ces = NULL;
    /* A single event (the common case) keeps its per-event arrays on the stack. */
    char *subject1[1] = {NULL}, *type1[1] = {NULL}, id1[1][JB_PUB_MSG_ID_LEN + 1];
    char **subjects = NULL, **types = NULL;
    char(*ids)[JB_PUB_MSG_ID_LEN + 1] = NULL;
    jb_err err = {{0}};
    struct evkeyvalq taken;
    jb_status rc = collect_headers(req, hstack, &hheap, &h, &nh, &ct);
    if (rc != JB_OK) {
        pub_send_text(t, req, r, start, 500, "out of memory");
        return;
    }
    take_ce_headers(req, &taken);
    jb_ce_http_mode mode = jb_ce_http_detect(ct, ct != NULL ? strlen(ct) : 0);
    if (mode == JB_CE_HTTP_UNSUPPORTED) {
        pub_send_text(t, req, r, start, 415,
                      "unsupported structured format: use application/cloudevents+json, "
                      "application/cloudevents-batch+json, application/cloudevents+protobuf or "
                      "application/cloudevents-batch+protobuf");
        goto done;
    }
    rc = decode_events(mode, h, nh, body, len, one, &ces, &n, &err);
    bool batch = mode == JB_CE_HTTP_BATCH_JSON || mode == JB_CE_HTTP_BATCH_PROTOBUF;
    if (rc == JB_OK && n == 0) {
        pub_send_text(t, req, r, start, 204, "");
        goto done;
    }
    if (rc == JB_OK && app != NULL && !check_events(t, req, r, start, app, ces, n))
        goto done;
    if (rc == JB_OK && ces == one) {
        subjects = subject1;
        types = type1;
        ids = id1;
        memset(id1, 0, sizeof(id1));
    } else if (rc == JB_OK) {
        subjects = calloc(n, sizeof(*subjects));
        ids = calloc(n, sizeof(*ids));
        types = calloc(n, sizeof(*types));
        if (subjects == NULL || ids == NULL || types == NULL)
            rc = JB_ERR_NOMEM;
    }
    if (rc == JB_OK)
        rc = prepare_events(&t->p->names, t->p->apps, t->md, ces, n, h, nh, subjects, ids, types,
                            batch, &err);
    if (rc == JB_ERR_NOMEM) {
        pub_send_text(t, req, r, start, 500, "out of memory");
    } else if (rc != JB_OK && mode == JB_CE_HTTP_BINARY && looks_structured(h, nh, body, len)) {
        pub_send_text(t, req, r, start, 400,
                      "the body looks like a structured CloudEvent (JSON with specversion), but "
                      "without content-type application/cloudevents+json the request is binary "
                      "mode: attributes in ce-* headers, the body is the data. Send it with "
                      "content-type: application/cloudevents+json");
    } else if (rc != JB_OK) {
        pub_send_text(t, req, r, start, 400, err.msg[0] ? err.msg : jb_status_str(rc));
    } else {
        pub_req *pr = pub_req_new(t, req, r, n, start);
        if (pr == NULL)
            pub_send_text(t, req, r, start, 500, "out of memory");
        else
            pub_submit(t, pr, ces, subjects, ids, types);
    }
done:
    for (size_t i = 0; i < n; i++) {
        free(subjects != NULL ? subjects[i] : NULL);
        free(types != NULL ? types[i] : NULL);
    }
    if (subjects != subject1) {
        free(subjects);
        free(types);
        free(ids);
    }
    if (ces == one)
        jb_ce_destroy(one[0]);
    else if (ces != NULL)
        jb_ce_batch_free(ces, n);
    free(hheap);
    evhttp_clear_headers(&taken);
}

static void legacy_error(pub_thread *t, struct evhttp_request *req, int64_t start, int code,
                         const char *msg)
{
    char *esc = jb_pub_json_escape(msg, strlen(msg));
    char *body = NULL;
    int n = asprintf(&body, "{\"status\":%d,\"message\":\"%s\"}", code, esc ? esc : "");
    pub_send_reply(t, req, R_LEGACY, evhttp_request_get_command(req), start,
                   (reply){.code = code,
                           .ctype = "application/json",
                           .body = body ? body : "",
                           .len = n > 0 ? (size_t)n : 0});
    free(body);
    free(esc);
}

static void handle_legacy(pub_thread *t, struct evhttp_request *req, int64_t start, const char *app,
                          size_t app_len, const uint8_t *body, size_t len, const jb_app *caller)
{
    jb_pub_legacy lg;
    jb_ce *ces[2] = {NULL, NULL};
    char *subjects[2] = {NULL, NULL};
    char *types[2] = {NULL, NULL}; /* as sent, for the metric */
    char ids[2][JB_PUB_MSG_ID_LEN + 1];
    jb_err err = {{0}};
    jb_ce_header hstack[HDR_STACK], *hheap = NULL;
    const jb_ce_header *h = NULL;
    size_t nh = 0, n = 1;
    const jb_app *known = NULL;
    if (jb_pub_legacy_parse(app, app_len, (const char *)body, len, &lg) != JB_OK) {
        legacy_error(t, req, start, 500, "out of memory");
        return;
    }
    if (lg.status != 0) {
        pub_send_reply(t, req, R_LEGACY, evhttp_request_get_command(req), start,
                       (reply){.code = lg.status,
                               .ctype = "application/json",
                               .body = lg.err_body,
                               .len = lg.err_len});
        jb_pub_legacy_free(&lg);
        return;
    }
    ces[0] = lg.ce;
    lg.ce = NULL;
    if (caller != NULL && !check_events(t, req, R_LEGACY, start, caller, ces, 1))
        goto done;
    /* The application segment becomes the source: it must be a URI reference. */
    jb_status rc = jb_ce_validate(ces[0], &err);
    if (rc == JB_OK)
        rc = collect_headers(req, hstack, &hheap, &h, &nh, NULL);
    if (rc == JB_OK)
        rc = jb_pub_apply_tracing(ces[0], h, nh, &err);
    /* A known application's application-type label replaces its name in both copies
     * (ce-source stays as sent). */
    known = jb_app_registry_find(t->p->apps, app, app_len);
    const char *cname = known ? jb_app_clean_name(known) : app;
    size_t clen = known ? strlen(cname) : app_len;
    /* The prefixed copy is built from the type as received, before enrichment. */
    if (rc == JB_OK) {
        rc = jb_pub_legacy_prefixed_copy(&t->p->names, ces[0], cname, clen, &ces[1], &subjects[1],
                                         &err);
        if (rc == JB_OK)
            n = 2;
        else if (rc == JB_ERR_NOT_FOUND)
            rc = JB_OK;
    }
    /* The metric counts the event once, with "<event-type>.<version>" as sent. */
    if (rc == JB_OK && (types[0] = strdup(jb_ce_get(ces[0], "type", NULL))) == NULL)
        rc = JB_ERR_NOMEM;
    if (rc == JB_OK)
        rc = known ? pub_enrich_as_source(&t->p->names, ces[0], cname, clen, &subjects[0], &err)
                   : jb_pub_enrich(&t->p->names, ces[0], &subjects[0], &err);
    if (rc != JB_OK) {
        legacy_error(t, req, start, rc == JB_ERR_NOMEM ? 500 : 400,
                     err.msg[0] ? err.msg : jb_status_str(rc));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t sl = 0, il = 0;
        const char *src = jb_ce_get(ces[i], "source", &sl);
        const char *id = jb_ce_get(ces[i], "id", &il);
        jb_pub_msg_id_ctx(t->md, src, sl, id, il, subjects[i], ids[i]);
    }
    pub_req *pr = pub_req_new(t, req, R_LEGACY, n, start);
    if (pr == NULL) {
        legacy_error(t, req, start, 500, "out of memory");
        goto done;
    }
    snprintf(pr->id, sizeof(pr->id), "%s", lg.id);
    pub_submit(t, pr, ces, subjects, ids, types);
done:
    for (size_t i = 0; i < 2; i++) {
        jb_ce_destroy(ces[i]);
        free(subjects[i]);
        free(types[i]);
    }
    free(hheap);
    jb_app_release(known);
    jb_pub_legacy_free(&lg);
}

static void handle_subscribed(pub_thread *t, struct evhttp_request *req, int64_t start,
                              const char *app, size_t app_len)
{
    if (app_len >= PUB_APP_MAX) {
        pub_send_reply(t, req, R_SUBSCRIBED, evhttp_request_get_command(req), start,
                       (reply){.code = 200,
                               .ctype = "application/json",
                               .body = "{\"eventsInfo\":[]}",
                               .len = 17});
        return;
    }
    pub_req *pr = pub_req_new(t, req, R_SUBSCRIBED, 0, start);
    if (pr == NULL) {
        pub_send_text(t, req, R_SUBSCRIBED, start, 500, "out of memory");
        return;
    }
    if (!pub_ctl_submit(t->p, t, pr, app, app_len)) {
        pub_req_free(pr);
        pub_reject(t, req, R_SUBSCRIBED, start, "control_queue_full", 503,
                   "publisher busy, retry later");
        return;
    }
    t->pending_ctl++;
}

static bool authorize(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                      const char *app, size_t app_len, const jb_app **caller);
static void handle_body(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                        const char *app, size_t app_len, const jb_app *caller);

void pub_on_request(struct evhttp_request *req, void *arg)
{
    pub_thread *t = arg;
    int64_t start = jb_now_monotonic_ns();
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strcspn(uri, "?#");
    const char *app = NULL;
    size_t app_len = 0;
    jb_pub_route r = jb_pub_match_route(uri, plen, &app, &app_len);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool is_get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    bool post_route = jb_pub_route_is_ce(r) || r == R_LEGACY;
    if (r == R_NONE) {
        pub_send_text(t, req, R_NONE, start, 404, "not found");
        return;
    }
    if (post_route ? m != EVHTTP_REQ_POST : !is_get) {
        pub_send_reply(t, req, r, m, start,
                       (reply){.code = 405,
                               .body = "method not allowed",
                               .len = 18,
                               .allow = post_route ? "POST" : "GET, HEAD"});
        return;
    }
    if (r == R_HEALTHZ) {
        pub_send_text(t, req, r, start, 200, "ok");
        return;
    }
    if (r == R_READYZ) {
        bool ok = jb_pub_ready(t->p);
        pub_send_text(t, req, r, start, ok ? 200 : 503, ok ? "ready" : "not ready");
        return;
    }
    const jb_app *caller = NULL;
    if (t->p->authz != NULL && !authorize(t, req, r, start, app, app_len, &caller))
        return;
    if (r == R_SUBSCRIBED) {
        handle_subscribed(t, req, start, app, app_len);
        jb_app_release(caller);
        return;
    }
    handle_body(t, req, r, start, app, app_len, caller);
    jb_app_release(caller);
}

/* INGRESS_AUTH=required: identifies the caller and checks the path's application.
 * False when the request was answered (401, 403, 404 or 503). */
static bool authorize(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                      const char *app, size_t app_len, const jb_app **caller)
{
    pub_authz *z = t->p->authz;
    const jb_app *a = NULL;
    int code = pub_authz_identify(z, req, &a);
    if (code == 0 && r != R_PUBLISH) {
        code = pub_authz_path(z, a, app, app_len);
        if (code == 403) {
            pub_authz_count(z, a, "forbidden");
            pub_send_reply(t, req, r, evhttp_request_get_command(req), start,
                           (reply){.code = 403,
                                   .ctype = "application/json",
                                   .body = PUB_AUTHZ_PATH_BODY,
                                   .len = strlen(PUB_AUTHZ_PATH_BODY)});
            jb_app_release(a);
            return false;
        }
        if (code != 0)
            jb_app_release(a);
    }
    if (code == 0) {
        *caller = a;
        return true;
    }
    pub_authz_count(z, NULL, code == 401 ? "unauthenticated" : "unknown_application");
    const char *text = code == 401   ? "missing or invalid credentials"
                       : code == 404 ? "unknown application"
                                     : "application registry not loaded yet, retry later";
    pub_send_reply(t, req, r, evhttp_request_get_command(req), start,
                   (reply){.code = code,
                           .body = text,
                           .len = strlen(text),
                           .retry_after = code == 503,
                           .www_auth = code == 401 ? "Bearer" : NULL});
    return false;
}

/* POST /publish and /{application}/v1/events: the body, then its handler. */
static void handle_body(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                        const char *app, size_t app_len, const jb_app *caller)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if ((int64_t)len > t->p->cfg->max_request_size) {
        const char *lb = jb_pub_legacy_too_large_body();
        pub_send_reply(t, req, r, m, start,
                       (reply){.code = 413,
                               .ctype = r == R_LEGACY ? "application/json" : NULL,
                               .body = r == R_LEGACY ? lb : "request body too large",
                               .len = r == R_LEGACY ? strlen(lb) : 22});
        return;
    }
    const uint8_t *body = len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (body == NULL) {
        pub_send_text(t, req, r, start, 500, "out of memory");
        return;
    }
    if (jb_pub_route_is_ce(r))
        handle_publish(t, req, r, start, body, len, caller);
    else
        handle_legacy(t, req, start, app, app_len, body, len, caller);
}
