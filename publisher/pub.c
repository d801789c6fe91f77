/*
 * The publisher object: HTTP threads sharing the ingress port, the metric
 * families, and the control worker (ctl.c) that does the blocking NATS work off
 * the HTTP loops. Calls go one way: pub.c -> server.c, handlers.c (the request
 * callback it hands to each thread), ctl.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "application/jb_app.h"
#include "publisher/pub_server.h"
#include "publisher/pub_thread.h"
#include "subscription/jb_sub_store.h"
#include "subscription/jb_sub_stream.h"

static const double req_buckets[] = {0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.075, 0.1,
                                     0.15,  0.2,   0.25,  0.3,   0.35,  0.4,   0.45, 0.5,   0.6,
                                     0.7,   0.8,   0.9,   1,     1.5,   2,     3,    5};
static const double backend_buckets[] = {2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static jb_status register_metrics(jb_pub *p, jb_err *err)
{
    jb_metrics *m = p->metrics;
    static const char *const req_l[] = {"code", "method", "path"};
    static const char *const be_l[] = {"code", "destination_service"};
    static const char *const tp_l[] = {"event_type", "event_source", "code"};
    static const char *const rj_l[] = {"reason"};
    p->m.req_total = jb_metrics_counter(m, "eventing_epp_requests_total",
                                        "Total number of HTTP requests", 3, req_l);
    p->m.req_dur = jb_metrics_histogram(m, "eventing_epp_requests_duration_seconds",
                                        "Duration of HTTP requests in seconds", 3, req_l,
                                        req_buckets, sizeof(req_buckets) / sizeof(req_buckets[0]));
    p->m.backend_dur = jb_metrics_histogram(
        m, "eventing_epp_backend_duration_milliseconds",
        "Duration of publishing to the backend (JetStream ack) in milliseconds", 2, be_l,
        backend_buckets, sizeof(backend_buckets) / sizeof(backend_buckets[0]));
    p->m.type_pub = jb_metrics_counter(m, "eventing_epp_event_type_published_total",
                                       "Total number of events published per event type", 3, tp_l);
    p->m.health = jb_metrics_gauge(m, "eventing_epp_health",
                                   "1 while the publisher proxy is running", 0, NULL);
    p->m.rejected = jb_metrics_counter(m, "jetbridge_publisher_rejected_total",
                                       "Requests refused before publishing, by reason", 1, rj_l);
    p->m.in_flight = jb_metrics_gauge(m, "jetbridge_publisher_in_flight",
                                      "JetStream publishes awaiting their ack", 0, NULL);
    if (!p->m.req_total || !p->m.req_dur || !p->m.backend_dur || !p->m.type_pub || !p->m.health ||
        !p->m.rejected || !p->m.in_flight)
        return jb_err_set(err, JB_ERR_NOMEM, "cannot register metrics");
    jb_metric_set(p->m.health, NULL, 1);
    jb_metric_set(p->m.in_flight, NULL, 0);
    /* Counters a dashboard rates exist at 0 from the start ("no data" looks broken):
     * every rejection reason, and the stored answer of /publish. */
    static const char *const reasons[] = {"not_connected", "batch_too_large", "in_flight_full",
                                          "internal",      "unencodable",     "control_queue_full"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        jb_metric_add(p->m.rejected, &reasons[i], 0);
    const char *stored[] = {"204", "POST", "/publish"};
    jb_metric_add(p->m.req_total, stored, 0);
    return JB_OK;
}

/* destination_service: the NATS URL without user information. */
static void set_dest_service(jb_pub *p)
{
    const char *u = p->cfg->nats_url;
    const char *at = strchr(u, '@');
    const char *scheme = strstr(u, "://");
    if (at != NULL && scheme != NULL && scheme < at)
        snprintf(p->dest_service, sizeof(p->dest_service), "%.*s%s", (int)(scheme + 3 - u), u,
                 at + 1);
    else
        snprintf(p->dest_service, sizeof(p->dest_service), "%s", u);
}

jb_status jb_pub_create(const jb_cfg *cfg, jb_metrics *metrics, natsConnection *nc, jb_pub **out,
                        jb_err *err)
{
    if (cfg->publish_max_in_flight < 1 || cfg->max_request_size < 1)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "PUBLISH_MAX_IN_FLIGHT and MAX_REQUEST_SIZE "
                          "must be positive");
    jb_pub *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    p->cfg = cfg;
    p->metrics = metrics;
    p->nc = nc;
    p->names =
        (jb_pub_names){cfg->event_type_prefix, cfg->stream_subject_prefix, cfg->legacy_namespace};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    p->nthreads = cfg->publisher_threads > 0 ? cfg->publisher_threads : (int)(ncpu > 0 ? ncpu : 1);
    p->conns_per_thread = cfg->max_connections / p->nthreads;
    if (p->conns_per_thread < 1)
        p->conns_per_thread = 1;
    set_dest_service(p);
    jb_status rc = register_metrics(p, err);
    /* libevent 2.1 has one timeout per connection for reading a request and for
     * waiting on the next one: the stricter of the two keys applies to both. */
    int64_t conn_to = cfg->http_read_timeout_ms;
    if (cfg->http_idle_timeout_ms > 0 && cfg->http_idle_timeout_ms < conn_to)
        conn_to = cfg->http_idle_timeout_ms;
    p->guard = (pub_guard_cfg){cfg->max_request_size, cfg->max_header_size,
                               cfg->http_read_timeout_ms, conn_to, p->m.rejected};
    if (rc == JB_OK)
        rc = pub_tls_create(cfg, &p->tls, err);
    if (rc == JB_OK)
        rc = pub_authz_create(cfg, metrics, &p->authz, err);
    if (rc == JB_OK && natsConnection_JetStream(&p->ctl_js, nc, NULL) != NATS_OK)
        rc = jb_err_set(err, JB_ERR_NATS, "cannot create a JetStream context");
    if (rc != JB_OK) {
        jb_pub_destroy(p);
        return rc;
    }
    *out = p;
    return JB_OK;
}

/* One listening socket per thread on the same port (SO_REUSEPORT): the kernel
 * spreads connections evenly, which a shared socket with libevent's accept loop
 * does not. */
static int listen_socket(const char *addr, int port, jb_err *err)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof(struct sockaddr_in);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*s6);
    } else {
        jb_err_set(err, JB_ERR_CONFIG, "INGRESS_ADDR: invalid address \"%s\"", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        jb_err_set(err, JB_ERR_IO, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        jb_err_set(err, JB_ERR_IO, "INGRESS_PORT: cannot listen on %s port %d: %s", addr, port,
                   strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

jb_status jb_pub_start(jb_pub *p, jb_err *err)
{
    p->threads = calloc((size_t)p->nthreads, sizeof(*p->threads));
    if (p->threads == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    p->port = p->cfg->ingress_port;
    p->started = true;
    for (int i = 0; i < p->nthreads; i++) {
        int fd = listen_socket(p->cfg->ingress_addr, p->port, err);
        if (fd < 0)
            return JB_ERR_IO;
        jb_status rc = pub_thread_create(p, i, fd, pub_on_request, &p->threads[i], err);
        if (rc != JB_OK)
            return rc;
    }
    /* The registry loads in the background (NATS may not answer yet); until it has,
     * the publisher does not say it is ready. */
    jb_status rrc = jb_app_registry_create(p->cfg, p->nc, NULL, &p->apps, err);
    if (rrc != JB_OK)
        return rrc;
    if (p->authz != NULL)
        pub_authz_set_registry(p->authz, p->apps);
    jb_status wrc = pub_ctl_start(p, err);
    if (wrc != JB_OK)
        return wrc;
    for (int i = 0; i < p->nthreads; i++)
        if (pub_thread_start(p->threads[i]) != JB_OK)
            return jb_err_set(err, JB_ERR_IO, "cannot start an HTTP thread");
    char addr[96];
    snprintf(addr, sizeof(addr), "%s%s:%d", p->tls != NULL ? "https://" : "", p->cfg->ingress_addr,
             p->port);
    char nth[16];
    snprintf(nth, sizeof(nth), "%d", p->nthreads);
    jb_log(JB_LOG_INFO, "publisher", "listening", "addr", addr, "threads", nth, NULL);
    return JB_OK;
}

int jb_pub_port(const jb_pub *p)
{
    return p->port;
}

void jb_pub_stop(jb_pub *p)
{
    if (p == NULL || !p->started || p->stopped)
        return;
    p->stopped = true;
    atomic_store(&p->stopping, true);
    for (int i = 0; i < p->nthreads; i++)
        if (p->threads[i] != NULL)
            pub_thread_request_stop(p->threads[i]);
    for (int i = 0; i < p->nthreads; i++)
        if (p->threads[i] != NULL)
            pub_thread_join(p->threads[i]);
    /* The HTTP threads are gone: a job still waiting has nobody to answer to. */
    pub_ctl_stop(p);
    /* Before the connection closes: the registry's watchers use it. */
    jb_app_registry_stop(p->apps);
    p->apps = NULL;
}

void jb_pub_destroy(jb_pub *p)
{
    if (p == NULL)
        return;
    jb_pub_stop(p);
    for (int i = 0; p->threads != NULL && i < p->nthreads; i++)
        pub_thread_destroy(p->threads[i]);
    free(p->threads);
    jb_sub_store_close(p->store);
    pub_tls_destroy(p->tls);
    pub_authz_destroy(p->authz);
    if (p->ctl_js != NULL)
        jsCtx_Destroy(p->ctl_js);
    free(p->ctl_st);
    free(p);
}
