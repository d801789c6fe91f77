/* Credentials for sinks: the Authorization header (an OAuth2 client-credentials
 * token, a bearer token or basic credentials from files) and Standard Webhooks
 * signature headers. Files are re-read when they change (checked at most once per
 * second), so a rotated secret takes effect without a restart. Loop thread only.
 *
 * The OAuth2 token is fetched with a blocking request on the loop thread (bounded
 * by TOKEN_TIMEOUT_MS, and after a failure not tried again before a backoff), then
 * cached until shortly before it expires. */
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/jb_common.h"
#include "dispatcher/disp_internal.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"

#define FILES_MAX         64
#define TOKENS_MAX        64
#define RECHECK_MS        1000
#define TOKEN_TIMEOUT_MS  5000
#define TOKEN_BODY_MAX    (64 * 1024)
#define TOKEN_BACKOFF_MIN 1000
#define TOKEN_BACKOFF_MAX 60000
/* Refresh this long before expiry (or at half the lifetime of short tokens). */
#define TOKEN_EARLY_MS 30000

typedef struct file_ent {
    char *path;
    char *value;
    size_t len;
    struct timespec mtime;
    int64_t checked_ms;
    int64_t used_ms;
} file_ent;

typedef struct token_ent {
    char *key; /* tokenUrl \n clientId \n scope */
    char *token;
    int64_t refresh_ms; /* fetch a new one after this */
    uint64_t gen;       /* bumped on every fetch */
    bool after_401;     /* this token was fetched because the previous got a 401 */
    int failures;
    int64_t next_try_ms;
    int64_t used_ms;
} token_ent;

struct jb_dauth {
    const jb_dguard *guard;
    file_ent files[FILES_MAX];
    token_ent tokens[TOKENS_MAX];
};

jb_dauth *jb_dauth_create(const jb_dguard *guard)
{
    jb_dauth *a = calloc(1, sizeof(*a));
    if (a != NULL)
        a->guard = guard;
    return a;
}

static void file_clear(file_ent *f)
{
    free(f->path);
    jb_secret_free(f->value);
    memset(f, 0, sizeof(*f));
}

static void token_clear(token_ent *t)
{
    free(t->key);
    jb_secret_free(t->token);
    memset(t, 0, sizeof(*t));
}

void jb_dauth_destroy(jb_dauth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < FILES_MAX; i++)
        file_clear(&a->files[i]);
    for (size_t i = 0; i < TOKENS_MAX; i++)
        token_clear(&a->tokens[i]);
    free(a);
}

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

static jb_status basic_header(jb_dauth *a, const jb_sub_auth *au, struct curl_slist **h,
                              jb_err *err)
{
    size_t plen = 0;
    const char *pw = secret_of(a, au->basic_password_file, &plen, err);
    if (pw == NULL)
        return JB_ERR_CONFIG;
    size_t ulen = strlen(au->basic_username);
    char *pair = malloc(ulen + 1 + plen + 1);
    char *b64 = NULL;
    size_t blen = 0;
    if (pair == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    memcpy(pair, au->basic_username, ulen);
    pair[ulen] = ':';
    memcpy(pair + ulen + 1, pw, plen + 1);
    jb_status st = jb_base64_encode((const uint8_t *)pair, ulen + 1 + plen, &b64, &blen);
    jb_secret_free(pair);
    if (st != JB_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    char *v = malloc(blen + 7);
    if (v != NULL) {
        memcpy(v, "Basic ", 6);
        memcpy(v + 6, b64, blen + 1);
    }
    bool ok = v != NULL && add_header(h, "Authorization", v);
    jb_secret_free(v);
    jb_secret_free(b64);
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

/* POSTs the client-credentials grant (client_secret_basic, RFC 6749 2.3.1) and
 * parses {"access_token":..,"expires_in":..}. Errors never quote the secret or the
 * answer (which might echo it). */
static jb_status fetch_token(jb_dauth *a, const jb_sub_auth *au, char **token, int64_t *life_ms,
                             jb_err *err)
{
    jb_status st = JB_ERR_NOMEM;
    jb_capbuf b = {.max = TOKEN_BODY_MAX};
    jb_dguard_ctx gc = {a->guard, false, ""};
    CURL *e = curl_easy_init();
    char *id = e ? curl_easy_escape(e, au->client_id, 0) : NULL;
    char *secret = e ? curl_easy_escape(e, au->client_secret, 0) : NULL;
    char *scope = e && au->scope ? curl_easy_escape(e, au->scope, 0) : NULL;
    char form[2048];
    if (id == NULL || secret == NULL || (au->scope != NULL && scope == NULL)) {
        jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(form, sizeof(form), "grant_type=client_credentials%s%s", scope ? "&scope=" : "",
             scope ? scope : "");
    curl_easy_setopt(e, CURLOPT_URL, au->token_url);
    jb_dguard_apply(&gc, e);
    curl_easy_setopt(e, CURLOPT_USERNAME, id);
    curl_easy_setopt(e, CURLOPT_PASSWORD, secret);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, form);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)TOKEN_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, jb_capbuf_append);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    char *shown = jb_redact_url(au->token_url);
    if (rc != CURLE_OK) {
        st = jb_err_set(err, JB_ERR_NOT_CONNECTED, "token endpoint %s: %s", shown ? shown : "",
                        gc.refused ? gc.why : curl_easy_strerror(rc));
    } else if (status != 200) {
        st = jb_err_set(err, JB_ERR_NOT_CONNECTED, "token endpoint %s answered %ld",
                        shown ? shown : "", status);
    } else {
        cJSON *j = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
        if (cJSON_IsString(at) && at->valuestring[0] != '\0' &&
            strpbrk(at->valuestring, "\r\n") == NULL && (*token = strdup(at->valuestring))) {
            double s = cJSON_IsNumber(ex) && ex->valuedouble > 0 ? ex->valuedouble : 300;
            *life_ms = s > 86400 ? 86400000 : (int64_t)(s * 1000);
            st = JB_OK;
        } else {
            st =
                jb_err_set(err, JB_ERR_NOT_CONNECTED,
                           "token endpoint %s: answer without an access_token", shown ? shown : "");
        }
        cJSON_Delete(j);
    }
    free(shown);
out:
    if (secret != NULL) {
        memset(secret, 0, strlen(secret));
        curl_free(secret);
    }
    curl_free(id);
    curl_free(scope);
    if (e != NULL)
        curl_easy_cleanup(e);
    if (b.data != NULL)
        jb_secret_free(b.data);
    return st;
}

static char *token_key(const jb_sub_auth *au)
{
    size_t n =
        strlen(au->token_url) + strlen(au->client_id) + (au->scope ? strlen(au->scope) : 0) + 3;
    char *k = malloc(n);
    if (k != NULL)
        snprintf(k, n, "%s\n%s\n%s", au->token_url, au->client_id, au->scope ? au->scope : "");
    return k;
}

static token_ent *find_token(jb_dauth *a, const jb_sub_auth *au, bool create)
{
    char *key = token_key(au);
    if (key == NULL)
        return NULL;
    token_ent *t = NULL, *victim = &a->tokens[0];
    for (size_t i = 0; i < TOKENS_MAX && t == NULL; i++) {
        if (a->tokens[i].key != NULL && strcmp(a->tokens[i].key, key) == 0)
            t = &a->tokens[i];
        else if (a->tokens[i].used_ms < victim->used_ms)
            victim = &a->tokens[i];
    }
    if (t == NULL && create) {
        token_clear(victim);
        t = victim;
        t->key = key;
        key = NULL;
    }
    free(key);
    return t;
}

static jb_status oauth_header(jb_dauth *a, const jb_sub_auth *au, struct curl_slist **h,
                              uint64_t *gen, jb_err *err)
{
    int64_t now = jb_now_monotonic_ns() / 1000000;
    token_ent *t = find_token(a, au, true);
    if (t == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    t->used_ms = now;
    if (t->token == NULL || now >= t->refresh_ms) {
        if (now < t->next_try_ms)
            return jb_err_set(err, JB_ERR_NOT_CONNECTED,
                              "token endpoint failed recently; next try in %lld ms",
                              (long long)(t->next_try_ms - now));
        char *tok = NULL;
        int64_t life = 0;
        jb_status st = fetch_token(a, au, &tok, &life, err);
        if (st != JB_OK) {
            /* Backoff: every delivery of this client waits instead of hammering a
             * failing endpoint from the loop thread. */
            int64_t wait = TOKEN_BACKOFF_MIN << (t->failures < 6 ? t->failures : 6);
            t->next_try_ms = now + (wait > TOKEN_BACKOFF_MAX ? TOKEN_BACKOFF_MAX : wait);
            t->failures++;
            jb_log(JB_LOG_WARN, "dispatcher", "token request failed", "error", err->msg, NULL);
            return st;
        }
        jb_secret_free(t->token);
        t->token = tok;
        t->failures = 0;
        t->gen++;
        int64_t early = life / 2 < TOKEN_EARLY_MS ? life / 2 : TOKEN_EARLY_MS;
        t->refresh_ms = now + life - early;
    }
    *gen = t->gen;
    return bearer_header(h, t->token, err);
}

bool jb_dauth_unauthorized(jb_dauth *a, const jb_sub_auth *au, uint64_t gen)
{
    if (!au->oauth2)
        return false;
    token_ent *t = find_token(a, au, false);
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
    token_ent *t = find_token(a, au, false);
    if (t != NULL && t->gen == gen)
        t->after_401 = false;
}

/* ------------------------------------------------------------- signature */

/* Standard Webhooks: "whsec_<base64>" secrets are the decoded bytes, any other
 * content is used as it is. */
static jb_status sign(jb_dauth *a, const jb_sub_auth *au, const char *msg_id, const void *body,
                      size_t len, struct curl_slist **h, jb_err *err)
{
    size_t slen = 0;
    const char *secret = secret_of(a, au->signing_secret_file, &slen, err);
    if (secret == NULL)
        return JB_ERR_CONFIG;
    uint8_t *key = NULL;
    size_t klen = 0;
    if (slen > 6 && strncmp(secret, "whsec_", 6) == 0) {
        if (jb_base64_decode(secret + 6, slen - 6, &key, &klen) != JB_OK)
            return jb_err_set(err, JB_ERR_CONFIG, "%s: whsec_ secret is not base64",
                              au->signing_secret_file);
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

jb_status jb_dauth_prepare(jb_dauth *a, const jb_sub_auth *au, const char *msg_id, const void *body,
                           size_t len, struct curl_slist **headers, uint64_t *token_gen,
                           jb_err *err)
{
    jb_status st = JB_OK;
    *token_gen = 0;
    if (au->bearer_token_file != NULL) {
        size_t n = 0;
        const char *tok = secret_of(a, au->bearer_token_file, &n, err);
        st = tok != NULL ? bearer_header(headers, tok, err) : JB_ERR_CONFIG;
    } else if (au->basic_username != NULL) {
        st = basic_header(a, au, headers, err);
    } else if (au->oauth2) {
        st = oauth_header(a, au, headers, token_gen, err);
    }
    if (st == JB_OK && au->signing_secret_file != NULL)
        st = sign(a, au, msg_id, body, len, headers, err);
    return st;
}
