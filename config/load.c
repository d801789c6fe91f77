/*
 * Loading the configuration: defaults < YAML file (--config) < environment <
 * flags. Every value goes through cfg_apply, so a key means the same thing
 * wherever it is set, and a bad value stops with one line naming the key (or the
 * flag), the value and what is allowed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/jb_text.h"
#include "config/cfg_internal.h"

/* The YAML file is configuration, not data: anything larger is a mistake. */
#define CFG_FILE_MAX (1024 * 1024)

/* Writes value[0..len) for an error line: quotes and backslashes escaped,
 * control and non-ASCII bytes as \xNN, cut after 64 bytes. */
static void quote(const char *v, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t shown = len > 64 ? 64 : len;
    for (size_t i = 0; i < shown && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (shown < len && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static bool set_string(char **field, const char *v, size_t len)
{
    char *copy = strndup(v, len);
    if (copy == NULL)
        return false;
    free(*field);
    *field = copy;
    return true;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Index of v among the '|'-separated choices (case-insensitive), or -1; the
 * canonical spelling is written to canon (room for 32 bytes). */
static int choice_index(const char *choices, const char *v, size_t len, char canon[32])
{
    int idx = 0;
    const char *p = choices;
    while (*p) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        bool same = n == len && n < 32;
        for (size_t i = 0; same && i < n; i++)
            same = lower(v[i]) == p[i];
        if (same) {
            memcpy(canon, p, n);
            canon[n] = '\0';
            return idx;
        }
        idx++;
        p += n + (end ? 1 : 0);
    }
    return -1;
}

static bool valid_token(const char *v, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= 0x20 || c == 0x7f || strchr(".*>/\\", c) != NULL)
            return false;
    }
    return true;
}

/* "host:port", ":port", "[v6]:port"; port 0..65535. */
static bool valid_addr(const char *v, size_t len)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (v[i] == ':')
            colon = v + i;
    int64_t port;
    if (colon == NULL || colon + 1 == v + len)
        return false;
    if (!jb_parse_int(colon + 1, (size_t)(v + len - colon - 1), 0, 65535, &port) ||
        colon[1] == '-' || colon[1] == '+')
        return false;
    size_t hlen = (size_t)(colon - v);
    if (hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']') {
        for (size_t i = 1; i + 1 < hlen; i++)
            if (!(strchr("0123456789abcdefABCDEF:.", v[i]) != NULL && v[i] != '\0'))
                return false;
        return true;
    }
    for (size_t i = 0; i < hlen; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool apply_number(const cfg_spec *sp, void *field, const char *v, size_t len)
{
    int64_t x;
    bool ok;
    switch (sp->kind) {
    case CFG_INT:
    case CFG_I64:
        ok = jb_parse_int(v, len, sp->min, sp->max, &x);
        break;
    case CFG_DURATION:
        ok = jb_cfg_parse_duration_ms(v, len, &x) && x >= sp->min && x <= sp->max;
        break;
    case CFG_SIZE:
        if (sp->min == -1 && len == 2 && memcmp(v, "-1", 2) == 0) {
            x = -1;
            ok = true;
        } else {
            ok = jb_cfg_parse_size(v, len, &x) && x >= sp->min && x <= sp->max && x >= 0;
        }
        break;
    default:
        ok = false;
    }
    if (!ok)
        return false;
    if (sp->kind == CFG_INT)
        *(int *)field = (int)x;
    else
        *(int64_t *)field = x;
    return true;
}

/* A numeric IPv4 or IPv6 address (no host names: the ingress binds exactly this). */
static bool valid_ip(const char *v, size_t len)
{
    char buf[64];
    unsigned char addr[16];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

static bool valid_text(cfg_kind k, const char *v, size_t len)
{
    switch (k) {
    case CFG_IP:
        return valid_ip(v, len);
    case CFG_NONEMPTY:
        return len > 0;
    case CFG_TOKEN:
        return valid_token(v, len);
    case CFG_ADDR:
        return valid_addr(v, len);
    default:
        return true;
    }
}

/* false with *oom set when memory ran out (the value itself was fine). */
static bool apply_text(const cfg_spec *sp, void *field, const char *v, size_t len, bool *oom)
{
    char canon[32];
    int idx;
    switch (sp->kind) {
    case CFG_STRING:
    case CFG_NONEMPTY:
    case CFG_TOKEN:
    case CFG_ADDR:
    case CFG_IP:
        if (!valid_text(sp->kind, v, len))
            return false;
        if (!set_string(field, v, len))
            *oom = true;
        return !*oom;
    case CFG_CHOICE:
        if (choice_index(sp->choices, v, len, canon) < 0)
            return false;
        if (!set_string(field, canon, strlen(canon)))
            *oom = true;
        return !*oom;
    case CFG_ENUM:
        idx = choice_index(sp->choices, v, len, canon);
        if (idx < 0)
            return false;
        /* The jb_cfg enums list their values in the order of the choices. */
        *(int *)field = idx;
        return true;
    case CFG_LOGFMT:
        /* log_json holds the answer for "auto" when stderr is not a terminal; the
         * caller (cfg_apply) records "auto" itself. */
        if (choice_index("auto|json|text|console", v, len, canon) < 0)
            return false;
        *(bool *)field = strcmp(canon, "json") == 0 || strcmp(canon, "auto") == 0;
        return true;
    default:
        return false;
    }
}

bool cfg_apply(jb_cfg *cfg, size_t i, const char *value, size_t len, char *why, size_t whylen)
{
    size_t n;
    const cfg_spec *sp = &cfg_specs(&n)[i];
    const jb_cfg_key_info *info = &jb_cfg_keys(&n)[i];
    void *field = (char *)cfg + sp->off;
    bool oom = false, ok;
    if (memchr(value, '\0', len) != NULL)
        ok = false; /* possible from YAML ("\0"); never a meaningful value */
    else if (sp->kind == CFG_INT || sp->kind == CFG_I64 || sp->kind == CFG_DURATION ||
             sp->kind == CFG_SIZE)
        ok = apply_number(sp, field, value, len);
    else
        ok = apply_text(sp, field, value, len, &oom);
    if (ok && sp->kind == CFG_LOGFMT)
        cfg->log_format_auto = len == 4 && lower(value[0]) == 'a';
    if (!ok) {
        char q[300];
        quote(value, len, q, sizeof(q));
        if (oom)
            snprintf(why, whylen, "out of memory");
        else
            snprintf(why, whylen, "invalid value \"%s\": want %s", q, info->allowed);
    }
    return ok;
}

/* ------------------------------------------------------------------ YAML */

typedef struct yaml_ctx {
    yaml_parser_t p;
    yaml_event_t ev;
    bool have_ev;
    const char *name;
    jb_err *err;
} yaml_ctx;

static jb_status next_event(yaml_ctx *y)
{
    if (y->have_ev)
        yaml_event_delete(&y->ev);
    y->have_ev = false;
    if (!yaml_parser_parse(&y->p, &y->ev)) {
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: YAML: %s", y->name,
                          y->p.problem_mark.line + 1, y->p.problem ? y->p.problem : "syntax error");
    }
    y->have_ev = true;
    return JB_OK;
}

static size_t ev_line(const yaml_ctx *y)
{
    return y->ev.start_mark.line + 1;
}

/* A YAML null (empty, ~, null) written as a plain scalar means "empty". */
static void scalar_value(const yaml_event_t *ev, const char **v, size_t *len)
{
    *v = (const char *)ev->data.scalar.value;
    *len = ev->data.scalar.length;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        ((*len == 1 && (*v)[0] == '~') ||
         (*len == 4 &&
          (!memcmp(*v, "null", 4) || !memcmp(*v, "Null", 4) || !memcmp(*v, "NULL", 4)))))
        *len = 0;
}

/* One "KEY: value" pair; the key event is current. */
static jb_status yaml_pair(yaml_ctx *y, jb_cfg *cfg, bool *seen)
{
    char q[300], why[JB_ERR_MSG_MAX];
    if (y->ev.type != YAML_SCALAR_EVENT)
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: keys must be plain names", y->name,
                          ev_line(y));
    const char *k = (const char *)y->ev.data.scalar.value;
    size_t klen = y->ev.data.scalar.length;
    int idx = cfg_find_env(k, klen);
    quote(k, klen, q, sizeof(q));
    if (idx < 0)
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: unknown key \"%s\"", y->name, ev_line(y),
                          q);
    if (seen[idx])
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: %s: set twice", y->name, ev_line(y), q);
    seen[idx] = true;
    jb_status st = next_event(y);
    if (st != JB_OK)
        return st;
    if (y->ev.type != YAML_SCALAR_EVENT)
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: %s: want a single value", y->name,
                          ev_line(y), q);
    const char *v;
    size_t vlen;
    scalar_value(&y->ev, &v, &vlen);
    if (!cfg_apply(cfg, (size_t)idx, v, vlen, why, sizeof(why)))
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: %s: %s", y->name, ev_line(y), q, why);
    return JB_OK;
}

/* Top level: nothing, an empty document, or one mapping of pairs. */
static jb_status yaml_document(yaml_ctx *y, jb_cfg *cfg, bool *seen)
{
    jb_status st = next_event(y); /* after DOCUMENT_START */
    if (st != JB_OK)
        return st;
    if (y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.length == 0)
        return next_event(y); /* "---" alone: an empty document */
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return jb_err_set(y->err, JB_ERR_CONFIG, "%s:%zu: want a mapping of KEY: value", y->name,
                          ev_line(y));
    for (;;) {
        if ((st = next_event(y)) != JB_OK)
            return st;
        if (y->ev.type == YAML_MAPPING_END_EVENT)
            return next_event(y);
        if ((st = yaml_pair(y, cfg, seen)) != JB_OK)
            return st;
    }
}

jb_status jb_cfg_apply_yaml(jb_cfg *cfg, const char *name, const void *buf, size_t len, jb_err *err)
{
    size_t nkeys;
    (void)jb_cfg_keys(&nkeys);
    yaml_ctx y = {.name = name, .err = err};
    bool *seen = calloc(nkeys, sizeof(bool));
    jb_status st = JB_OK;
    if (seen == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    if (!yaml_parser_initialize(&y.p)) {
        free(seen);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&y.p, buf, len);
    if ((st = next_event(&y)) != JB_OK) /* STREAM_START */
        goto done;
    if ((st = next_event(&y)) != JB_OK)
        goto done;
    if (y.ev.type == YAML_DOCUMENT_START_EVENT) {
        if ((st = yaml_document(&y, cfg, seen)) != JB_OK)
            goto done;
        /* now at DOCUMENT_END */
        if ((st = next_event(&y)) != JB_OK)
            goto done;
    }
    if (y.ev.type != YAML_STREAM_END_EVENT)
        st = jb_err_set(err, JB_ERR_CONFIG, "%s:%zu: want one YAML document", name, ev_line(&y));
done:
    if (y.have_ev)
        yaml_event_delete(&y.ev);
    yaml_parser_delete(&y.p);
    free(seen);
    return st;
}

static jb_status load_file(jb_cfg *cfg, const char *path, jb_err *err)
{
    jb_status st = JB_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return jb_err_set(err, JB_ERR_CONFIG, "--config %s: %s", path, strerror(errno));
    buf = malloc(CFG_FILE_MAX + 1);
    if (buf == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t n = fread(buf, 1, CFG_FILE_MAX + 1, f);
    if (ferror(f)) {
        st = jb_err_set(err, JB_ERR_CONFIG, "--config %s: read error", path);
        goto done;
    }
    if (n > CFG_FILE_MAX) {
        st =
            jb_err_set(err, JB_ERR_CONFIG, "--config %s: larger than %d bytes", path, CFG_FILE_MAX);
        goto done;
    }
    st = jb_cfg_apply_yaml(cfg, path, buf, n, err);
done:
    free(buf);
    fclose(f);
    return st;
}

static jb_status load_env(jb_cfg *cfg, char **envp, jb_err *err)
{
    char why[JB_ERR_MSG_MAX];
    for (size_t e = 0; envp != NULL && envp[e] != NULL; e++) {
        const char *eq = strchr(envp[e], '=');
        if (eq == NULL)
            continue;
        int idx = cfg_find_env(envp[e], (size_t)(eq - envp[e]));
        if (idx < 0)
            continue; /* the environment is full of other programs' variables */
        if (!cfg_apply(cfg, (size_t)idx, eq + 1, strlen(eq + 1), why, sizeof(why)))
            return jb_err_set(err, JB_ERR_CONFIG, "%.*s: %s", (int)(eq - envp[e]), envp[e], why);
    }
    return JB_OK;
}

/* A flag with its value, in argv order. */
typedef struct flag_set {
    int key;
    const char *value;
} flag_set;

/* Sorts argv into flags (*sets), the --config path and the rest. */
static jb_status scan_args(int argc, char **argv, flag_set *sets, int *nsets, const char **config,
                           int *rest, int *nrest, jb_err *err)
{
    size_t nk;
    const jb_cfg_key_info *info = jb_cfg_keys(&nk);
    int ns = 0, nr = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                rest[nr++] = i++; /* everything after "--" is the caller's */
            break;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t nlen = strncmp(a, "--", 2) == 0 ? (eq ? (size_t)(eq - a - 2) : strlen(a + 2)) : 0;
        bool is_config = nlen == 6 && memcmp(a + 2, "config", 6) == 0;
        int key = nlen > 0 && !is_config ? cfg_find_flag(a + 2, nlen) : -1;
        if (!is_config && key < 0) {
            rest[nr++] = i;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        /* A switch (allowed "true|false", such as --kubernetes) alone means true; a
         * following "true"/"false" is still its value. */
        if (v == NULL && !is_config && strcmp(info[key].allowed, "true|false") == 0 &&
            (i + 1 >= argc ||
             (strcmp(argv[i + 1], "true") != 0 && strcmp(argv[i + 1], "false") != 0)))
            v = "true";
        if (v == NULL) {
            /* "--flag --other" is a forgotten value, not a value "--other". */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return jb_err_set(err, JB_ERR_CONFIG, "--%.*s: missing value (want %s)", (int)nlen,
                                  a + 2, is_config ? "a file" : info[key].allowed);
            v = argv[++i];
        }
        if (is_config)
            *config = v;
        else
            sets[ns++] = (flag_set){key, v};
    }
    *nsets = ns;
    *nrest = nr;
    return JB_OK;
}

jb_status jb_cfg_load(int argc, char **argv, char **envp, jb_cfg **out, int *rest, int *nrest,
                      jb_err *err)
{
    size_t nk;
    const jb_cfg_key_info *info = jb_cfg_keys(&nk);
    char why[JB_ERR_MSG_MAX];
    const char *config = NULL;
    int nsets = 0, nr = 0;
    jb_status st = JB_OK;
    flag_set *sets = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*sets));
    jb_cfg *c = jb_cfg_defaults();
    if (sets == NULL || c == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = scan_args(argc, argv, sets, &nsets, &config, rest, &nr, err)) != JB_OK)
        goto done;
    if (config != NULL && (st = load_file(c, config, err)) != JB_OK)
        goto done;
    if ((st = load_env(c, envp, err)) != JB_OK)
        goto done;
    for (int i = 0; i < nsets; i++) {
        const char *v = sets[i].value;
        if (!cfg_apply(c, (size_t)sets[i].key, v, strlen(v), why, sizeof(why))) {
            st = jb_err_set(err, JB_ERR_CONFIG, "%s: %s", info[sets[i].key].flag, why);
            goto done;
        }
    }
    *out = c;
    *nrest = nr;
    c = NULL;
done:
    jb_cfg_destroy(c);
    free(sets);
    return st;
}

/* Reads the first line of dir/name into out (at most cap-1 bytes); false when the
 * file is missing, empty or unreadable. */
static bool read_line_file(const char *dir, const char *name, char *out, size_t cap)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return false;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0';
}

jb_status jb_cfg_resolve_client(jb_cfg *cfg, jb_err *err)
{
    char line[1024];
    size_t n;
    int mi = cfg_find_env("METRICS_ADDR", strlen("METRICS_ADDR"));
    const char *mdef = mi >= 0 ? jb_cfg_keys(&n)[mi].def : "";
    if (cfg->nats_url[0] == '\0') {
        const char *url = JB_CFG_CLI_NATS_URL;
        if (read_line_file(cfg->data_dir, JB_CFG_NATS_URL_FILE, line, sizeof(line)))
            url = line;
        if (!set_string(&cfg->nats_url, url, strlen(url)))
            return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    if (strcmp(cfg->metrics_addr, mdef) == 0 &&
        read_line_file(cfg->data_dir, JB_CFG_METRICS_ADDR_FILE, line, sizeof(line)) &&
        valid_addr(line, strlen(line)) && !set_string(&cfg->metrics_addr, line, strlen(line)))
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    return JB_OK;
}

/* The defaults of the key table (the one place they are written). */
jb_cfg *jb_cfg_defaults(void)
{
    jb_cfg *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    size_t n = 0;
    const jb_cfg_key_info *infos = jb_cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char why[256];
        if (!cfg_apply(c, i, infos[i].def, strlen(infos[i].def), why, sizeof(why))) {
            /* A default that does not parse is a bug in the key table (keys.c). */
            jb_cfg_destroy(c);
            return NULL;
        }
    }
    return c;
}

void jb_cfg_destroy(jb_cfg *cfg)
{
    if (cfg == NULL)
        return;
    size_t n = 0;
    const cfg_spec *specs = cfg_specs(&n);
    for (size_t i = 0; i < n; i++) {
        cfg_kind k = specs[i].kind;
        if (k == CFG_STRING || k == CFG_NONEMPTY || k == CFG_TOKEN || k == CFG_CHOICE ||
            k == CFG_ADDR || k == CFG_IP)
            free(*(char **)((char *)cfg + specs[i].off));
    }
    free(cfg);
}
