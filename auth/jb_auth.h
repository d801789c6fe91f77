/* auth/: JSON Web Tokens (compact JWS) verified against a JSON Web Key Set.
 *
 * Only RS256 (RSA keys of 2048 bits or more) and ES256 (P-256 keys) are accepted:
 * never "none", never an HMAC algorithm, and a token's alg must fit the kty (and
 * alg, when given) of the key its kid selects, so an HS256 token "signed" with a
 * public key is refused. OpenSSL does the cryptography. Every input is untrusted
 * and carries a length; sizes are bounded (JB_AUTH_JWT_MAX, JB_AUTH_JWKS_MAX,
 * JB_AUTH_JWKS_KEYS_MAX).
 */
#ifndef JB_AUTH_H
#define JB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

#define JB_AUTH_JWT_MAX       8192   /* bytes of a token */
#define JB_AUTH_JWKS_MAX      262144 /* bytes of a key set document */
#define JB_AUTH_JWKS_KEYS_MAX 64     /* keys in a set (more: refused) */
#define JB_AUTH_LEEWAY_S      60     /* clock skew allowed on exp and nbf */

/* A parsed key set. Immutable, reference counted, readable from any thread. */
typedef struct jb_auth_jwks jb_auth_jwks;

/* Parses a JWKS document buf[0..len). Keys of other types or uses (and
 * malformed keys) are skipped; JB_ERR_INVALID when the document is not a JWKS or
 * has no usable key. *out has one reference. */
jb_status jb_auth_jwks_parse(const char *buf, size_t len, jb_auth_jwks **out, jb_err *err);
size_t jb_auth_jwks_count(const jb_auth_jwks *k);
void jb_auth_jwks_ref(jb_auth_jwks *k);
void jb_auth_jwks_unref(jb_auth_jwks *k); /* NULL is fine */

typedef enum jb_auth_result {
    JB_AUTH_OK = 0,
    JB_AUTH_MALFORMED,   /* not three base64url parts of JSON, or too large */
    JB_AUTH_BAD_ALG,     /* alg other than RS256/ES256, or not the key's */
    JB_AUTH_UNKNOWN_KID, /* no key with that kid (the set may need a refresh) */
    JB_AUTH_BAD_SIG,
    JB_AUTH_EXPIRED, /* exp (plus leeway) passed, or no exp */
    JB_AUTH_NOT_YET, /* nbf (minus leeway) not reached */
    JB_AUTH_BAD_ISS,
    JB_AUTH_BAD_AUD,
    JB_AUTH_NO_APP, /* the application claim is missing, not a string or too long */
} jb_auth_result;

const char *jb_auth_result_str(jb_auth_result r);

/* What a token must satisfy. issuer and audience: NULL or "" = not checked. */
typedef struct jb_auth_rules {
    const char *issuer;
    const char *audience;
    const char *app_claim; /* claim naming the application, e.g. "sub" */
    int64_t now_s;         /* Unix time */
} jb_auth_rules;

/* Verifies tok[0..len) against keys and rules. On JB_AUTH_OK the application
 * claim is copied into app[0..cap) (NUL-terminated) and its length into *app_len. */
jb_auth_result jb_auth_jwt_verify(const jb_auth_jwks *keys, const char *tok, size_t len,
                                  const jb_auth_rules *rules, char *app, size_t cap,
                                  size_t *app_len);

/* True when tok[0..len) has the shape of a compact JWS (two dots): a bearer token
 * of that shape is verified as a JWT, anything else is an opaque token. */
bool jb_auth_looks_like_jwt(const char *tok, size_t len);

/* ------------------------------------------------------- the key source */

/* INGRESS_JWKS: a file (re-read when it changes) or an https URL (fetched again
 * every JB_AUTH_JWKS_REFRESH_S, and on an unknown kid at most every
 * JB_AUTH_JWKS_MIN_REFETCH_S). Thread-safe. */
#define JB_AUTH_JWKS_REFRESH_S     300
#define JB_AUTH_JWKS_MIN_REFETCH_S 10
typedef struct jb_auth_source jb_auth_source;

/* A file must load now (JB_ERR_CONFIG otherwise, err names the path); a URL is
 * fetched by the first jb_auth_source_refresh, its server verified against the
 * system's CAs and, when ca is neither NULL nor "", the PEM file ca (which must be
 * readable now). */
jb_status jb_auth_source_create(const char *where, const char *ca, jb_auth_source **out,
                                jb_err *err);
void jb_auth_source_destroy(jb_auth_source *s);
/* Periodic work (blocking I/O: call it from a thread that may block). */
void jb_auth_source_refresh(jb_auth_source *s);
/* The current keys with a reference the caller drops (NULL before the first load). */
jb_auth_jwks *jb_auth_source_get(jb_auth_source *s);
/* A token named a kid the keys lack: fetch again soon (rate-limited). */
void jb_auth_source_kid_missed(jb_auth_source *s);

#endif
