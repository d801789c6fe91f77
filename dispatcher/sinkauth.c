/* Credentials for sinks: the Authorization header (an OAuth2 client-credentials
 * token, a bearer token or basic credentials) and Standard Webhooks signature
 * headers. Values come from files (re-read when they change, checked at most once
 * per second) or, in Kubernetes mode, from Secrets (read again every
 * KUBE_SECRET_REFRESH), so a rotated secret takes effect without a restart. Loop
 * thread only, except the Secret reader thread.
 *
 * Nothing here blocks the loop. An OAuth2 token is fetched with one more request
 * on the dispatcher's curl multi handle, and Secrets are read by one reader thread
 * (whatever the number of subscriptions); a delivery whose credentials are not at
 * hand yet waits (jb_dauth_wait) and is resumed on the loop when they arrive, while
 * every other delivery goes on. Tokens are cached until shortly before they expire
 * and refreshed in the background while the old one is still used. */
#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"
#include "kube/jb_kube.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"

#define FILES_MAX   64
#define TOKENS_MAX  64
#define SECRETS_MAX 64
#define RECHECK_MS  1000
/* A token request may take this long; deliveries that need the token wait for it,
 * nothing else does. */
#define TOKEN_TIMEOUT_MS  15000
#define TOKEN_BODY_MAX    (64 * 1024)
#define TOKEN_BACKOFF_MIN 1000
#define TOKEN_BACKOFF_MAX 60000
/* Refresh this long before expiry (or at half the lifetime of short tokens). */
#define TOKEN_EARLY_MS 30000
/* A Secret that could not be read (missing, forbidden) is asked for again at most
 * this often, however many deliveries need it. */
#define SECRET_ERR_RECHECK_MS 1000

typedef struct file_ent {
    char *path;
    char *value;
    size_t len;
    struct timespec mtime;
    int64_t checked_ms;
    int64_t used_ms;
} file_ent;

typedef struct token_req token_req;

typedef struct token_ent {
    char *key; /* tokenUrl \n clientId \n scope */
    char *token;
    int64_t refresh_ms; /* fetch a new one after this */
    int64_t expires_ms; /* use it until this */
    uint64_t gen;       /* bumped on every fetch */
    bool after_401;     /* this token was fetched because the previous got a 401 */
    int failures;
    int64_t next_try_ms;
    int64_t used_ms;
    token_req *req;           /* the request in progress, NULL: none */
    char why[JB_ERR_MSG_MAX]; /* the last failure (never a secret) */
} token_ent;

/* A value of a Secret: "<ns>/<name>" and key. */
typedef struct secret_ent {
    char *ns, *name, *key;
    char *value; /* NULL: none (not read yet, or the last read failed) */
    size_t len;
    char why[JB_ERR_MSG_MAX]; /* the last failure, "" none */
    bool pending;             /* a read is queued or running */
    int64_t fetched_ms;       /* when the last answer came */
    int64_t used_ms;
} secret_ent;

/* A read for the reader worker, and its answer back (a jb_mailbox request). */
typedef struct secret_job {
    secret_ent *e; /* loop side only: which entry it answers */
    char *ns, *name, *key;
    jb_status st;
    char *value;
    size_t len;
    char why[JB_ERR_MSG_MAX];
} secret_job;

struct jb_dauth_wait {
    jb_dauth_wait *next;
    const void *slot; /* the token_ent or secret_ent waited for */
    uint64_t round;
    jb_dauth_resume_fn fn;
    void *ud;
};

struct jb_dauth {
    const jb_cfg *cfg;
    struct event_base *base;
    jb_dhttp *http;
    file_ent files[FILES_MAX];
    token_ent tokens[TOKENS_MAX];
    secret_ent secrets[SECRETS_MAX];
    jb_dauth_wait *waiters;
    uint64_t round;

    /* The Secret reader (shared by every loop) answers this loop's requests (at
     * most SECRETS_MAX: one per pending entry) into answers, a mailbox on the
     * loop. */
    jb_dsecrets *reader;
    jb_mailbox *answers;
    bool destroying; /* answers drained at destroy only free their job */
};

/* The Secret reader: one worker for the process, started with the first Secret
 * any loop needs. ks and kerr are the worker's alone; mu guards the start. */
struct jb_dsecrets {
    const jb_cfg *cfg;
    size_t loops;
    pthread_mutex_t mu;
    jb_worker *w;
    atomic_bool stop;
    jb_kube_secrets *ks;
    bool ks_tried;
    jb_err kerr;
};

struct token_req {
    jb_dauth *a;
    token_ent *t;
    jb_dhttp_req *http;
    jb_capbuf body;
    char *form;
    struct curl_slist *hdrs; /* lent to the request, like form */
    char *shown;             /* tokenUrl without userinfo */
};

/* Nothing posts requests to the answers mailbox: it only receives replies. */
static void no_request(jb_mail *m, void *ud)
{
    (void)m;
    (void)ud;
}

jb_dsecrets *jb_dsecrets_create(const jb_cfg *cfg, size_t loops)
{
    jb_dsecrets *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->loops = loops;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

/* A request the worker never handled: it owes no answer, so its job is freed here. */
static void dispose_request(jb_mail *m, void *ud);

void jb_dsecrets_stop(jb_dsecrets *r)
{
    if (r == NULL)
        return;
    /* An API request in progress sees stop. */
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->mu);
    jb_worker *w = r->w;
    r->w = NULL;
    pthread_mutex_unlock(&r->mu);
    jb_worker_stop(w, dispose_request, NULL);
}

void jb_dsecrets_destroy(jb_dsecrets *r)
{
    if (r == NULL)
        return;
    jb_dsecrets_stop(r);
    jb_kube_secrets_destroy(r->ks);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

jb_dauth *jb_dauth_create(struct event_base *base, jb_dhttp *http, jb_dsecrets *reader,
                          const jb_cfg *cfg)
{
    jb_dauth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->reader = reader;
    a->cfg = cfg;
    a->base = base;
    a->http = http;
    jb_err err = {{0}};
    if (jb_mailbox_create(SECRETS_MAX, &a->answers, &err) != JB_OK ||
        jb_mailbox_attach(a->answers, base, no_request, NULL) != JB_OK) {
        jb_dauth_destroy(a);
        return NULL;
    }
    return a;
}

static void file_clear(file_ent *f)
{
    free(f->path);
    jb_secret_free(f->value);
    memset(f, 0, sizeof(*f));
}

/* Frees a header list whose lines hold credentials, wiping them first. */
static void free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *x = l; x != NULL; x = x->next)
        explicit_bzero(x->data, strlen(x->data));
    curl_slist_free_all(l);
}

static void token_req_free(token_req *r)
{
    if (r == NULL)
        return;
    free(r->form);
    free_wiped(r->hdrs); /* Authorization: Basic with the client secret */
    free(r->shown);
    if (r->body.data != NULL)
        jb_secret_free(r->body.data);
    free(r);
}

static void token_clear(token_ent *t)
{
    free(t->key);
    jb_secret_free(t->token);
    /* The request is the HTTP handle's to cancel (jb_dhttp_destroy); its record is
     * ours. */
    token_req_free(t->req);
    memset(t, 0, sizeof(*t));
}

static void secret_clear(secret_ent *e)
{
    free(e->ns);
    free(e->name);
    free(e->key);
    jb_secret_free(e->value);
    memset(e, 0, sizeof(*e));
}

static void job_free(secret_job *j)
{
    free(j->ns);
    free(j->name);
    free(j->key);
    jb_secret_free(j->value);
    free(j);
}

/* A request the worker never handled: it owes no answer, so its job is freed here. */
static void dispose_request(jb_mail *m, void *ud)
{
    (void)ud;
    job_free(m->ptr);
}

void jb_dauth_destroy(jb_dauth *a)
{
    if (a == NULL)
        return;
    /* The worker first (an API request in progress sees stop), then the answers it
     * gave: their reply functions only free the job now. */
    a->destroying = true;
    jb_mailbox_destroy(a->answers, NULL, NULL);
    while (a->waiters != NULL) {
        jb_dauth_wait *w = a->waiters;
        a->waiters = w->next;
        free(w);
    }
    for (size_t i = 0; i < FILES_MAX; i++)
        file_clear(&a->files[i]);
    for (size_t i = 0; i < TOKENS_MAX; i++)
        token_clear(&a->tokens[i]);
    for (size_t i = 0; i < SECRETS_MAX; i++)
        secret_clear(&a->secrets[i]);
    free(a);
}

/* ----------------------------------------------------------------- waiting */

/* How one jb_dauth_prepare call waits: whom to resume, and the wait it set up. */
typedef struct waitctx {
    jb_dauth_resume_fn fn;
    void *ud;
    jb_dauth_wait *wait; /* set when the call has to wait */
} waitctx;

static jb_status wait_for(jb_dauth *a, const void *slot, waitctx *w, jb_err *err)
{
    jb_dauth_wait *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    n->slot = slot;
    n->round = a->round;
    n->fn = w->fn;
    n->ud = w->ud;
    n->next = a->waiters;
    a->waiters = n;
    w->wait = n;
    return JB_OK;
}

void jb_dauth_cancel(jb_dauth *a, jb_dauth_wait *w)
{
    for (jb_dauth_wait **p = &a->waiters; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            free(w);
            return;
        }
    }
}

/* Resumes everyone who waited for slot before now. A resumed delivery may wait
 * again (on this slot, too: a new round), or cancel waits: the list is searched
 * from the start after each call. */
static void resume(jb_dauth *a, const void *slot)
{
    uint64_t round = ++a->round;
    for (;;) {
        jb_dauth_wait **p = &a->waiters;
        while (*p != NULL && ((*p)->slot != slot || (*p)->round >= round))
            p = &(*p)->next;
        if (*p == NULL)
            return;
        jb_dauth_wait *w = *p;
        *p = w->next;
        jb_dauth_resume_fn fn = w->fn;
        void *ud = w->ud;
        free(w);
        fn(ud);
    }
}

static bool has_waiters(const jb_dauth *a, const void *slot)
{
    for (const jb_dauth_wait *w = a->waiters; w != NULL; w = w->next)
        if (w->slot == slot)
            return true;
    return false;
}

/* ------------------------------------------------------------ secret files */

/* The content of a secret file, from the cache while it has not changed. The
 * pointer is valid until the next call. */
static const char *secret_of(jb_dauth *a, const char *path, size_t *len, jb_err *err)
{
    int64_t now = jb_now_monotonic_ns() / 1000000;
    file_ent *f = NULL, *victim = &a->files[0];
    for (size_t i = 0; i < FILES_MAX && f == NULL; i++) {
        if (a->files[i].path != NULL && strcmp(a->files[i].path, path) == 0)
            f = &a->files[i];
        else if (a->files[i].used_ms < victim->used_ms)
            victim = &a->files[i];
    }
    struct stat sb;
    if (f != NULL && now - f->checked_ms < RECHECK_MS)
        goto hit;
    if (stat(path, &sb) != 0) {
        jb_err_set(err, JB_ERR_CONFIG, "cannot read %s", path);
        return NULL;
    }
    if (f != NULL && f->mtime.tv_sec == sb.st_mtim.tv_sec &&
        f->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
        f->checked_ms = now;
        goto hit;
    }
    char *value = NULL;
    size_t vlen = 0;
    if (jb_secret_read_file(path, &value, &vlen, err) != JB_OK)
        return NULL;
    if (f == NULL) {
        file_clear(victim);
        f = victim;
        if ((f->path = strdup(path)) == NULL) {
            jb_secret_free(value);
            jb_err_set(err, JB_ERR_NOMEM, "out of memory");
            return NULL;
        }
    }
    jb_secret_free(f->value);
    f->value = value;
    f->len = vlen;
    f->mtime = sb.st_mtim;
    f->checked_ms = now;
hit:
    f->used_ms = now;
    *len = f->len;
    return f->value;
}

/* -------------------------------------------------------- Kubernetes Secrets */

/* The worker: one GET of the Secret, answered to the loop. The API client is made
 * at the first request and kept. */
static void read_secret(jb_mail *m, void *ud)
{
    jb_dsecrets *a = ud;
    secret_job *j = m->ptr;
    if (!a->ks_tried) {
        a->ks_tried = true;
        if (jb_kube_secrets_create(a->cfg, &a->stop, &a->ks, &a->kerr) != JB_OK)
            jb_log(JB_LOG_ERROR, "dispatcher", "cannot read Secrets: no Kubernetes API access",
                   "error", a->kerr.msg, NULL);
    }
    jb_err err = {{0}};
    if (a->ks == NULL)
        j->st = jb_err_set(&err, JB_ERR_CONFIG, "Secret %s/%s: %s", j->ns, j->name, a->kerr.msg);
    else
        j->st = jb_kube_secret_read(a->ks, j->ns, j->name, j->key, &j->value, &j->len, &err);
    if (j->st != JB_OK)
        snprintf(j->why, sizeof(j->why), "%s", err.msg);
    jb_mail_reply(m);
}

static void on_secret_answer(jb_mail *m, void *ud);

/* Queues a read of e (e->pending was false). */
static jb_status secret_fetch(jb_dauth *a, secret_ent *e, jb_err *err)
{
    jb_dsecrets *r = a->reader;
    pthread_mutex_lock(&r->mu);
    jb_status st = JB_OK;
    if (r->w == NULL && !atomic_load(&r->stop))
        st = jb_worker_start("jb-disp-secret", SECRETS_MAX * r->loops, read_secret, NULL, 0, r,
                             &r->w, err);
    else if (r->w == NULL)
        st = jb_err_set(err, JB_ERR_CLOSED, "stopping");
    jb_worker *w = r->w;
    pthread_mutex_unlock(&r->mu);
    if (st != JB_OK)
        return st;
    secret_job *j = calloc(1, sizeof(*j));
    if (j != NULL) {
        j->ns = strdup(e->ns);
        j->name = strdup(e->name);
        j->key = strdup(e->key);
    }
    if (j == NULL || j->ns == NULL || j->name == NULL || j->key == NULL) {
        if (j != NULL)
            job_free(j);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    j->e = e;
    jb_mail m = {.ptr = j, .reply_to = a->answers, .reply = on_secret_answer, .reply_ud = a};
    jb_status posted = jb_mailbox_post(jb_worker_mailbox(w), &m);
    if (posted != JB_OK) { /* cannot happen: one request per entry, SECRETS_MAX entries */
        job_free(j);
        return jb_err_set(err, posted, "the Secret reader is busy");
    }
    e->pending = true;
    return JB_OK;
}

static void secret_answer(jb_dauth *a, secret_job *j)
{
    secret_ent *e = j->e;
    int64_t now = jb_now_monotonic_ns() / 1000000;
    e->pending = false;
    e->fetched_ms = now;
    if (j->st == JB_OK) {
        jb_secret_free(e->value);
        e->value = j->value;
        e->len = j->len;
        j->value = NULL;
        e->why[0] = '\0';
    } else if (j->st == JB_ERR_IO && e->value != NULL) {
        /* The API server is unreachable: keep delivering with what was read. */
        jb_log(JB_LOG_WARN, "dispatcher", "cannot refresh Secret; the last value stays in use",
               "error", j->why, NULL);
    } else {
        jb_secret_free(e->value);
        e->value = NULL;
        e->len = 0;
        snprintf(e->why, sizeof(e->why), "%s", j->why);
        jb_log(JB_LOG_WARN, "dispatcher", "cannot read Secret", "error", j->why, NULL);
    }
    resume(a, e);
}

static void on_secret_answer(jb_mail *m, void *ud)
{
    jb_dauth *a = ud;
    if (!a->destroying)
        secret_answer(a, m->ptr);
    job_free(m->ptr);
}

/* The value of Secret reference ref ("<name>/<key>") in namespace ns. NULL with
 * w->wait set: being read, the caller is resumed later; NULL without: err says
 * why. The pointer is valid until the next call. */
static const char *secret_value(jb_dauth *a, const char *ns, const char *ref, size_t *len,
                                waitctx *w, jb_err *err)
{
    const char *slash = strchr(ref, '/');
    size_t nlen = slash ? (size_t)(slash - ref) : 0;
    const char *key = slash ? slash + 1 : "";
    int64_t now = jb_now_monotonic_ns() / 1000000;
    secret_ent *e = NULL, *victim = NULL;
    for (size_t i = 0; i < SECRETS_MAX && e == NULL; i++) {
        secret_ent *x = &a->secrets[i];
        if (x->ns != NULL && strcmp(x->ns, ns) == 0 && strlen(x->name) == nlen &&
            strncmp(x->name, ref, nlen) == 0 && strcmp(x->key, key) == 0)
            e = x;
    }
    /* Only a miss looks for a victim (has_waiters walks the waiters). */
    for (size_t i = 0; i < SECRETS_MAX && e == NULL; i++) {
        secret_ent *x = &a->secrets[i];
        if (!x->pending && (victim == NULL || x->used_ms < victim->used_ms) && !has_waiters(a, x))
            victim = x;
    }
    if (e == NULL) {
        if (victim == NULL) {
            jb_err_set(err, JB_ERR_FULL, "more than %d Secrets are being read at once",
                       SECRETS_MAX);
            return NULL;
        }
        secret_clear(victim);
        e = victim;
        e->ns = strdup(ns);
        e->name = strndup(ref, nlen);
        e->key = strdup(key);
        if (e->ns == NULL || e->name == NULL || e->key == NULL) {
            secret_clear(e);
            jb_err_set(err, JB_ERR_NOMEM, "out of memory");
            return NULL;
        }
    }
    e->used_ms = now;
    bool answered = e->fetched_ms != 0;
    int64_t every = e->value != NULL ? a->cfg->kube_secret_refresh_ms : SECRET_ERR_RECHECK_MS;
    if (!e->pending && (!answered || now - e->fetched_ms >= every) &&
        secret_fetch(a, e, err) != JB_OK)
        return NULL;
    if (e->value != NULL) {
        /* A refresh runs in the background; this value is still good. */
        *len = e->len;
        return e->value;
    }
    if (e->pending) {
        wait_for(a, e, w, err);
        return NULL;
    }
    jb_err_set(err, JB_ERR_CONFIG, "%s", e->why);
    return NULL;
}

/* A value from a file or a Secret, whichever is named. */
static const char *value_of(jb_dauth *a, const char *ns, const char *file, const char *ref,
                            size_t *len, waitctx *w, jb_err *err)
{
    if (file != NULL)
        return secret_of(a, file, len, err);
    return secret_value(a, ns, ref, len, w, err);
}

/* ------------------------------------------------------------ headers */

static bool add_header(struct curl_slist **h, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *line = malloc(n + v + 3);
    if (line == NULL)
        return false;
    memcpy(line, name, n);
    memcpy(line + n, ": ", 2);
    memcpy(line + n + 2, value, v + 1);
    struct curl_slist *l = curl_slist_append(*h, line);
    jb_secret_free(line);
    if (l == NULL)
        return false;
    *h = l;
    return true;
}

/* "Basic base64(user:password)" into *out (free with jb_secret_free). */
static jb_status basic_value(const char *user, size_t ulen, const char *pw, size_t plen, char **out)
{
    char *pair = malloc(ulen + 1 + plen + 1);
    char *b64 = NULL;
    size_t blen = 0;
    if (pair == NULL)
        return JB_ERR_NOMEM;
    memcpy(pair, user, ulen);
    pair[ulen] = ':';
    memcpy(pair + ulen + 1, pw, plen);
    pair[ulen + 1 + plen] = '\0';
    jb_status st = jb_base64_encode((const uint8_t *)pair, ulen + 1 + plen, &b64, &blen);
    jb_secret_free(pair);
    if (st != JB_OK)
        return JB_ERR_NOMEM;
    char *v = malloc(blen + 7);
    if (v != NULL) {
        memcpy(v, "Basic ", 6);
        memcpy(v + 6, b64, blen + 1);
    }
    jb_secret_free(b64);
    *out = v;
    return v != NULL ? JB_OK : JB_ERR_NOMEM;
}

static jb_status basic_header(jb_dauth *a, const char *ns, const jb_sub_auth *au,
                              struct curl_slist **h, waitctx *w, jb_err *err)
{
    size_t plen = 0;
    const char *pw =
        value_of(a, ns, au->basic_password_file, au->basic_password_secret, &plen, w, err);
    if (pw == NULL)
        return w->wait != NULL ? JB_OK : JB_ERR_CONFIG;
    char *v = NULL;
    bool ok = basic_value(au->basic_username, strlen(au->basic_username), pw, plen, &v) == JB_OK &&
              add_header(h, "Authorization", v);
    jb_secret_free(v);
    return ok ? JB_OK : jb_err_set(err, JB_ERR_NOMEM, "out of memory");
}

static jb_status bearer_header(struct curl_slist **h, const char *token, jb_err *err)
{
    size_t t = strlen(token);
    char *v = malloc(t + 8);
    if (v == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    memcpy(v, "Bearer ", 7);
    memcpy(v + 7, token, t + 1);
    bool ok = add_header(h, "Authorization", v);
    jb_secret_free(v);
    return ok ? JB_OK : jb_err_set(err, JB_ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ OAuth2 */

static char *token_key(const jb_sub_auth *au)
{
    size_t n =
        strlen(au->token_url) + strlen(au->client_id) + (au->scope ? strlen(au->scope) : 0) + 3;
    char *k = malloc(n);
    if (k != NULL)
        snprintf(k, n, "%s\n%s\n%s", au->token_url, au->client_id, au->scope ? au->scope : "");
    return k;
}

/* The token entry of au's client. With create, a missing one takes the place of
 * the least recently used entry that nobody waits for (NULL when all are busy:
 * err says so). */
static token_ent *find_token(jb_dauth *a, const jb_sub_auth *au, bool create, jb_err *err)
{
    char *key = token_key(au);
    if (key == NULL) {
        jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    token_ent *t = NULL, *victim = NULL;
    for (size_t i = 0; i < TOKENS_MAX && t == NULL; i++)
        if (a->tokens[i].key != NULL && strcmp(a->tokens[i].key, key) == 0)
            t = &a->tokens[i];
    /* Only a miss looks for a victim (has_waiters walks the waiters). */
    for (size_t i = 0; i < TOKENS_MAX && t == NULL && create; i++) {
        token_ent *x = &a->tokens[i];
        if (x->req == NULL && (victim == NULL || x->used_ms < victim->used_ms) &&
            !has_waiters(a, x))
            victim = x;
    }
    if (t == NULL && create && victim == NULL)
        jb_err_set(err, JB_ERR_FULL, "more than %d OAuth2 tokens are being fetched at once",
                   TOKENS_MAX);
    if (t == NULL && create && victim != NULL) {
        token_clear(victim);
        t = victim;
        t->key = key;
        key = NULL;
    }
    free(key);
    return t;
}

/* Parses {"access_token":..,"expires_in":..}. Errors never quote the answer (it
 * might echo the secret). */
static jb_status parse_token(const token_req *r, const jb_dhttp_result *res, char **token,
                             int64_t *life_ms, jb_err *err)
{
    if (res->status == 0)
        return jb_err_set(err, JB_ERR_NOT_CONNECTED, "token endpoint %s: %s", r->shown,
                          res->error[0] ? res->error : "no answer");
    if (res->status != 200)
        return jb_err_set(err, JB_ERR_NOT_CONNECTED, "token endpoint %s answered %d", r->shown,
                          res->status);
    cJSON *j = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    jb_status st;
    if (cJSON_IsString(at) && at->valuestring[0] != '\0' &&
        strpbrk(at->valuestring, "\r\n") == NULL && (*token = strdup(at->valuestring))) {
        double s = cJSON_IsNumber(ex) && ex->valuedouble > 0 ? ex->valuedouble : 300;
        *life_ms = s > 86400 ? 86400000 : (int64_t)(s * 1000);
        st = JB_OK;
    } else {
        st = jb_err_set(err, JB_ERR_NOT_CONNECTED,
                        "token endpoint %s: answer without an access_token", r->shown);
    }
    if (cJSON_IsString(at))
        explicit_bzero(at->valuestring, strlen(at->valuestring));
    cJSON_Delete(j);
    return st;
}

static void on_token_done(void *ud, const jb_dhttp_result *res)
{
    token_req *r = ud;
    jb_dauth *a = r->a;
    token_ent *t = r->t;
    t->req = NULL;
    int64_t now = jb_now_monotonic_ns() / 1000000;
    char *tok = NULL;
    int64_t life = 0;
    jb_err err = {{0}};
    if (parse_token(r, res, &tok, &life, &err) == JB_OK) {
        jb_secret_free(t->token);
        t->token = tok;
        t->failures = 0;
        t->why[0] = '\0';
        t->gen++;
        int64_t early = life / 2 < TOKEN_EARLY_MS ? life / 2 : TOKEN_EARLY_MS;
        t->refresh_ms = now + life - early;
        t->expires_ms = now + life;
    } else {
        /* Backoff: the deliveries of this client wait instead of hammering a failing
         * endpoint. */
        int64_t wait = TOKEN_BACKOFF_MIN << (t->failures < 6 ? t->failures : 6);
        t->next_try_ms = now + (wait > TOKEN_BACKOFF_MAX ? TOKEN_BACKOFF_MAX : wait);
        t->failures++;
        snprintf(t->why, sizeof(t->why), "%s", err.msg);
        jb_log(JB_LOG_WARN, "dispatcher", "token request failed", "error", err.msg, NULL);
    }
    token_req_free(r);
    resume(a, t);
}

/* Starts the client-credentials grant (client_secret_basic, RFC 6749 2.3.1: id and
 * secret form-encoded, then joined for HTTP Basic) as one more request on the
 * dispatcher's curl multi handle. */
static jb_status token_start(jb_dauth *a, token_ent *t, const jb_sub_auth *au, const char *secret,
                             size_t slen, jb_err *err)
{
    jb_status st = JB_ERR_NOMEM;
    token_req *r = calloc(1, sizeof(*r));
    CURL *e = curl_easy_init();
    char *id = e ? curl_easy_escape(e, au->client_id, 0) : NULL;
    char *sec = e ? curl_easy_escape(e, secret, (int)slen) : NULL;
    char *scope = e && au->scope ? curl_easy_escape(e, au->scope, 0) : NULL;
    char *basic = NULL;
    struct curl_slist *hdrs = NULL;
    if (r == NULL || id == NULL || sec == NULL || (au->scope != NULL && scope == NULL) ||
        basic_value(id, strlen(id), sec, strlen(sec), &basic) != JB_OK)
        goto out;
    size_t flen = 40 + (scope ? strlen(scope) : 0);
    r->form = malloc(flen);
    r->shown = jb_redact_url(au->token_url);
    if (r->form == NULL || r->shown == NULL)
        goto out;
    snprintf(r->form, flen, "grant_type=client_credentials%s%s", scope ? "&scope=" : "",
             scope ? scope : "");
    r->a = a;
    r->t = t;
    r->body.max = TOKEN_BODY_MAX;
    if (!add_header(&hdrs, "Authorization", basic) ||
        !add_header(&hdrs, "Content-Type", "application/x-www-form-urlencoded") ||
        !add_header(&hdrs, "Accept", "application/json"))
        goto out;
    jb_dhttp_capture(a->http, &r->body);
    r->hdrs = hdrs;
    hdrs = NULL;
    st = jb_dhttp_post(a->http, au->token_url, r->hdrs, r->form, strlen(r->form), TOKEN_TIMEOUT_MS,
                       on_token_done, r, &r->http);
    if (st == JB_OK) {
        t->req = r;
        r = NULL;
    }
out:
    if (st != JB_OK)
        jb_err_set(err, st, st == JB_ERR_NOMEM ? "out of memory" : "cannot start a token request");
    token_req_free(r);
    free_wiped(hdrs);
    jb_secret_free(basic);
    if (sec != NULL) {
        explicit_bzero(sec, strlen(sec));
        curl_free(sec);
    }
    curl_free(id);
    curl_free(scope);
    if (e != NULL)
        curl_easy_cleanup(e);
    return st;
}

static jb_status oauth_header(jb_dauth *a, const char *ns, const jb_sub_auth *au,
                              struct curl_slist **h, uint64_t *gen, waitctx *w, jb_err *err)
{
    int64_t now = jb_now_monotonic_ns() / 1000000;
    token_ent *t = find_token(a, au, true, err);
    if (t == NULL)
        return JB_ERR_FULL; /* or out of memory: err says which; retried either way */
    t->used_ms = now;
    bool usable = t->token != NULL && now < t->expires_ms;
    bool due = t->token == NULL || now >= t->refresh_ms;
    if (due && t->req == NULL && now >= t->next_try_ms) {
        size_t slen = 0;
        const char *secret = au->client_secret;
        if (secret != NULL)
            slen = strlen(secret);
        else if ((secret = secret_value(a, ns, au->client_secret_secret, &slen, w, err)) == NULL)
            return w->wait != NULL ? JB_OK : JB_ERR_CONFIG;
        jb_status st = token_start(a, t, au, secret, slen, err);
        if (st != JB_OK)
            return st;
    }
    if (usable) {
        /* A refresh may be running: this token is still good meanwhile. */
        *gen = t->gen;
        return bearer_header(h, t->token, err);
    }
    if (t->req != NULL)
        return wait_for(a, t, w, err);
    return jb_err_set(err, JB_ERR_NOT_CONNECTED, "%s; next token request in %lld ms",
                      t->why[0] ? t->why : "token endpoint failed",
                      (long long)(t->next_try_ms - now));
}

bool jb_dauth_unauthorized(jb_dauth *a, const jb_sub_auth *au, uint64_t gen)
{
    if (!au->oauth2)
        return false;
    jb_err err;
    token_ent *t = find_token(a, au, false, &err);
    if (t == NULL || t->gen != gen)
        return t != NULL; /* a newer token exists already: try it */
    if (t->after_401)
        return false; /* a fresh token was refused too: the credentials are wrong */
    /* Requests still out with this token see a newer generation when their 401
     * comes back, and retry instead of counting as a second refusal. */
    jb_secret_free(t->token);
    t->token = NULL;
    t->after_401 = true;
    t->gen++;
    return true;
}

void jb_dauth_accepted(jb_dauth *a, const jb_sub_auth *au, uint64_t gen)
{
    if (!au->oauth2)
        return;
    jb_err err;
    token_ent *t = find_token(a, au, false, &err);
    if (t != NULL && t->gen == gen)
        t->after_401 = false;
}

/* ------------------------------------------------------------- signature */

/* Standard Webhooks: "whsec_<base64>" secrets are the decoded bytes, any other
 * content is used as it is. */
static jb_status sign(jb_dauth *a, const char *ns, const jb_sub_auth *au, const char *msg_id,
                      const void *body, size_t len, struct curl_slist **h, waitctx *w, jb_err *err)
{
    size_t slen = 0;
    const char *secret =
        value_of(a, ns, au->signing_secret_file, au->signing_secret_secret, &slen, w, err);
    if (secret == NULL)
        return w->wait != NULL ? JB_OK : JB_ERR_CONFIG;
    const char *what =
        au->signing_secret_file ? au->signing_secret_file : au->signing_secret_secret;
    uint8_t *key = NULL;
    size_t klen = 0;
    if (slen > 6 && strncmp(secret, "whsec_", 6) == 0) {
        if (jb_base64_decode(secret + 6, slen - 6, &key, &klen) != JB_OK)
            return jb_err_set(err, JB_ERR_CONFIG, "%s: whsec_ secret is not base64", what);
    }
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)(jb_now_wall_ms() / 1000));
    unsigned char mac[32];
    unsigned int maclen = 0;
    /* id.timestamp.body, streamed through one HMAC: no copy of the body. */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    bool ok = c != NULL &&
              EVP_MAC_init(c, key ? key : (const unsigned char *)secret, key ? klen : slen,
                           params) == 1 &&
              EVP_MAC_update(c, (const unsigned char *)msg_id, strlen(msg_id)) == 1 &&
              EVP_MAC_update(c, (const unsigned char *)".", 1) == 1 &&
              EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) == 1 &&
              EVP_MAC_update(c, (const unsigned char *)".", 1) == 1 &&
              (len == 0 || EVP_MAC_update(c, body, len) == 1) &&
              EVP_MAC_final(c, mac, &outl, sizeof(mac)) == 1;
    maclen = (unsigned)outl;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    if (key != NULL) {
        memset(key, 0, klen);
        free(key);
    }
    char *b64 = NULL;
    size_t blen = 0;
    if (!ok || jb_base64_encode(mac, maclen, &b64, &blen) != JB_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "cannot sign");
    char sig[96];
    snprintf(sig, sizeof(sig), "v1,%s", b64);
    free(b64);
    ok = add_header(h, "webhook-id", msg_id) && add_header(h, "webhook-timestamp", ts) &&
         add_header(h, "webhook-signature", sig);
    return ok ? JB_OK : jb_err_set(err, JB_ERR_NOMEM, "out of memory");
}

/* Frees a header list whose lines held credentials, clearing them first. */

jb_status jb_dauth_prepare(jb_dauth *a, const char *ns, const jb_sub_auth *au, const char *msg_id,
                           const void *body, size_t len, struct curl_slist **headers,
                           uint64_t *token_gen, jb_dauth_resume_fn fn, void *ud,
                           jb_dauth_wait **wait, jb_err *err)
{
    waitctx w = {fn, ud, NULL};
    struct curl_slist *extra = NULL;
    uint64_t gen = 0;
    jb_status st = JB_OK;
    *token_gen = 0;
    *wait = NULL;
    /* Each value is turned into its header before the next is looked up: a
     * cached value's pointer is valid until the next look-up only. */
    if (au->bearer_token_file != NULL || au->bearer_token_secret != NULL) {
        size_t n = 0;
        const char *tok =
            value_of(a, ns, au->bearer_token_file, au->bearer_token_secret, &n, &w, err);
        st = tok != NULL ? bearer_header(&extra, tok, err)
                         : (w.wait != NULL ? JB_OK : JB_ERR_CONFIG);
    } else if (au->basic_username != NULL) {
        st = basic_header(a, ns, au, &extra, &w, err);
    } else if (au->oauth2) {
        st = oauth_header(a, ns, au, &extra, &gen, &w, err);
    }
    if (st == JB_OK && w.wait == NULL &&
        (au->signing_secret_file != NULL || au->signing_secret_secret != NULL))
        st = sign(a, ns, au, msg_id, body, len, &extra, &w, err);
    for (struct curl_slist *x = extra; st == JB_OK && w.wait == NULL && x != NULL; x = x->next) {
        struct curl_slist *l = curl_slist_append(*headers, x->data);
        if (l == NULL)
            st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        else
            *headers = l;
    }
    free_wiped(extra);
    if (st != JB_OK && w.wait != NULL) {
        jb_dauth_cancel(a, w.wait);
        w.wait = NULL;
    }
    if (st == JB_OK && w.wait == NULL)
        *token_gen = gen;
    *wait = w.wait;
    return st;
}
