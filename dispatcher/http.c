/* libcurl multi on a libevent loop (curl_multi_socket_action): curl tells us which
 * sockets to watch and when its timer is due; we tell curl when a socket is ready.
 * Nothing here blocks, and one multi handle keeps a cache of open connections, so
 * requests to the same sink reuse them. */
#include <curl/curl.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "dispatcher/disp_http.h"
#include "dispatcher/disp_internal.h"
#include "dispatcher/disp_list.h"
#include "dispatcher/jb_disp.h"

/* One watched socket. A connection socket (conn) keeps its event while curl's
 * connection cache holds it (watched false): reusing the connection then costs no
 * epoll_ctl and no allocation. It is freed when curl closes the socket. */
typedef struct sock_ctx {
    jb_dhttp *h;
    struct event *ev;
    curl_socket_t fd;
    short kind;   /* EV_READ / EV_WRITE of the event as added */
    bool added;   /* the event is added to the loop */
    bool watched; /* curl wants to hear about it */
    bool conn;    /* a connection socket: its close is seen (close_socket_cb) */
} sock_ctx;

static void check_done(jb_dhttp *h);
static void conn_options(jb_dhttp *h, CURL *e);
static void complete(jb_dhttp_req *r, const jb_dhttp_result *res);

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    sock_ctx *sc = arg;
    jb_dhttp *h = sc->h;
    if (!sc->watched) {
        /* Idle in curl's cache and readable (the sink closed it): stop watching
         * until curl reuses it, which checks the connection itself. */
        event_del(sc->ev);
        sc->added = false;
        return;
    }
    int flags = 0;
    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dhttp *h = arg;
    int running = 0;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static sock_ctx *table_get(jb_dhttp *h, curl_socket_t s)
{
    return s >= 0 && (size_t)s < h->nsocks ? h->socks[s] : NULL;
}

/* Remembers sc under its descriptor; false when the table cannot hold it. */
static bool table_put(jb_dhttp *h, sock_ctx *sc)
{
    size_t fd = (size_t)sc->fd;
    if (sc->fd < 0 || fd >= SOCK_TABLE_MAX)
        return false;
    if (fd >= h->nsocks) {
        size_t n = h->nsocks > 0 ? h->nsocks : 64;
        while (n <= fd)
            n *= 2;
        sock_ctx **t = realloc(h->socks, n * sizeof(*t));
        if (t == NULL)
            return false;
        memset(t + h->nsocks, 0, (n - h->nsocks) * sizeof(*t));
        h->socks = t;
        h->nsocks = n;
    }
    h->socks[fd] = sc;
    return true;
}

static void sock_free(jb_dhttp *h, sock_ctx *sc)
{
    if (table_get(h, sc->fd) == sc)
        h->socks[sc->fd] = NULL;
    event_free(sc->ev);
    free(sc);
}

static sock_ctx *sock_new(jb_dhttp *h, curl_socket_t s)
{
    sock_ctx *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return NULL;
    sc->h = h;
    sc->fd = s;
    sc->ev = event_new(h->base, s, EV_PERSIST, on_socket_event, sc);
    if (sc->ev == NULL) {
        free(sc);
        return NULL;
    }
    return sc;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    jb_dhttp *h = userp;
    sock_ctx *sc = socketp != NULL ? socketp : table_get(h, s);
    if (what == CURL_POLL_REMOVE) {
        if (sc == NULL)
            return 0;
        curl_multi_assign(h->multi, s, NULL);
        sc->watched = false;
        /* A connection socket stays registered (it may be reused); any other is
         * done with. */
        if (!sc->conn)
            sock_free(h, sc);
        return 0;
    }
    short kind = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        kind |= EV_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        kind |= EV_WRITE;
    if (sc == NULL) {
        sc = sock_new(h, s);
        if (sc == NULL)
            return -1;
        table_put(h, sc); /* a socket curl does not close through us is freed at REMOVE */
    }
    curl_multi_assign(h->multi, s, sc);
    sc->watched = true;
    if (sc->added && sc->kind == kind)
        return 0; /* reused with the same interest: nothing to change */
    if (sc->added)
        event_del(sc->ev);
    /* Re-arm the same event: no allocation per change of interest. */
    event_assign(sc->ev, h->base, s, (short)(kind | EV_PERSIST), on_socket_event, sc);
    sc->added = event_add(sc->ev, NULL) == 0;
    sc->kind = kind;
    return sc->added ? 0 : -1;
}

/* A new connection socket (every socket curl connects with passes here): its close
 * will be seen by close_socket_cb, so it may stay registered between uses. */
static int sockopt_cb(void *clientp, curl_socket_t s, curlsocktype purpose)
{
    jb_dhttp *h = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKOPT_OK;
    /* A brand-new descriptor: an entry under its number is left from a socket
     * closed behind our back, and its registration is gone with it. */
    sock_ctx *sc = table_get(h, s);
    if (sc != NULL)
        sock_free(h, sc);
    sc = sock_new(h, s);
    if (sc != NULL && !table_put(h, sc)) {
        event_free(sc->ev);
        free(sc);
        sc = NULL;
    }
    if (sc != NULL)
        sc->conn = true;
    return CURL_SOCKOPT_OK;
}

static int close_socket_cb(void *clientp, curl_socket_t s)
{
    jb_dhttp *h = clientp;
    sock_ctx *sc = table_get(h, s);
    if (sc != NULL)
        sock_free(h, sc); /* event_free deletes the event before the descriptor goes */
    return close(s);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    jb_dhttp *h = userp;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    /* Even a 0 timeout goes through the loop: calling socket_action from inside
     * this callback would re-enter curl. */
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(h->timer, &tv);
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    jb_dhttp_req *r = ud;
    if (r->capture != NULL)
        return jb_capbuf_append(ptr, size, nmemb, r->capture);
    size_t n = size * nmemb;
    size_t room = sizeof(r->body) - r->body_len;
    size_t take = n < room ? n : room;
    memcpy(r->body + r->body_len, ptr, take);
    r->body_len += take;
    return n; /* the rest is read and dropped: the body cap is ours, not an error */
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    jb_dhttp_req *r = ud;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        int64_t ms;
        if (jb_disp_parse_retry_after(buf + sizeof(name) - 1, n - (sizeof(name) - 1),
                                      jb_now_wall_ms(), &ms))
            r->retry_after_ms = ms;
    } else if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous one. */
        r->retry_after_ms = -1;
        r->body_len = 0;
    }
    return n;
}

/* Frees r and its handle for good. */
static void req_destroy(jb_dhttp_req *r)
{
    if (r->timer != NULL)
        event_free(r->timer);
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_url_cleanup(r->uh);
    free(r->url);
    free(r);
}

/* r (not in the active list, not in the multi handle) back to the pool. A handle
 * whose request set an option the others do not (a client certificate) is reset:
 * curl_easy_reset frees and re-makes its defaults, so it is not done otherwise. */
static void req_release(jb_dhttp *h, jb_dhttp_req *r, bool reset)
{
    r->headers = NULL; /* borrowed */
    if (h->nfree_req >= FREE_REQ_MAX || r->easy == NULL) {
        req_destroy(r);
        return;
    }
    if (reset) {
        curl_easy_reset(r->easy);
        r->ready = false;
        free(r->url);
        r->url = NULL;
        r->url_cap = 0;
    }
    h->free_req[h->nfree_req++] = r;
}

static void req_free(jb_dhttp_req *r)
{
    jb_dhttp *h = r->h;
    jb_dlist_unlink(&h->reqs, &r->link);
    if (r->conn != NULL)
        jb_h1_abort(r);
    else
        curl_multi_remove_handle(h->multi, r->easy);
    h->active--;
    req_release(h, r, r->cert_set);
}

static void finish(jb_dhttp_req *r, CURLcode code)
{
    jb_dhttp_result res = {0};
    long status = 0;
    if (code == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    res.status = (int)status;
    res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    res.error = code == CURLE_OK ? "" : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
    res.refused = code != CURLE_OK && r->guard.refused;
    if (res.refused)
        res.error = r->guard.why;
    res.retry_after_ms = r->retry_after_ms;
    res.body = r->body;
    res.body_len = r->body_len;
    res.seconds = (double)(jb_now_monotonic_ns() - r->start_ns) / 1e9;
    /* The result points into r: call back first, free after. */
    complete(r, &res);
}

static void check_done(jb_dhttp *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        jb_dhttp_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r != NULL && r->conn != NULL)
            jb_h1_connected(r, m->data.result); /* the lane's connection is open (or not) */
        else if (r != NULL)
            finish(r, m->data.result);
    }
}

jb_dhttp *jb_dhttp_create(struct event_base *base, long max_idle, const jb_dguard *guard)
{
    jb_dhttp *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->base = base;
    h->guard = guard;
    h->max_idle = (size_t)(max_idle > 0 ? max_idle : 64);
    h->conn_options = conn_options;
    h->complete = complete;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, on_timer, h);
    if (h->multi == NULL || h->timer == NULL) {
        jb_dhttp_destroy(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, max_idle > 0 ? max_idle : 64);
    return h;
}

void jb_dhttp_destroy(jb_dhttp *h)
{
    if (h == NULL)
        return;
    /* Cancel whatever is still running; its owner was told to stop already. */
    while (h->reqs.head != NULL)
        req_free(JB_DLIST_ENTRY(h->reqs.head, jb_dhttp_req, link));
    for (size_t i = 0; i < h->nfree_req; i++)
        req_destroy(h->free_req[i]);
    jb_h1_close_idle(h);
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi); /* closes the cached connections: their sockets go */
    for (size_t i = 0; i < h->nsocks; i++)
        if (h->socks[i] != NULL)
            sock_free(h, h->socks[i]);
    free(h->socks);
    if (h->timer != NULL)
        event_free(h->timer);
    free(h);
}

/* The options that are the same for every request on r's handle. */
static void set_fixed_options(jb_dhttp_req *r)
{
    CURL *e = r->easy;
    jb_dguard_apply(&r->guard, e);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, r->h);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r->h);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    r->ready = true;
}

/* The URL, unless the handle has it already (curl copies and frees it on every
 * setopt). false when out of memory. */
static bool set_url(jb_dhttp_req *r, const char *url)
{
    if (r->url != NULL && strcmp(r->url, url) == 0)
        return true;
    size_t n = strlen(url) + 1;
    if (n > r->url_cap) {
        char *u = realloc(r->url, n);
        if (u == NULL)
            return false;
        r->url = u;
        r->url_cap = n;
    }
    r->url[0] = '\0'; /* no longer known to match until set */
    if (r->uh == NULL)
        r->uh = curl_url();
    /* curl's own flags for a URL given as a string. A URL it cannot parse is set
     * only as the string: the transfer then fails as it always did. */
    bool parsed =
        r->uh != NULL && curl_url_set(r->uh, CURLUPART_URL, url,
                                      CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK;
    /* Both: the string is what curl reports and logs, the handle what it connects to. */
    if (curl_easy_setopt(r->easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_CURLU, parsed ? r->uh : NULL) != CURLE_OK)
        return false;
    if (parsed)
        memcpy(r->url, url, n);
    return true;
}

static bool set_options(jb_dhttp_req *r, const char *url, const void *body, size_t len,
                        int64_t timeout_ms)
{
    CURL *e = r->easy;
    /* The record's per-request part was cleared (no verdict yet); the guard's
     * callback keeps reading this record, so it learns the guard again. */
    r->guard.guard = r->h->guard;
    if (!r->ready)
        set_fixed_options(r);
    if (!set_url(r, url))
        return false;
    /* A NULL body would make curl read the request body from stdin. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 30000));
    r->capture = r->h->capture;
    if (r->h->cert != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, r->h->cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, r->h->key);
        r->cert_set = true;
    }
    return true;
}

void jb_dhttp_capture(jb_dhttp *h, jb_capbuf *into)
{
    h->capture = into;
}

void jb_dhttp_client_cert(jb_dhttp *h, const char *cert_file, const char *key_file)
{
    h->cert = cert_file;
    h->key = key_file;
}

/* A record with its handle: from the pool, else new (ready false). */
static jb_dhttp_req *req_get(jb_dhttp *h)
{
    if (h->nfree_req > 0)
        return h->free_req[--h->nfree_req];
    jb_dhttp_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

jb_status jb_dhttp_post(jb_dhttp *h, const char *url, struct curl_slist *headers, const void *body,
                        size_t len, int64_t timeout_ms, jb_dhttp_done_fn done, void *ud,
                        jb_dhttp_req **out)
{
    jb_status st = JB_ERR_NOMEM;
    jb_dhttp_req *r = req_get(h);
    if (r == NULL)
        goto out;
    /* Only the per-request part: body and errbuf are written before they are
     * read, and what follows them is kept with the handle. */
    memset(r, 0, offsetof(jb_dhttp_req, body));
    r->errbuf[0] = '\0';
    r->h = h;
    r->headers = headers;
    r->done = done;
    r->ud = ud;
    r->retry_after_ms = -1;
    r->start_ns = jb_now_monotonic_ns();
    st = jb_h1_takes(h, url) ? jb_h1_start(r, url, body, len, timeout_ms) : JB_ERR_UNSUPPORTED;
    if (st != JB_OK && st != JB_ERR_UNSUPPORTED)
        goto out;
    if (st == JB_ERR_UNSUPPORTED) {
        st = JB_ERR_NOMEM;
        if (!set_options(r, url, body, len, timeout_ms))
            goto out;
        if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
            st = JB_ERR_INTERNAL;
            goto out;
        }
    }
    h->active++;
    jb_dlist_append(&h->reqs, &r->link);
    if (out != NULL)
        *out = r;
    r = NULL;
    st = JB_OK;
out:
    h->cert = h->key = NULL;
    h->capture = NULL;
    if (r != NULL)
        req_release(h, r, true);
    return st;
}

void jb_dhttp_builtin(jb_dhttp *h, bool on)
{
    h->h1_off = !on;
}

static void conn_options(jb_dhttp *h, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, h);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
}

static void complete(jb_dhttp_req *r, const jb_dhttp_result *res)
{
    jb_dhttp_done_fn done = r->done;
    void *ud = r->ud;
    done(ud, res);
    req_free(r);
}

void jb_dhttp_cancel(jb_dhttp *h, jb_dhttp_req *r)
{
    (void)h;
    req_free(r);
}

size_t jb_dhttp_active(const jb_dhttp *h)
{
    return h->active;
}
