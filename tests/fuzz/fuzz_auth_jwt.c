/*
 * libFuzzer target: the JWT and JWKS decoders (auth/). The first byte picks the
 * mode: even, the rest is a key set to parse; odd, the rest is a token verified
 * against a fixed P-256 key set (kid "e1"). The seeds hold a valid token, so the
 * signature check itself is reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jb_auth.h"

static const char fixed_jwks[] =
    "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"e1\", \"crv\": \"P-256\", \"x\": "
    "\"HxKh8R2M_JzRTAG2_OHvnqfWbnIh5wtcTCHoeSCnFbw\", \"y\": "
    "\"8uA9GhAbF6u53A8fFUccE-38HBHCQVyyH1vpI3m2euM\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jb_auth_jwks *keys;
    if (keys == NULL && jb_auth_jwks_parse(fixed_jwks, strlen(fixed_jwks), &keys, NULL) != JB_OK)
        abort();
    if (size == 0)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        jb_auth_jwks *k = NULL;
        jb_err err = {{0}};
        if (jb_auth_jwks_parse(p, n, &k, &err) == JB_OK && jb_auth_jwks_count(k) == 0)
            abort(); /* a parsed set always has a usable key */
        jb_auth_jwks_unref(k);
        return 0;
    }
    jb_auth_rules rules = {"idp", "jetbridge", "sub", 1700000000};
    char app[64];
    size_t al = 0;
    jb_auth_result r = jb_auth_jwt_verify(keys, p, n, &rules, app, sizeof(app), &al);
    if (r == JB_AUTH_OK && (al == 0 || al >= sizeof(app) || strlen(app) != al))
        abort();
    return 0;
}
