/*
 * JWKS parsing and JWT verification (see jb_auth.h). The header's alg is checked
 * before any key is looked at, and again against the key: the algorithm comes
 * from the key set, never from the token alone.
 */
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jb_ce.h"
#include "auth/jb_auth.h"

typedef enum key_kind { KEY_RSA, KEY_EC } key_kind;

typedef struct jwk {
    key_kind kind;
    char *kid; /* NULL when the key has none */
    EVP_PKEY *pkey;
} jwk;

struct jb_auth_jwks {
    atomic_int refs;
    jwk keys[JB_AUTH_JWKS_KEYS_MAX];
    size_t n;
};

/* ------------------------------------------------------------- base64url */

/* Strict base64url without padding (RFC 7515) into a malloc'd, NUL-terminated
 * buffer; *out_len excludes the NUL. False on any other form. */
static bool b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    return jb_base64_decode_ex(s, len, JB_B64_URL | JB_B64_NOPAD, out, out_len) == JB_OK;
}

/* ------------------------------------------------------------------ keys */

static BIGNUM *bn_from_b64(const cJSON *o, const char *name, size_t *nbytes)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v))
        return NULL;
    unsigned char *raw = NULL;
    size_t rl = 0;
    if (!b64url_decode(v->valuestring, strlen(v->valuestring), &raw, &rl) || rl == 0) {
        free(raw);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(raw, (int)rl, NULL);
    if (nbytes != NULL)
        *nbytes = rl;
    free(raw);
    return bn;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(const cJSON *o)
{
    size_t nbytes = 0;
    BIGNUM *n = bn_from_b64(o, "n", &nbytes), *e = bn_from_b64(o, "e", NULL);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    /* Fewer than 2048 bits is not a key we trust; more than 8192 is a CPU sink. */
    if (n != NULL && e != NULL && bld != NULL && BN_num_bits(n) >= 2048 && BN_num_bits(n) <= 8192 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
        pkey = pkey_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static bool b64_exact(const cJSON *o, const char *name, unsigned char *out, size_t want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    unsigned char *raw = NULL;
    size_t rl = 0;
    bool ok = cJSON_IsString(v) &&
              b64url_decode(v->valuestring, strlen(v->valuestring), &raw, &rl) && rl == want;
    if (ok)
        memcpy(out, raw, want);
    free(raw);
    return ok;
}

static EVP_PKEY *ec_key(const cJSON *o)
{
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(o, "crv");
    unsigned char pt[65];
    pt[0] = 0x04; /* uncompressed point */
    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-256") != 0 ||
        !b64_exact(o, "x", pt + 1, 32) || !b64_exact(o, "y", pt + 33, 32))
        return NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) == 1)
        pkey = pkey_from_params("EC", bld); /* the point is checked to be on the curve */
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One entry of "keys": added to k when usable. */
static void add_key(jb_auth_jwks *k, const cJSON *o)
{
    const char *kty = str_field(o, "kty"), *use = str_field(o, "use"), *alg = str_field(o, "alg");
    const char *kid = str_field(o, "kid");
    if (kty == NULL || (use != NULL && strcmp(use, "sig") != 0) || k->n == JB_AUTH_JWKS_KEYS_MAX)
        return;
    key_kind kind;
    if (strcmp(kty, "RSA") == 0 && (alg == NULL || strcmp(alg, "RS256") == 0))
        kind = KEY_RSA;
    else if (strcmp(kty, "EC") == 0 && (alg == NULL || strcmp(alg, "ES256") == 0))
        kind = KEY_EC;
    else
        return;
    EVP_PKEY *pkey = kind == KEY_RSA ? rsa_key(o) : ec_key(o);
    if (pkey == NULL)
        return;
    char *kd = kid != NULL ? strdup(kid) : NULL;
    if (kid != NULL && kd == NULL) {
        EVP_PKEY_free(pkey);
        return;
    }
    k->keys[k->n++] = (jwk){kind, kd, pkey};
}

jb_status jb_auth_jwks_parse(const char *buf, size_t len, jb_auth_jwks **out, jb_err *err)
{
    if (len > JB_AUTH_JWKS_MAX)
        return jb_err_set(err, JB_ERR_INVALID, "key set larger than %d bytes", JB_AUTH_JWKS_MAX);
    cJSON *doc = cJSON_ParseWithLength(buf, len);
    const cJSON *keys = doc != NULL ? cJSON_GetObjectItemCaseSensitive(doc, "keys") : NULL;
    if (!cJSON_IsArray(keys)) {
        cJSON_Delete(doc);
        return jb_err_set(err, JB_ERR_INVALID, "not a JSON Web Key Set (no \"keys\" array)");
    }
    if (cJSON_GetArraySize(keys) > JB_AUTH_JWKS_KEYS_MAX) {
        cJSON_Delete(doc);
        return jb_err_set(err, JB_ERR_INVALID, "more than %d keys", JB_AUTH_JWKS_KEYS_MAX);
    }
    jb_auth_jwks *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        cJSON_Delete(doc);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    atomic_init(&k->refs, 1);
    const cJSON *o;
    cJSON_ArrayForEach(o, keys)
    {
        if (cJSON_IsObject(o))
            add_key(k, o);
    }
    cJSON_Delete(doc);
    if (k->n == 0) {
        jb_auth_jwks_unref(k);
        return jb_err_set(err, JB_ERR_INVALID, "no usable RS256 or ES256 signing key");
    }
    *out = k;
    return JB_OK;
}

size_t jb_auth_jwks_count(const jb_auth_jwks *k)
{
    return k->n;
}

void jb_auth_jwks_ref(jb_auth_jwks *k)
{
    atomic_fetch_add(&k->refs, 1);
}

void jb_auth_jwks_unref(jb_auth_jwks *k)
{
    if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->keys[i].kid);
        EVP_PKEY_free(k->keys[i].pkey);
    }
    free(k);
}

/* ---------------------------------------------------------------- tokens */

const char *jb_auth_result_str(jb_auth_result r)
{
    switch (r) {
    case JB_AUTH_OK:
        return "ok";
    case JB_AUTH_MALFORMED:
        return "malformed token";
    case JB_AUTH_BAD_ALG:
        return "algorithm not accepted";
    case JB_AUTH_UNKNOWN_KID:
        return "unknown key id";
    case JB_AUTH_BAD_SIG:
        return "bad signature";
    case JB_AUTH_EXPIRED:
        return "expired";
    case JB_AUTH_NOT_YET:
        return "not valid yet";
    case JB_AUTH_BAD_ISS:
        return "wrong issuer";
    case JB_AUTH_BAD_AUD:
        return "wrong audience";
    case JB_AUTH_NO_APP:
        return "no application claim";
    }
    return "unknown";
}

bool jb_auth_looks_like_jwt(const char *tok, size_t len)
{
    size_t dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += tok[i] == '.';
    return dots == 2;
}

/* The key for the header's kid and alg, or NULL with *r set. */
static const jwk *pick_key(const jb_auth_jwks *keys, const char *kid, key_kind kind,
                           jb_auth_result *r)
{
    const jwk *found = NULL;
    size_t candidates = 0;
    for (size_t i = 0; i < keys->n; i++) {
        const jwk *k = &keys->keys[i];
        if (kid != NULL ? (k->kid != NULL && strcmp(k->kid, kid) == 0) : k->kind == kind) {
            found = k;
            candidates++;
        }
    }
    /* Without a kid, only an unambiguous key of the right type will do. */
    if (found == NULL || (kid == NULL && candidates != 1)) {
        *r = JB_AUTH_UNKNOWN_KID;
        return NULL;
    }
    if (found->kind != kind) {
        *r = JB_AUTH_BAD_ALG;
        return NULL;
    }
    return found;
}

static bool verify_sig(const jwk *k, const char *signed_part, size_t slen, const unsigned char *sig,
                       size_t siglen)
{
    unsigned char *der = NULL;
    const unsigned char *s = sig;
    size_t sl = siglen;
    if (k->kind == KEY_EC) {
        /* JWS carries r||s (32 bytes each); OpenSSL wants DER. */
        if (siglen != 64)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
        int dl = -1;
        if (es != NULL && r != NULL && ss != NULL && ECDSA_SIG_set0(es, r, ss) == 1) {
            r = ss = NULL;
            dl = i2d_ECDSA_SIG(es, &der);
        }
        BN_free(r);
        BN_free(ss);
        ECDSA_SIG_free(es);
        if (dl <= 0)
            return false;
        s = der;
        sl = (size_t)dl;
    } else if ((int)siglen != EVP_PKEY_get_size(k->pkey)) {
        return false;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
              EVP_DigestVerify(md, s, sl, (const unsigned char *)signed_part, slen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

static jb_auth_result check_claims(const cJSON *c, const jb_auth_rules *rules, char *app,
                                   size_t cap, size_t *app_len)
{
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    if (!cJSON_IsNumber(exp) || exp->valuedouble + JB_AUTH_LEEWAY_S < (double)rules->now_s)
        return JB_AUTH_EXPIRED;
    if (nbf != NULL &&
        (!cJSON_IsNumber(nbf) || nbf->valuedouble - JB_AUTH_LEEWAY_S > (double)rules->now_s))
        return JB_AUTH_NOT_YET;
    if (rules->issuer != NULL && rules->issuer[0] != '\0') {
        const char *iss = str_field(c, "iss");
        if (iss == NULL || strcmp(iss, rules->issuer) != 0)
            return JB_AUTH_BAD_ISS;
    }
    if (rules->audience != NULL && rules->audience[0] != '\0') {
        const cJSON *aud = cJSON_GetObjectItemCaseSensitive(c, "aud");
        bool ok = cJSON_IsString(aud) && strcmp(aud->valuestring, rules->audience) == 0;
        const cJSON *it;
        if (cJSON_IsArray(aud))
            cJSON_ArrayForEach(it, aud) ok =
                ok || (cJSON_IsString(it) && strcmp(it->valuestring, rules->audience) == 0);
        if (!ok)
            return JB_AUTH_BAD_AUD;
    }
    const char *name = str_field(c, rules->app_claim);
    size_t nl = name != NULL ? strlen(name) : 0;
    if (nl == 0 || nl >= cap)
        return JB_AUTH_NO_APP;
    memcpy(app, name, nl + 1);
    *app_len = nl;
    return JB_AUTH_OK;
}

/* Decodes one base64url part holding a JSON object. */
static cJSON *json_part(const char *s, size_t len)
{
    unsigned char *raw = NULL;
    size_t rl = 0;
    if (!b64url_decode(s, len, &raw, &rl))
        return NULL;
    cJSON *o = cJSON_ParseWithLength((const char *)raw, rl);
    free(raw);
    if (o != NULL && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

jb_auth_result jb_auth_jwt_verify(const jb_auth_jwks *keys, const char *tok, size_t len,
                                  const jb_auth_rules *rules, char *app, size_t cap,
                                  size_t *app_len)
{
    if (len > JB_AUTH_JWT_MAX || !jb_auth_looks_like_jwt(tok, len))
        return JB_AUTH_MALFORMED;
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    jb_auth_result r = JB_AUTH_MALFORMED;
    cJSON *hdr = json_part(tok, (size_t)(d1 - tok));
    cJSON *claims = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    const char *alg = hdr != NULL ? str_field(hdr, "alg") : NULL;
    if (alg == NULL)
        goto done;
    key_kind kind;
    if (strcmp(alg, "RS256") == 0) {
        kind = KEY_RSA;
    } else if (strcmp(alg, "ES256") == 0) {
        kind = KEY_EC;
    } else {
        r = JB_AUTH_BAD_ALG; /* none, HS*, PS*, anything else */
        goto done;
    }
    /* RFC 7515 4.1.11: a token whose "crit" names extensions must be refused by a
     * verifier that understands none of them, which is this one. */
    if (cJSON_GetObjectItemCaseSensitive(hdr, "crit") != NULL)
        goto done;
    const cJSON *kidv = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
    if (kidv != NULL && !cJSON_IsString(kidv))
        goto done;
    const jwk *k = pick_key(keys, kidv != NULL ? kidv->valuestring : NULL, kind, &r);
    if (k == NULL)
        goto done;
    r = JB_AUTH_MALFORMED;
    if (!b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), &sig, &siglen))
        goto done;
    if (!verify_sig(k, tok, (size_t)(d2 - tok), sig, siglen)) {
        r = JB_AUTH_BAD_SIG;
        goto done;
    }
    claims = json_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (claims != NULL)
        r = check_claims(claims, rules, app, cap, app_len);
done:
    free(sig);
    cJSON_Delete(claims);
    cJSON_Delete(hdr);
    return r;
}
