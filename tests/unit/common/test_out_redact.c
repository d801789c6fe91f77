/* The redaction and escaping helpers, and NATS nkeys. Table-driven. */
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"

static void test_redact_url(void)
{
    static const struct {
        const char *in, *want;
    } t[] = {
        {"http://u:p@h:1/x", "http://redacted@h:1/x"},
        {"https://token@h/", "https://redacted@h/"},
        {"http://h/a@b", "http://h/a@b"}, /* '@' in the path is not userinfo */
        {"http://u:p@ss@h/", "http://redacted@h/"},
        {"nats://a:b@n1:4222,nats://n2:4222,tls://c:d@n3",
         "nats://redacted@n1:4222,nats://n2:4222,tls://redacted@n3"},
        {"no url at all", "no url at all"},
        {"", ""},
        {"x http://a@b y", "x http://redacted@b y"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *out = jb_redact_url(t[i].in);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        CU_ASSERT_STRING_EQUAL(out, t[i].want);
        free(out);
    }
    CU_ASSERT_TRUE(jb_url_has_userinfo("http://u@h/"));
    CU_ASSERT_FALSE(jb_url_has_userinfo("http://h/u@x"));
    CU_ASSERT_PTR_NULL(jb_redact_url(NULL));
}

static void test_escape_text(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } t[] = {
        {"plain", 5, "plain"},
        {"\x1b]0;t\x07", 6, "\\x1b]0;t\\x07"},
        {"a\nb\tc\x7f", 6, "a\\x0ab\\x09c\\x7f"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"}, /* valid UTF-8 stays */
        {"\xc2\x9b"
         "2J",
         4, "\\xc2\\x9b2J"}, /* C1 CSI is escaped */
        {"\xff\xfe", 2, "\\xff\\xfe"},
        {"a\0b", 3, "a\\x00b"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *out = jb_escape_text(t[i].in, t[i].len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        CU_ASSERT_STRING_EQUAL(out, t[i].want);
        free(out);
    }
}

static void test_nkey(void)
{
    uint8_t raw[32] = {0};
    char seed[JB_NKEY_SEED_LEN + 1], pub[JB_NKEY_PUBLIC_LEN + 1];
    CU_ASSERT_TRUE(jb_nkey_user_seed(raw, seed));
    CU_ASSERT_EQUAL(strlen(seed), JB_NKEY_SEED_LEN);
    CU_ASSERT_EQUAL(strncmp(seed, "SU", 2), 0);
    CU_ASSERT_TRUE(jb_nkey_user_public(seed, strlen(seed), pub));
    CU_ASSERT_EQUAL(strlen(pub), JB_NKEY_PUBLIC_LEN);
    CU_ASSERT_EQUAL(pub[0], 'U');
    /* A changed character breaks the checksum. */
    seed[10] = seed[10] == 'A' ? 'B' : 'A';
    CU_ASSERT_FALSE(jb_nkey_user_public(seed, strlen(seed), pub));
    CU_ASSERT_FALSE(jb_nkey_user_public("SUxyz", 5, pub));
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"redact_url", test_redact_url},
        {"escape_text", test_escape_text},
        {"nkey", test_nkey},
    };
    return jb_cunit_main("out_redact", NULL, NULL, cases, JB_CASES_N(cases));
}
