/* NATS nkeys (Ed25519 keys in NATS's base32 text form, "SU..." for a user seed,
 * "U..." for its public key). nats.c signs the server's nonce with the seed file
 * itself but wants the public key from us; it is derived here so an operator
 * only configures the seed file (NATS_NKEY_SEED). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

#define PREFIX_SEED 144u /* 18 << 3 */
#define PREFIX_USER 160u /* 20 << 3 */
#define RAW_LEN     32

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* CRC-16/XMODEM, as the nkeys libraries compute it. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static size_t b32_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = memchr(b32, s[i], sizeof(b32) - 1);
        if (p == NULL)
            return 0;
        acc = (acc << 5) | (uint32_t)(p - b32);
        bits += 5;
        if (bits >= 8) {
            if (o == cap)
                return 0;
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static void b32_encode(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[o++] = b32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

bool jb_nkey_user_public(const char *seed, size_t len, char out[JB_NKEY_PUBLIC_LEN + 1])
{
    uint8_t raw[2 + RAW_LEN + 2];
    uint8_t pub[1 + RAW_LEN + 2];
    bool ok = false;
    EVP_PKEY *k = NULL;
    /* 36 bytes are 58 base32 characters. */
    if (len != 58 || b32_decode(seed, len, raw, sizeof(raw)) != sizeof(raw))
        goto out;
    uint16_t want = (uint16_t)(raw[34] | (raw[35] << 8));
    if (crc16(raw, 34) != want || (raw[0] & 0xf8u) != PREFIX_SEED)
        goto out;
    unsigned prefix = ((raw[0] & 7u) << 5) | ((raw[1] & 0xf8u) >> 3);
    if (prefix != PREFIX_USER)
        goto out;
    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 2, RAW_LEN);
    size_t plen = RAW_LEN;
    if (k == NULL || EVP_PKEY_get_raw_public_key(k, pub + 1, &plen) != 1 || plen != RAW_LEN)
        goto out;
    pub[0] = PREFIX_USER;
    uint16_t c = crc16(pub, 1 + RAW_LEN);
    pub[1 + RAW_LEN] = (uint8_t)(c & 0xff);
    pub[2 + RAW_LEN] = (uint8_t)(c >> 8);
    b32_encode(pub, sizeof(pub), out);
    ok = true;
out:
    EVP_PKEY_free(k);
    OPENSSL_cleanse(raw, sizeof(raw));
    return ok;
}

bool jb_nkey_user_seed(const uint8_t raw_seed[32], char out[JB_NKEY_SEED_LEN + 1])
{
    uint8_t raw[2 + RAW_LEN + 2];
    raw[0] = (uint8_t)(PREFIX_SEED | (PREFIX_USER >> 5));
    raw[1] = (uint8_t)((PREFIX_USER & 31u) << 3);
    memcpy(raw + 2, raw_seed, RAW_LEN);
    uint16_t c = crc16(raw, 2 + RAW_LEN);
    raw[2 + RAW_LEN] = (uint8_t)(c & 0xff);
    raw[3 + RAW_LEN] = (uint8_t)(c >> 8);
    b32_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return true;
}
