/*
 * The NATS connection every command uses: options from the configuration,
 * reconnect forever by default, callbacks that log state changes, and a JetStream
 * context. This is the only file that includes nats.c's libevent adapter: the
 * adapter header defines non-static functions, so a second include would clash
 * at link time.
 */
#include <nats/adapters/libevent.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

/* Published data buffered while reconnecting: bounded, publishes fail beyond it
 * (and the publisher answers 502/503) instead of growing memory. */
#define RECONNECT_BUF_BYTES (8 * 1024 * 1024)
/* A dead server is noticed after PING_INTERVAL_MS * MAX_PINGS_OUT at most. */
#define PING_INTERVAL_MS   10000
#define MAX_PINGS_OUT      3
#define CONNECT_TIMEOUT_MS 5000

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void threads_init(void)
{
    /* evthread_use_pthreads: event bases created afterwards have locks, which the
     * adapter needs because nats.c calls it from its own threads. */
    natsLibevent_Init();
}

void jb_event_threads_init(void)
{
    pthread_once(&threads_once, threads_init);
}

static void log_conn(jb_log_level lvl, natsConnection *nc, const char *msg)
{
    char url[256] = "";
    const char *last = NULL;
    if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
        url[0] = '\0';
    (void)natsConnection_GetLastError(nc, &last);
    char *shown = jb_redact_url(url);
    jb_log(lvl, "nats", msg, "url", shown ? shown : "", "last_error", last ? last : "",
           (char *)NULL);
    free(shown);
}

static void on_connected(natsConnection *nc, void *closure)
{
    log_conn(JB_LOG_INFO, nc, "connected");
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    /* A close we asked for is not worth a warning. */
    if (natsConnection_IsClosed(nc))
        log_conn(JB_LOG_DEBUG, nc, "disconnected");
    else
        log_conn(JB_LOG_WARN, nc, "disconnected");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    log_conn(JB_LOG_INFO, nc, "reconnected");
}

static void on_closed(natsConnection *nc, void *closure)
{
    log_conn(JB_LOG_INFO, nc, "connection closed");
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    const char *subj = sub != NULL ? natsSubscription_GetSubject(sub) : NULL;
    jb_log(JB_LOG_ERROR, "nats", "asynchronous error", "error", natsStatus_GetText(s), "subject",
           subj ? subj : "", (char *)NULL);
}

/* At most this many servers in a comma-separated NATS_URL. */
#define MAX_SERVERS 32

/* NATS_URL is one URL or a comma-separated list (a cluster's seed nodes):
 * natsOptions_SetURL takes only one, natsOptions_SetServers the list. */
static natsStatus set_servers(natsOptions *o, const char *urls)
{
    if (strchr(urls, ',') == NULL)
        return natsOptions_SetURL(o, urls);
    char *copy = strdup(urls);
    if (copy == NULL)
        return NATS_NO_MEMORY;
    const char *list[MAX_SERVERS];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL && n < MAX_SERVERS;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len > 0 && t[len - 1] == ' ')
            t[--len] = '\0';
        if (len > 0)
            list[n++] = t;
    }
    natsStatus s = n > 0 ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
    free(copy);
    return s;
}

/* True when any server of NATS_URL is a tls:// URL: then the connection must be
 * TLS (nats.c would otherwise upgrade only if the server asks for it, and a
 * server that does not would get the credentials in plain text). */
static bool wants_tls(const jb_nats_opts *no)
{
    return strstr(no->url, "tls://") != NULL || no->tls_ca[0] != '\0' || no->tls_cert[0] != '\0';
}

/* Sets TLS and the credentials of the configuration. Errors name the key. */
static jb_status set_tls(natsOptions *o, const jb_nats_opts *no, jb_err *err)
{
    if (!wants_tls(no))
        return JB_OK;
    if ((no->tls_cert[0] == '\0') != (no->tls_key[0] == '\0'))
        return jb_err_set(err, JB_ERR_CONFIG, "NATS_TLS_CERT and NATS_TLS_KEY go together");
    natsStatus s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && no->tls_ca[0] != '\0' &&
        (s = natsOptions_LoadCATrustedCertificates(o, no->tls_ca)) != NATS_OK)
        return jb_err_set(err, JB_ERR_CONFIG, "NATS_TLS_CA: cannot load %s: %s", no->tls_ca,
                          nats_GetLastError(NULL));
    if (s == NATS_OK && no->tls_cert[0] != '\0' &&
        (s = natsOptions_LoadCertificatesChain(o, no->tls_cert, no->tls_key)) != NATS_OK)
        return jb_err_set(err, JB_ERR_CONFIG, "NATS_TLS_CERT/NATS_TLS_KEY: cannot load %s: %s",
                          no->tls_cert, nats_GetLastError(NULL));
    if (s != NATS_OK)
        return jb_err_set(err, JB_ERR_CONFIG, "NATS TLS: %s", natsStatus_GetText(s));
    return JB_OK;
}

static jb_status set_nkey(natsOptions *o, const char *file, jb_err *err)
{
    char *seed = NULL;
    size_t len = 0;
    char pub[JB_NKEY_PUBLIC_LEN + 1];
    jb_err e;
    jb_status st = jb_secret_read_file(file, &seed, &len, &e);
    if (st != JB_OK)
        return jb_err_set(err, st, "NATS_NKEY_SEED: %s", e.msg);
    bool ok = jb_nkey_user_public(seed, len, pub);
    jb_secret_free(seed);
    if (!ok)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "NATS_NKEY_SEED: %s: not a NATS user nkey seed (SU...)", file);
    if (natsOptions_SetNKeyFromSeed(o, pub, file) != NATS_OK)
        return jb_err_set(err, JB_ERR_CONFIG, "NATS_NKEY_SEED: %s", nats_GetLastError(NULL));
    return JB_OK;
}

/* At most one way to authenticate, so nothing is silently ignored. */
static jb_status set_auth(natsOptions *o, const jb_nats_opts *no, jb_err *err)
{
    int ways = (no->creds[0] != '\0') + (no->nkey_seed[0] != '\0') +
               (no->user[0] != '\0' || no->password_file[0] != '\0') + (no->token_file[0] != '\0');
    if (ways > 1)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "NATS_CREDS, NATS_NKEY_SEED, NATS_USER and NATS_TOKEN_FILE exclude each "
                          "other: set one");
    if (no->creds[0] != '\0') {
        if (natsOptions_SetUserCredentialsFromFiles(o, no->creds, NULL) != NATS_OK)
            return jb_err_set(err, JB_ERR_CONFIG, "NATS_CREDS: %s: %s", no->creds,
                              nats_GetLastError(NULL));
        return JB_OK;
    }
    if (no->nkey_seed[0] != '\0')
        return set_nkey(o, no->nkey_seed, err);
    char *secret = NULL;
    jb_status st = JB_OK;
    jb_err e;
    if (no->user[0] != '\0' || no->password_file[0] != '\0') {
        if (no->user[0] == '\0' || no->password_file[0] == '\0')
            return jb_err_set(err, JB_ERR_CONFIG, "NATS_USER and NATS_PASSWORD_FILE go together");
        if ((st = jb_secret_read_file(no->password_file, &secret, NULL, &e)) != JB_OK)
            return jb_err_set(err, st, "NATS_PASSWORD_FILE: %s", e.msg);
        if (natsOptions_SetUserInfo(o, no->user, secret) != NATS_OK)
            st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    } else if (no->token_file[0] != '\0') {
        if ((st = jb_secret_read_file(no->token_file, &secret, NULL, &e)) != JB_OK)
            return jb_err_set(err, st, "NATS_TOKEN_FILE: %s", e.msg);
        if (natsOptions_SetToken(o, secret) != NATS_OK)
            st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    jb_secret_free(secret);
    return st;
}

static natsStatus loop_attach(void **user, void *loop, natsConnection *nc, natsSock sock);
static natsStatus loop_read(void *user, bool add);
static natsStatus loop_write(void *user, bool add);
static natsStatus loop_detach(void *user);

static natsStatus make_options(const jb_nats_opts *no, struct event_base *base,
                               const jb_nats_loop *loop, const char *name, bool retry,
                               natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, no->url);
    if (s == NATS_OK && name != NULL)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, no->max_reconnects);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, no->reconnect_wait_ms);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, RECONNECT_BUF_BYTES);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, MAX_PINGS_OUT);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, NULL);
    if (s == NATS_OK && retry)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, NULL);
    if (s == NATS_OK && base != NULL)
        s = natsOptions_SetEventLoop(o, base, natsLibevent_Attach, natsLibevent_Read,
                                     natsLibevent_Write, natsLibevent_Detach);
    if (s == NATS_OK && loop != NULL)
        s = natsOptions_SetEventLoop(o, (void *)loop, loop_attach, loop_read, loop_write,
                                     loop_detach);
    /* On a loop, "as soon as possible" means: ask the loop for write readiness at
     * the first publish of a turn, and write everything of the turn at once. The
     * alternative is nats.c's flusher thread, which sleeps 1 ms before each write. */
    if (s == NATS_OK && loop != NULL)
        s = natsOptions_SetSendAsap(o, true);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

/* The connection part of jb_nats_connect and jb_nats_connect_loop: base (nats.c's
 * adapter), loop (ours) or neither. */
static jb_status open_conn(const jb_nats_opts *no, struct event_base *base,
                           const jb_nats_loop *loop, const char *name, bool retry,
                           natsConnection **nc, jb_err *err)
{
    natsOptions *opts = NULL;
    natsConnection *conn = NULL;
    jb_status st = JB_OK;
    char *shown = NULL; /* NATS_URL without passwords, for messages */
    if (no->url[0] == '\0')
        return jb_err_set(err, JB_ERR_CONFIG, "NATS_URL is empty");
    if (base != NULL || loop != NULL)
        jb_event_threads_init();
    /* nats.c spins up to 2000 times on a busy mutex before it sleeps (its default
     * lock spin count). With more busy threads than cores the spinner only burns
     * the time the holder needs: on the publisher that was ~15k instructions and
     * ~7 % of CPU per request (docs/publisher.md). The first nats_Open sets it;
     * later calls, nats.c's implicit one included, leave it. */
    nats_Open(0);
    shown = jb_redact_url(no->url);
    if (shown == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    natsStatus s = make_options(no, base, loop, name, retry, &opts);
    if (s != NATS_OK) {
        st = jb_err_set(err, s == NATS_NO_MEMORY ? JB_ERR_NOMEM : JB_ERR_CONFIG, "NATS options: %s",
                        natsStatus_GetText(s));
        goto done;
    }
    if ((st = set_tls(opts, no, err)) != JB_OK || (st = set_auth(opts, no, err)) != JB_OK)
        goto done;
    s = natsConnection_Connect(&conn, opts);
    if (s == NATS_NOT_YET_CONNECTED) {
        jb_log(JB_LOG_WARN, "nats", "not connected yet, retrying in the background", "url", shown,
               (char *)NULL);
    } else if (s != NATS_OK) {
        /* nats.c's last error says why (TLS, authorization); it may quote a URL. */
        char *why = jb_redact_url(nats_GetLastError(NULL));
        st = jb_err_set(err, JB_ERR_NOT_CONNECTED, "cannot connect to NATS at %s: %s%s%s", shown,
                        natsStatus_GetText(s), why && why[0] ? ": " : "", why ? why : "");
        free(why);
        goto done;
    } else {
        log_conn(JB_LOG_INFO, conn, "connected");
    }
    *nc = conn;
    conn = NULL;
done:
    if (conn != NULL)
        natsConnection_Destroy(conn);
    natsOptions_Destroy(opts);
    free(shown);
    return st;
}

jb_status jb_nats_connect(const jb_nats_opts *no, struct event_base *base, const char *name,
                          bool retry_on_failed_connect, natsConnection **nc, jsCtx **js,
                          jb_err *err)
{
    natsConnection *conn = NULL;
    jsCtx *ctx = NULL;
    jsOptions jo;
    jb_status st = open_conn(no, base, NULL, name, retry_on_failed_connect, &conn, err);
    if (st != JB_OK)
        return st;
    jsOptions_Init(&jo);
    jo.Wait = no->request_timeout_ms;
    /* The publisher's own window (PUBLISH_MAX_IN_FLIGHT) is the real bound; nats.c's
     * matches it so that the library never stalls a publish the window allowed. */
    jo.PublishAsync.MaxPending = no->publish_max_in_flight;
    natsStatus s = natsConnection_JetStream(&ctx, conn, &jo);
    if (s != NATS_OK) {
        natsConnection_Destroy(conn);
        return jb_err_set(err, JB_ERR_NATS, "JetStream context: %s", natsStatus_GetText(s));
    }
    *nc = conn;
    *js = ctx;
    return JB_OK;
}

jb_status jb_nats_connect_loop(const jb_nats_opts *no, const jb_nats_loop *loop, const char *name,
                               bool retry_on_failed_connect, natsConnection **nc, jb_err *err)
{
    if (loop == NULL || loop->base == NULL)
        return jb_err_set(err, JB_ERR_INVALID, "no event loop for the NATS connection");
    return open_conn(no, NULL, loop, name, retry_on_failed_connect, nc, err);
}

/* ------------------------------------------------ loop-owned connections */

/* Our own adapter: nats.c's libevent one, plus the after_read hook, and writes
 * without epoll. nats.c asks for write interest at the first publish after each
 * write; instead of adding the socket to epoll (an epoll_ctl, an epoll_wait that
 * only says the socket has room, and an epoll_ctl to take it out again: three
 * syscalls per write, most loop turns of a busy dispatcher or publisher), the write
 * event is made active, so that it runs after the callbacks the loop turn already
 * has, and writes what all of them published. Only a socket that did not take
 * everything is watched by epoll until it has room. */
typedef struct loop_io {
    natsConnection *nc;
    jb_nats_loop l;
    struct event *read, *write;
    bool in_cb;    /* in loop_io_cb, where nats.c may detach */
    bool detached; /* detached meanwhile: loop_io_cb frees io when it returns */
} loop_io;

static void loop_io_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    loop_io *io = arg;
    natsConnection *nc = io->nc;
    void (*after)(void *) = io->l.after_read;
    void *ud = io->l.ud;
    io->in_cb = true;
    if (what & EV_WRITE) {
        natsConnection_ProcessWriteEvent(nc);
        /* Bytes left: the socket is full, epoll says when it has room. */
        if (!io->detached && natsConnection_Buffered(nc) > 0 &&
            !event_pending(io->write, EV_WRITE, NULL))
            event_add(io->write, NULL);
    }
    if ((what & EV_READ) && !io->detached)
        natsConnection_ProcessReadEvent(nc);
    io->in_cb = false;
    if (io->detached) /* a final close */
        free(io);
    /* Also after a final close: the owner takes what that last read brought. */
    if ((what & EV_READ) && after != NULL)
        after(ud);
}

static natsStatus loop_attach(void **user, void *loop, natsConnection *nc, natsSock sock)
{
    loop_io *io = *user;
    if (io == NULL) { /* the first connect; a reconnect hands back the same io */
        io = calloc(1, sizeof(*io));
        if (io == NULL)
            return NATS_NO_MEMORY;
        io->nc = nc;
        io->l = *(const jb_nats_loop *)loop;
    }
    if (io->read != NULL)
        event_free(io->read);
    if (io->write != NULL)
        event_free(io->write);
    io->read = event_new(io->l.base, sock, EV_READ | EV_PERSIST, loop_io_cb, io);
    io->write = event_new(io->l.base, sock, EV_WRITE | EV_PERSIST, loop_io_cb, io);
    if (io->read == NULL || io->write == NULL || event_add(io->read, NULL) != 0) {
        loop_detach(io);
        *user = NULL;
        return NATS_NO_MEMORY;
    }
    *user = io;
    return NATS_OK;
}

static natsStatus loop_read(void *user, bool add)
{
    loop_io *io = user;
    int r = add ? event_add(io->read, NULL) : event_del_noblock(io->read);
    return r == 0 ? NATS_OK : NATS_ERR;
}

static natsStatus loop_write(void *user, bool add)
{
    loop_io *io = user;
    if (!add)
        return event_del_noblock(io->write) == 0 ? NATS_OK : NATS_ERR;
    /* Watched already (a full socket): epoll calls back. Else written in this
     * loop turn (from nats.c's ping or reconnect thread: event_active wakes the
     * loop). */
    if (!event_pending(io->write, EV_WRITE, NULL))
        event_active(io->write, EV_WRITE, 1);
    return NATS_OK;
}

static natsStatus loop_detach(void *user)
{
    loop_io *io = user;
    if (io->read != NULL)
        event_free(io->read);
    if (io->write != NULL)
        event_free(io->write);
    io->read = io->write = NULL;
    if (io->in_cb)
        io->detached = true;
    else
        free(io);
    return NATS_OK;
}

void jb_nats_close(natsConnection *nc, jsCtx *js)
{
    /* The context refers to the connection: destroy it first. */
    if (js != NULL)
        jsCtx_Destroy(js);
    if (nc != NULL) {
        natsConnection_Close(nc);
        natsConnection_Destroy(nc);
    }
}

bool jb_nats_connected(natsConnection *nc)
{
    return nc != NULL && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

/* nats.c 3.4.1's own free of a received message (its headers, then the block), what
 * its collector thread runs for each message natsMsg_Destroy hands it. Exported by
 * libnats but not declared in nats.h: a weak reference, NULL when absent. */
extern void natsMsg_free(void *object) __attribute__((weak));

bool jb_nats_msg_free_direct(void)
{
    /* Asked once (0: not yet, 1: yes, 2: no), not for every message freed. Only the
     * release whose natsMsg_Destroy is known to do no more than hand the message to
     * natsMsg_free (via the collector). */
    static int direct;
    int d = __atomic_load_n(&direct, __ATOMIC_RELAXED);
    if (d == 0) {
        d = natsMsg_free != NULL && (nats_GetVersionNumber() >> 8) == 0x0304 ? 1 : 2;
        __atomic_store_n(&direct, d, __ATOMIC_RELAXED);
    }
    return d == 1;
}

void jb_nats_msg_free(natsMsg *msg)
{
    if (msg == NULL)
        return;
    if (jb_nats_msg_free_direct())
        natsMsg_free(msg);
    else
        natsMsg_Destroy(msg);
}
