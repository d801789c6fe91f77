/* The latency floor of a pipeline of processes on this machine: records sent at a
 * fixed rate through HOPS relay processes over loopback TCP to a sink, with nothing
 * done to them on the way. Each relay forwards a record as soon as it has read it and
 * answers its sender with an 8-byte acknowledgement, as every hop of the real pipeline
 * answers (the publisher its client, nats-server the publisher, the sink the
 * dispatcher); the sink answers too. So an event costs the same process wake-ups in the
 * same order as in `disp_e2e`'s end-to-end run (generator -> publisher -> nats-server ->
 * dispatcher -> sink: three relays) and none of the work; what its p99 shows is what
 * the machine's scheduler adds to four hops, the floor under the (d) figures measured in
 * the same run. The sender sleeps until each record is due (never spinning), woken
 * early only by the acks.
 *
 * Prints "hops RATE SENT RECEIVED p50_ms p90_ms p99_ms max_ms 0 warm_p99_ms warm_n"
 * (the fields of disp_e2e's line; warm: the records sent after the first E2E_WARM_MS,
 * 1000, as there).
 *
 * Usage: hop_chain RATE SECONDS [HOPS]   (HOPS 3 by default, 1..8) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lat_stats.h"

#define REC      64 /* one record: its send time, then padding (a small event's size class) */
#define ACK      8  /* one acknowledgement */
#define HOPS_MAX 8

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* A listener on 127.0.0.1, any free port; its port into *port. */
static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("hop_chain: listen");
    *port = ntohs(a.sin_port);
    return fd;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("hop_chain: connect");
    nodelay(fd);
    return fd;
}

static int take(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        die("hop_chain: accept");
    nodelay(fd);
    close(lfd);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One relay: records from up go down as they are read, each answered with an ack up;
 * the acks from down are read and dropped. Ends when up closes. */
static void relay(int up, int down)
{
    static const char ack[ACK];
    char buf[REC * 256];
    size_t have = 0;
    struct pollfd p[2] = {{.fd = up, .events = POLLIN}, {.fd = down, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents != 0) {
            char sink[ACK * 256];
            if (read(down, sink, sizeof(sink)) <= 0)
                return;
        }
        if (p[0].revents == 0)
            continue;
        ssize_t r = read(up, buf + have, sizeof(buf) - have);
        if (r <= 0)
            return;
        have += (size_t)r;
        size_t whole = have / REC * REC;
        if (whole == 0)
            continue;
        if (write_all(down, buf, whole) != 0)
            return;
        for (size_t i = 0; i < whole / REC; i++)
            if (write_all(up, ack, ACK) != 0)
                return;
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
}

typedef struct sinkst {
    int fd;
    int64_t *lat, *sent;
    size_t n, cap;
} sinkst;

/* The sink: each record's latency, and an ack back for it. */
static void *sink_main(void *arg)
{
    static const char ack[ACK];
    sinkst *s = arg;
    char buf[REC * 256];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(s->fd, buf + have, sizeof(buf) - have);
        if (r <= 0)
            return NULL;
        int64_t at = now_ns();
        have += (size_t)r;
        size_t k = 0;
        for (; k + REC <= have; k += REC) {
            int64_t t;
            memcpy(&t, buf + k, sizeof(t));
            if (s->n < s->cap) {
                s->sent[s->n] = t;
                s->lat[s->n] = at - t;
                __atomic_store_n(&s->n, s->n + 1, __ATOMIC_RELEASE);
            }
            if (write_all(s->fd, ack, ACK) != 0)
                return NULL;
        }
        memmove(buf, buf + k, have - k);
        have -= k;
    }
}

/* Forks the hops relays (relay i: from listener i to listener i+1); listener hops,
 * the sink's, stays open here; the kids' pids into kids. */
static void spawn_relays(int hops, int lfd[], const int port[], pid_t kids[])
{
    for (int i = 0; i < hops; i++) {
        kids[i] = fork();
        if (kids[i] < 0)
            die("hop_chain: fork");
        if (kids[i] == 0) {
            for (int j = 0; j <= hops; j++)
                if (j != i)
                    close(lfd[j]);
            int down = dial(port[i + 1]);
            int up = take(lfd[i]);
            relay(up, down);
            _exit(0);
        }
        close(lfd[i]);
    }
}

/* Sends total records at rate on out, each stamped just before its write; returns
 * the start time. */
static int64_t send_paced(int out, long rate, size_t total)
{
    char rec[REC] = {0};
    int64_t start = now_ns(), gap = 1000000000LL / rate;
    for (size_t i = 0; i < total; i++) {
        /* Wait for the record's time, woken by each ack as the generator's sender
         * is woken by each answer. */
        int64_t due = start + (int64_t)i * gap, t0;
        while ((t0 = now_ns()) < due) {
            struct pollfd p = {.fd = out, .events = POLLIN};
            struct timespec ts = {(time_t)((due - t0) / 1000000000LL),
                                  (long)((due - t0) % 1000000000LL)};
            if (ppoll(&p, 1, &ts, NULL) > 0) {
                char acks[ACK * 256];
                if (read(out, acks, sizeof(acks)) <= 0)
                    die("hop_chain: acks");
            }
        }
        memcpy(rec, &t0, sizeof(t0));
        if (write_all(out, rec, REC) != 0)
            die("hop_chain: send");
    }
    return start;
}

static void report(long rate, size_t total, sinkst *s, int64_t start)
{
    size_t n = s->n, warm_n = 0;
    double warm_p99 = lat_p99_from(s->lat, s->sent, n, lat_warm_from(start), &warm_n);
    qsort(s->lat, n, sizeof(int64_t), lat_cmp);
    printf("hops %ld %zu %zu %.2f %.2f %.2f %.2f 0 %.2f %zu\n", rate, total, n,
           lat_pct_ms(s->lat, n, 50), lat_pct_ms(s->lat, n, 90), lat_pct_ms(s->lat, n, 99),
           lat_pct_ms(s->lat, n, 100), warm_p99, warm_n);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: hop_chain RATE SECONDS [HOPS]\n");
        return 2;
    }
    long rate = strtol(argv[1], NULL, 10), secs = strtol(argv[2], NULL, 10);
    int hops = argc == 4 ? (int)strtol(argv[3], NULL, 10) : 3;
    if (rate <= 0 || secs <= 0 || hops < 1 || hops > HOPS_MAX) {
        fprintf(stderr, "hop_chain: RATE and SECONDS > 0, HOPS 1..%d\n", HOPS_MAX);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Listeners 0..hops-1 are the relays', listener hops the sink's. */
    int lfd[HOPS_MAX + 1], port[HOPS_MAX + 1];
    for (int i = 0; i <= hops; i++)
        lfd[i] = listen_any(&port[i]);
    pid_t kids[HOPS_MAX];
    spawn_relays(hops, lfd, port, kids);
    size_t total = (size_t)(rate * secs);
    sinkst s = {.lat = calloc(total, sizeof(int64_t)),
                .sent = calloc(total, sizeof(int64_t)),
                .cap = total};
    if (s.lat == NULL || s.sent == NULL)
        die("hop_chain: memory");
    int out = dial(port[0]);
    s.fd = take(lfd[hops]);
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    int64_t start = send_paced(out, rate, total);
    /* The last records: at most 5 s. */
    for (int i = 0; i < 500 && __atomic_load_n(&s.n, __ATOMIC_ACQUIRE) < total; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    shutdown(out, SHUT_RDWR);
    for (int i = 0; i < hops; i++)
        waitpid(kids[i], NULL, 0);
    shutdown(s.fd, SHUT_RDWR);
    pthread_join(t, NULL);
    report(rate, total, &s, start);
    free(s.lat);
    free(s.sent);
    return s.n == total ? 0 : 1;
}
