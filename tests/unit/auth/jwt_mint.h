/*
 * Test helper shared by the auth unit tests and the ingress integration tests:
 * base64url and JWTs signed with OpenSSL keys made in the test.
 */
#ifndef JWT_MINT_H
#define JWT_MINT_H

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

typedef enum signer { SIGN_RS, SIGN_ES, SIGN_HS_PUBKEY, SIGN_NONE, SIGN_GARBAGE } signer;

/* header.claims.signature into out, signed with key (RS256/ES256), HMAC-SHA256
 * keyed with hmac_key (the "public key as HMAC secret" attack), nothing, or junk. */
static void mint_with(EVP_PKEY *key, const char *hmac_key, const char *header, const char *claims,
                      signer how, char *out, size_t cap)
{
    char h[1024], c[2048];
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)claims, strlen(claims), c);
    char signing[3100];
    snprintf(signing, sizeof(signing), "%s.%s", h, c);
    unsigned char sig[1024];
    size_t sl = sizeof(sig);
    if (how == SIGN_RS || how == SIGN_ES) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
        EVP_DigestSign(md, sig, &sl, (const unsigned char *)signing, strlen(signing));
        EVP_MD_CTX_free(md);
        if (how == SIGN_ES) { /* DER -> r||s */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
            unsigned char rs[64];
            BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
            ECDSA_SIG_free(es);
            memcpy(sig, rs, 64);
            sl = 64;
        }
    } else if (how == SIGN_HS_PUBKEY) {
        unsigned int hl = 0;
        HMAC(EVP_sha256(), hmac_key, (int)strlen(hmac_key), (const unsigned char *)signing,
             strlen(signing), sig, &hl);
        sl = hl;
    } else if (how == SIGN_GARBAGE) {
        memset(sig, 0x41, 256);
        sl = 256;
    } else {
        sl = 0;
    }
    char s[1500];
    b64url(sig, sl, s);
    snprintf(out, cap, "%s.%s", signing, s);
}

#endif
