/*
 * Connection accounting of one publisher thread (see pub_thread.h). libevent 2.1
 * has no evhttp_set_max_connections: each thread counts the connections it
 * creates (evhttp's bufferevent callback) and closes (evhttp's close callback,
 * attached by a top-priority event right after accept), and disables its listener
 * at MAX_CONNECTIONS / threads; the kernel backlog holds new connections until
 * one closes.
 */
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "publisher/pub_thread.h"

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    pub_thread *t = arg;
    pub_guard_flush(evhttp_connection_get_bufferevent(evcon));
    t->nconns--;
    if (t->paused && t->nconns < t->p->conns_per_thread && t->bound != NULL) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(t->bound));
        t->paused = false;
    }
}

/* Runs at top priority right after the accept callback(s) that created the
 * bufferevents, before any of their I/O: evhttp has wrapped each in its
 * connection by then, and the connection's close callback is how we count. */
void pub_conns_attach(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pub_thread *t = arg;
    for (size_t i = 0; i < t->n_new_bevs; i++) {
        void *cbarg = NULL;
        bufferevent_getcb(t->new_bevs[i], NULL, NULL, NULL, &cbarg);
        if (cbarg != NULL)
            evhttp_connection_set_closecb(cbarg, on_conn_close, t);
        else
            t->nconns--;
    }
    t->n_new_bevs = 0;
}

struct bufferevent *pub_conns_new_bev(struct event_base *base, void *arg)
{
    pub_thread *t = arg;
    struct bufferevent *under = t->p->tls != NULL
                                    ? pub_tls_bev(t->p->tls, base)
                                    : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *bev = pub_guard_wrap(under, &t->p->guard);
    if (bev == NULL || t->n_new_bevs == t->new_bevs_cap)
        return bev; /* not counted: only possible past the cap, while paused */
    t->new_bevs[t->n_new_bevs++] = bev;
    t->nconns++;
    event_active(t->conn_ev, EV_TIMEOUT, 1);
    if (t->nconns >= t->p->conns_per_thread && !t->paused && t->bound != NULL) {
        /* The kernel backlog holds further connections until one closes. */
        evconnlistener_disable(evhttp_bound_socket_get_listener(t->bound));
        t->paused = true;
    }
    return bev;
}
