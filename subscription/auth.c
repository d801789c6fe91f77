/* How a sink wants jetbridge to authenticate, from spec.config (strings, so Kyma's
 * schema keeps them): Kyma's OAuth2 client-credentials keys, and jetbridge.auth.*
 * keys for a bearer token or basic credentials read from files, a client
 * certificate for mutual TLS, and a signing secret for Standard Webhooks
 * signatures. Only file names and Secret references ("<name>/<key>", Kubernetes
 * mode) are kept here; the dispatcher reads the files and Secrets. */
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "subscription/sub_internal.h"

/* A file name or URL longer than this is refused: the settings are copied per
 * consumer. */
#define AUTH_VALUE_MAX 1024

typedef struct field {
    const char *key;
    size_t off;
    bool is_path; /* must be an absolute file name */
} field;

static const field fields[] = {
    {JB_SUB_AUTH_BEARER_FILE, offsetof(jb_sub_auth, bearer_token_file), true},
    {JB_SUB_AUTH_BASIC_USER, offsetof(jb_sub_auth, basic_username), false},
    {JB_SUB_AUTH_BASIC_PASSWORD_FILE, offsetof(jb_sub_auth, basic_password_file), true},
    {JB_SUB_AUTH_CLIENT_CERT, offsetof(jb_sub_auth, client_cert_file), true},
    {JB_SUB_AUTH_CLIENT_KEY, offsetof(jb_sub_auth, client_key_file), true},
    {JB_SUB_AUTH_SIGNING_FILE, offsetof(jb_sub_auth, signing_secret_file), true},
    {"clientId", offsetof(jb_sub_auth, client_id), false},
    {"clientSecret", offsetof(jb_sub_auth, client_secret), false},
    {"tokenUrl", offsetof(jb_sub_auth, token_url), false},
    {"scope", offsetof(jb_sub_auth, scope), false},
    {JB_SUB_AUTH_BEARER_SECRET, offsetof(jb_sub_auth, bearer_token_secret), false},
    {JB_SUB_AUTH_BASIC_PASSWORD_SECRET, offsetof(jb_sub_auth, basic_password_secret), false},
    {JB_SUB_AUTH_SIGNING_SECRET, offsetof(jb_sub_auth, signing_secret_secret), false},
    {JB_SUB_AUTH_CLIENT_SECRET_SECRET, offsetof(jb_sub_auth, client_secret_secret), false},
};
/* The first index of the *FromSecret fields in fields[]. */
#define FIRST_SECRET_REF 10
#define NFIELDS          (sizeof(fields) / sizeof(fields[0]))

static char **slot(jb_sub_auth *a, size_t i)
{
    return (char **)(void *)((char *)a + fields[i].off);
}

static const char *cslot(const jb_sub_auth *a, size_t i)
{
    return *(char *const *)(const void *)((const char *)a + fields[i].off);
}

void jb_sub_auth_free(jb_sub_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < NFIELDS; i++)
        free(*slot(a, i));
    memset(a, 0, sizeof(*a));
}

bool jb_sub_auth_copy(jb_sub_auth *dst, const jb_sub_auth *src)
{
    jb_sub_auth c = {0};
    c.oauth2 = src->oauth2;
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *v = cslot(src, i);
        if (v != NULL && (*slot(&c, i) = strdup(v)) == NULL) {
            jb_sub_auth_free(&c);
            return false;
        }
    }
    *dst = c;
    return true;
}

bool jb_sub_auth_equal(const jb_sub_auth *a, const jb_sub_auth *b)
{
    if (a->oauth2 != b->oauth2)
        return false;
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *x = cslot(a, i), *y = cslot(b, i);
        if ((x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0))
            return false;
    }
    return true;
}

bool jb_sub_auth_any(const jb_sub_auth *a)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (cslot(a, i) != NULL)
            return true;
    return a->oauth2;
}

bool jb_sub_auth_uses_secrets(const jb_sub_auth *a)
{
    for (size_t i = FIRST_SECRET_REF; i < NFIELDS; i++)
        if (cslot(a, i) != NULL)
            return true;
    return false;
}

/* "<name>/<key>": name a DNS subdomain (RFC 1123, at most 253 characters), key what
 * Kubernetes allows in a Secret's data ([-._a-zA-Z0-9]+, at most 253). */
static bool secret_ref_ok(const char *v)
{
    const char *slash = strchr(v, '/');
    if (slash == NULL)
        return false;
    size_t n = (size_t)(slash - v), k = strlen(slash + 1);
    if (n == 0 || n > 253 || k == 0 || k > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '.') || i == 0 || i == n - 1))
            return false;
    }
    for (const char *p = slash + 1; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static jb_status bad(jb_err *err, const char *key, const char *detail)
{
    return jb_err_set(err, JB_ERR_INVALID, "%s|%s", key, detail);
}

static bool http_url(const char *v)
{
    return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
}

/* The rules between keys: one way to authenticate, pairs complete. */
static jb_status check_combination(const jb_sub_auth *a, jb_err *err)
{
    bool bearer = a->bearer_token_file != NULL || a->bearer_token_secret != NULL;
    bool basic_pw = a->basic_password_file != NULL || a->basic_password_secret != NULL;
    int ways = bearer + (a->basic_username != NULL || basic_pw) + a->oauth2;
    if (ways > 1)
        return bad(err,
                   a->oauth2 ? "type"
                             : (a->bearer_token_file ? JB_SUB_AUTH_BEARER_FILE
                                                     : JB_SUB_AUTH_BEARER_SECRET),
                   "only one of oauth2, a bearer token and basic credentials may be set");
    if (a->bearer_token_file != NULL && a->bearer_token_secret != NULL)
        return bad(err, JB_SUB_AUTH_BEARER_SECRET,
                   "only one of " JB_SUB_AUTH_BEARER_FILE " and " JB_SUB_AUTH_BEARER_SECRET);
    if (a->basic_password_file != NULL && a->basic_password_secret != NULL)
        return bad(err, JB_SUB_AUTH_BASIC_PASSWORD_SECRET,
                   "only one of " JB_SUB_AUTH_BASIC_PASSWORD_FILE
                   " and " JB_SUB_AUTH_BASIC_PASSWORD_SECRET);
    if (a->signing_secret_file != NULL && a->signing_secret_secret != NULL)
        return bad(err, JB_SUB_AUTH_SIGNING_SECRET,
                   "only one of " JB_SUB_AUTH_SIGNING_FILE " and " JB_SUB_AUTH_SIGNING_SECRET);
    if (a->client_secret != NULL && a->client_secret_secret != NULL)
        return bad(err, JB_SUB_AUTH_CLIENT_SECRET_SECRET,
                   "only one of clientSecret and " JB_SUB_AUTH_CLIENT_SECRET_SECRET);
    if ((a->basic_username == NULL) != !basic_pw)
        return bad(err,
                   a->basic_username        ? JB_SUB_AUTH_BASIC_USER
                   : a->basic_password_file ? JB_SUB_AUTH_BASIC_PASSWORD_FILE
                                            : JB_SUB_AUTH_BASIC_PASSWORD_SECRET,
                   JB_SUB_AUTH_BASIC_USER " and " JB_SUB_AUTH_BASIC_PASSWORD_FILE
                                          " (or " JB_SUB_AUTH_BASIC_PASSWORD_SECRET
                                          ") go together");
    if ((a->client_cert_file == NULL) != (a->client_key_file == NULL))
        return bad(err, a->client_cert_file ? JB_SUB_AUTH_CLIENT_CERT : JB_SUB_AUTH_CLIENT_KEY,
                   JB_SUB_AUTH_CLIENT_CERT " and " JB_SUB_AUTH_CLIENT_KEY " go together");
    if (a->oauth2 &&
        (a->client_id == NULL || (a->client_secret == NULL && a->client_secret_secret == NULL) ||
         a->token_url == NULL))
        return bad(err, "type",
                   "oauth2 needs clientId, clientSecret (or " JB_SUB_AUTH_CLIENT_SECRET_SECRET
                   ") and tokenUrl");
    if (!a->oauth2 &&
        (a->client_id || a->client_secret || a->client_secret_secret || a->token_url || a->scope))
        return bad(err,
                   a->client_id ? "clientId"
                                : (a->client_secret
                                       ? "clientSecret"
                                       : (a->client_secret_secret ? JB_SUB_AUTH_CLIENT_SECRET_SECRET
                                                                  : "tokenUrl")),
                   "needs type oauth2");
    if (a->token_url != NULL && !http_url(a->token_url))
        return bad(err, "tokenUrl", "must have URL scheme 'http' or 'https'");
    return JB_OK;
}

jb_status jb_sub_auth_get(const jb_sub *s, jb_sub_auth *out, jb_err *err)
{
    jb_sub_auth a = {0};
    jb_status st = JB_OK;
    const char *type = jb_sub_config_value(s, "type");
    const char *grant = jb_sub_config_value(s, "grantType");
    if (type != NULL && strcmp(type, "oauth2") != 0) {
        st = bad(err, "type", "type must be oauth2");
        goto out;
    }
    a.oauth2 = type != NULL;
    if (grant != NULL && strcmp(grant, "client_credentials") != 0) {
        st = bad(err, "grantType", "grantType must be client_credentials");
        goto out;
    }
    for (size_t i = 0; i < NFIELDS; i++) {
        const char *v = jb_sub_config_value(s, fields[i].key);
        if (v == NULL)
            continue;
        if (v[0] == '\0' || strlen(v) >= AUTH_VALUE_MAX) {
            st = bad(err, fields[i].key, "must be 1 to 1023 characters");
            goto out;
        }
        if (fields[i].is_path && v[0] != '/') {
            st = bad(err, fields[i].key, "must be an absolute file name");
            goto out;
        }
        if (i >= FIRST_SECRET_REF && !secret_ref_ok(v)) {
            st = bad(err, fields[i].key,
                     "must be <secret name>/<key> (a DNS subdomain name, a key of "
                     "[-._a-zA-Z0-9])");
            goto out;
        }
        if ((*slot(&a, i) = strdup(v)) == NULL) {
            st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    st = check_combination(&a, err);
out:
    if (st == JB_OK)
        *out = a;
    else
        jb_sub_auth_free(&a);
    return st;
}
