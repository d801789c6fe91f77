/*
 * auth/: JWT verification against a JWKS, table-driven, with keys made and
 * tokens signed by OpenSSL in the test: RS256, ES256, expired, not yet valid,
 * wrong issuer and audience (string and array), alg none, HS256 "signed" with
 * the public key, an EC token under an RSA kid, unknown kid, bad base64, bad
 * signatures, huge tokens; and key-set parsing.
 */
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jb_auth.h"
#include "jb_cunit.h"
#include "jwt_mint.h"

static EVP_PKEY *rsa, *ec;
static char jwks_json[8192];
static char rsa_pub_pem[4096];

/* header.claims.signature with the test's keys. */
static void mint(const char *header, const char *claims, signer how, char *out, size_t cap)
{
    mint_with(how == SIGN_ES ? ec : rsa, rsa_pub_pem, header, claims, how, out, cap);
}

static void bn_b64(EVP_PKEY *k, const char *param, char *out)
{
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(k, param, &bn);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    b64url(buf, (size_t)n, out);
    BN_free(bn);
}

static int setup(void)
{
    rsa = EVP_RSA_gen(2048);
    ec = EVP_EC_gen("P-256");
    if (rsa == NULL || ec == NULL)
        return 1;
    char n[700], e[16], x[64], y[64];
    bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N, n);
    bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E, e);
    unsigned char pt[65];
    size_t pl = 0;
    EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &pl);
    b64url(pt + 1, 32, x);
    b64url(pt + 33, 32, y);
    snprintf(jwks_json, sizeof(jwks_json),
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"alg\":\"RS256\","
             "\"n\":\"%s\",\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\","
             "\"x\":\"%s\",\"y\":\"%s\"},{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"c2VjcmV0\"}]}",
             n, e, x, y);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rsa);
    int len = BIO_read(b, rsa_pub_pem, sizeof(rsa_pub_pem) - 1);
    rsa_pub_pem[len > 0 ? len : 0] = '\0';
    BIO_free(b);
    return 0;
}

static int teardown(void)
{
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}

typedef struct jwt_case {
    const char *name;
    const char *header;
    const char *claims; /* %lld is replaced by now + offset */
    long long offset;
    signer how;
    jb_auth_result want;
    const char *app;
} jwt_case;

static const jwt_case cases[] = {
    {"RS256 ok", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_RS,
     JB_AUTH_OK, "app1"},
    {"ES256 ok, audience in an array", "{\"alg\":\"ES256\",\"kid\":\"e1\",\"typ\":\"JWT\"}",
     "{\"sub\":\"app2\",\"iss\":\"idp\",\"aud\":[\"x\",\"jetbridge\"],\"exp\":%lld}", 600, SIGN_ES,
     JB_AUTH_OK, "app2"},
    {"expired beyond the leeway", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", -120, SIGN_RS,
     JB_AUTH_EXPIRED, NULL},
    {"expired within the leeway", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", -30, SIGN_RS,
     JB_AUTH_OK, "app1"},
    {"no exp", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"x\":%lld}", 0, SIGN_RS,
     JB_AUTH_EXPIRED, NULL},
    {"nbf in the future", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":9999999999,\"nbf\":%lld}",
     600, SIGN_RS, JB_AUTH_NOT_YET, NULL},
    {"wrong issuer", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"evil\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_RS,
     JB_AUTH_BAD_ISS, NULL},
    {"wrong audience", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":[\"other\"],\"exp\":%lld}", 600, SIGN_RS,
     JB_AUTH_BAD_AUD, NULL},
    {"no application claim", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_RS, JB_AUTH_NO_APP, NULL},
    {"alg none", "{\"alg\":\"none\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_NONE,
     JB_AUTH_BAD_ALG, NULL},
    {"HS256 signed with the public key", "{\"alg\":\"HS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_HS_PUBKEY,
     JB_AUTH_BAD_ALG, NULL},
    {"ES256 under an RSA kid", "{\"alg\":\"ES256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_ES,
     JB_AUTH_BAD_ALG, NULL},
    {"unknown kid", "{\"alg\":\"RS256\",\"kid\":\"r9\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_RS,
     JB_AUTH_UNKNOWN_KID, NULL},
    {"the symmetric key in the set is never used", "{\"alg\":\"RS256\",\"kid\":\"h1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_RS,
     JB_AUTH_UNKNOWN_KID, NULL},
    {"a critical extension this verifier does not know",
     "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp-ext\"],\"exp-ext\":1}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_RS,
     JB_AUTH_MALFORMED, NULL},
    {"bad signature", "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
     "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%lld}", 600, SIGN_GARBAGE,
     JB_AUTH_BAD_SIG, NULL},
};

static void test_table(void)
{
    jb_auth_jwks *k = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_auth_jwks_parse(jwks_json, strlen(jwks_json), &k, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_auth_jwks_count(k), 2); /* the oct key is skipped */
    long long now = (long long)time(NULL);
    jb_auth_rules rules = {"idp", "jetbridge", "sub", now};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char claims[512], tok[4096], app[64] = "";
        snprintf(claims, sizeof(claims), cases[i].claims, now + cases[i].offset);
        mint(cases[i].header, claims, cases[i].how, tok, sizeof(tok));
        size_t al = 0;
        jb_auth_result r = jb_auth_jwt_verify(k, tok, strlen(tok), &rules, app, sizeof(app), &al);
        if (r != cases[i].want)
            fprintf(stderr, "case %s: got %s\n", cases[i].name, jb_auth_result_str(r));
        CU_ASSERT_EQUAL(r, cases[i].want);
        if (cases[i].app != NULL)
            CU_ASSERT_STRING_EQUAL(app, cases[i].app);
    }
    jb_auth_jwks_unref(k);
}

static void test_malformed(void)
{
    jb_auth_jwks *k = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_auth_jwks_parse(jwks_json, strlen(jwks_json), &k, &err), JB_OK);
    jb_auth_rules rules = {"", "", "sub", (long long)time(NULL)};
    char app[64];
    size_t al = 0;
    const char *bad[] = {"",
                         "a.b",
                         "a.b.c.d",
                         "!!!.e30.x",
                         "eyJhbGciOiJSUzI1NiJ9.e30.a=",
                         "e30.e30.",
                         "eyJhbGciOiJSUzI1NiJ9.W10.AAAA",
                         "bnVsbA.e30.AAAA"};
    for (size_t i = 0; i < JB_CASES_N(bad); i++)
        CU_ASSERT_NOT_EQUAL(
            jb_auth_jwt_verify(k, bad[i], strlen(bad[i]), &rules, app, sizeof(app), &al),
            JB_AUTH_OK);
    /* Huge: refused before any decoding. */
    size_t n = JB_AUTH_JWT_MAX + 10;
    char *huge = malloc(n);
    memset(huge, 'A', n);
    huge[100] = '.';
    huge[200] = '.';
    CU_ASSERT_EQUAL(jb_auth_jwt_verify(k, huge, n, &rules, app, sizeof(app), &al),
                    JB_AUTH_MALFORMED);
    free(huge);
    jb_auth_jwks_unref(k);
    /* Key sets that are not. */
    const char *sets[] = {
        "",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "[1,2]",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}"};
    for (size_t i = 0; i < JB_CASES_N(sets); i++) {
        jb_auth_jwks *kk = NULL;
        CU_ASSERT_NOT_EQUAL(jb_auth_jwks_parse(sets[i], strlen(sets[i]), &kk, &err), JB_OK);
        CU_ASSERT_PTR_NULL(kk);
    }
}

int main(void)
{
    static const jb_test_case tcases[] = {
        {"JWT table: algorithms, keys, claims", test_table},
        {"malformed tokens and key sets", test_malformed},
    };
    return jb_cunit_main("unit_auth_jwt", setup, teardown, tcases, JB_CASES_N(tcases));
}
