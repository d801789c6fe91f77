/* The outbound policy of every HTTP request the dispatcher makes (sinks, dead-letter
 * sinks, `dlq replay`): only http and https, no redirects, TLS verification on with
 * SINK_CA_BUNDLE added to the system's CAs, no proxy from the environment, and no
 * connection to an address in SINK_DENY_NETWORKS. The address is checked in curl's open-socket
 * callback, on the address curl is about to connect to after its own DNS lookup: a name that
 * resolves to a denied address (or is re-bound to one) is refused, and so is a
 * literal address. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"

/* More would make the per-connection check slow; a deny list is short. */
#define MAX_NETS 64

typedef struct net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
} net;

struct jb_dguard {
    net nets[MAX_NETS];
    size_t n;
    char *ca_bundle; /* NULL: the system's CAs only */
};

static bool parse_net(const char *s, size_t len, net *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    unsigned long bits = 0;
    bool has_bits = slash != NULL;
    if (has_bits) {
        *slash = '\0';
        char *end = NULL;
        if (slash[1] < '0' || slash[1] > '9')
            return false;
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0')
            return false;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (!has_bits)
            bits = 32;
        if (bits > 32)
            return false;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (!has_bits)
            bits = 128;
        if (bits > 128)
            return false;
    } else {
        return false;
    }
    out->bits = (unsigned)bits;
    return true;
}

jb_status jb_dguard_create(const jb_cfg *cfg, jb_dguard **out, jb_err *err)
{
    jb_dguard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    const char *p = cfg->sink_deny_networks;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        size_t a = 0, b = len;
        while (a < b && p[a] == ' ')
            a++;
        while (b > a && p[b - 1] == ' ')
            b--;
        if (b > a) {
            if (g->n == MAX_NETS || !parse_net(p + a, b - a, &g->nets[g->n])) {
                jb_status st =
                    jb_err_set(err, JB_ERR_CONFIG,
                               "SINK_DENY_NETWORKS: invalid value \"%.*s\": want at most %d "
                               "CIDR networks such as 169.254.0.0/16 or fe80::/10",
                               (int)(b - a), p + a, MAX_NETS);
                jb_dguard_destroy(g);
                return st;
            }
            g->n++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (cfg->sink_ca_bundle[0] != '\0') {
        FILE *f = fopen(cfg->sink_ca_bundle, "r");
        if (f == NULL) {
            jb_dguard_destroy(g);
            return jb_err_set(err, JB_ERR_CONFIG, "SINK_CA_BUNDLE: cannot read %s",
                              cfg->sink_ca_bundle);
        }
        fclose(f);
        g->ca_bundle = strdup(cfg->sink_ca_bundle);
        if (g->ca_bundle == NULL) {
            jb_dguard_destroy(g);
            return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        }
    }
    *out = g;
    return JB_OK;
}

void jb_dguard_destroy(jb_dguard *g)
{
    if (g == NULL)
        return;
    free(g->ca_bundle);
    free(g);
}

static bool in_net(const net *n, int family, const unsigned char *a)
{
    if (n->family != family)
        return false;
    unsigned full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (a[full] & mask);
}

/* The address as one family: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
 * checked as the IPv4 address it reaches. */
static bool denied(const jb_dguard *g, const struct sockaddr *sa, char *shown, size_t cap)
{
    int family = sa->sa_family;
    const unsigned char *a;
    if (family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        a = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            family = AF_INET;
            a += 12;
        }
    } else {
        return false; /* unix sockets and others: not reachable with http(s) */
    }
    inet_ntop(family, a, shown, (socklen_t)cap);
    for (size_t i = 0; i < g->n; i++)
        if (in_net(&g->nets[i], family, a))
            return true;
    return false;
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    jb_dguard_ctx *c = clientp;
    char shown[INET6_ADDRSTRLEN] = "";
    if (purpose == CURLSOCKTYPE_IPCXN && denied(c->guard, &addr->addr, shown, sizeof(shown))) {
        c->refused = true;
        snprintf(c->why, sizeof(c->why), "destination %s is in SINK_DENY_NETWORKS", shown);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

void jb_dguard_apply(jb_dguard_ctx *c, CURL *e)
{
    c->refused = false;
    c->why[0] = '\0';
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* No proxy, whatever http_proxy, https_proxy or ALL_PROXY say: through a proxy
     * curl connects to the proxy's address, so the deny list below would check
     * that instead of the sink's, and the proxy would reach any address. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    /* With no proxy, no_proxy is moot: set, curl 7.88 no longer reads no_proxy and
     * NO_PROXY from the environment on every transfer (two getenv per delivery,
     * ~0.6 % of the dispatcher's instructions). */
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    if (c->guard == NULL)
        return;
    if (c->guard->ca_bundle != NULL) {
        /* CURLOPT_CAINFO would replace the system's CAs: the bundle is added
         * to them through the OpenSSL store instead. */
        curl_easy_setopt(e, CURLOPT_CAINFO, c->guard->ca_bundle);
        curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
}
