/* proto/: the jb_ce model (attributes, order, limits, data, equality) and base64. */
#include <stdio.h>

#include "ce_test_util.h"

static void test_set_get_replace_order(void)
{
    jb_ce *ce = jb_ce_create();
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "id", "1"), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "source", "/s"), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "type", "t"), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "source", "/other"), JB_OK); /* replace keeps slot */
    static const char *const order[] = {"id", "source", "type"};
    CU_ASSERT_EQUAL_FATAL(jb_ce_attr_count(ce), 3);
    for (size_t i = 0; i < 3; i++) {
        const char *n;
        jb_ce_attr_at(ce, i, &n, NULL, NULL);
        CU_ASSERT_STRING_EQUAL(n, order[i]);
    }
    size_t len = 99;
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "source", &len), "/other");
    CU_ASSERT_EQUAL(len, 6);
    CU_ASSERT_PTR_NULL(jb_ce_get(ce, "subject", NULL));
    jb_ce_unset(ce, "id");
    jb_ce_unset(ce, "nothing");
    CU_ASSERT_EQUAL(jb_ce_attr_count(ce), 2);
    const char *n;
    jb_ce_attr_at(ce, 0, &n, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(n, "source");
    jb_ce_destroy(ce);
}

static void test_values_with_zero_bytes(void)
{
    jb_ce *ce = jb_ce_create();
    CU_ASSERT_EQUAL(jb_ce_set(ce, "x", "a\0b", 3), JB_OK);
    size_t len;
    const char *v = jb_ce_get(ce, "x", &len);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT(memcmp(v, "a\0b", 4) == 0); /* also NUL-terminated */
    CU_ASSERT_EQUAL(jb_ce_set(ce, "empty", "", 0), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "empty", &len), "");
    CU_ASSERT_EQUAL(len, 0);
    jb_ce_destroy(ce);
}

static void test_limits(void)
{
    static const struct {
        size_t name_len, value_len;
        jb_status want;
    } cases[] = {
        {1, 0, JB_OK},
        {20, JB_CE_MAX_ATTR_VALUE, JB_OK},
        {64, 1, JB_OK}, /* stored, so that validation can name it */
        {65, 1, JB_ERR_INVALID},
        {0, 1, JB_ERR_INVALID},
        {5, JB_CE_MAX_ATTR_VALUE + 1, JB_ERR_INVALID},
    };
    static char name[100], value[JB_CE_MAX_ATTR_VALUE + 2];
    memset(name, 'a', sizeof(name) - 1);
    memset(value, 'v', sizeof(value) - 1);
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = jb_ce_create();
        char nm[100];
        memcpy(nm, name, cases[i].name_len);
        nm[cases[i].name_len] = '\0';
        CU_ASSERT_EQUAL(jb_ce_set(ce, nm, value, cases[i].value_len), cases[i].want);
        CU_ASSERT_EQUAL(jb_ce_attr_count(ce), cases[i].want == JB_OK ? 1u : 0u);
        jb_ce_destroy(ce);
    }
}

static void test_max_attrs(void)
{
    jb_ce *ce = jb_ce_create();
    char name[16];
    for (int i = 0; i < JB_CE_MAX_ATTRS; i++) {
        snprintf(name, sizeof(name), "x%d", i);
        CU_ASSERT_EQUAL(jb_ce_set_str(ce, name, name), JB_OK);
    }
    CU_ASSERT_EQUAL(jb_ce_attr_count(ce), JB_CE_MAX_ATTRS);
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "onemore", "v"), JB_ERR_INVALID);
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "x0", "replaced"), JB_OK); /* replacing is fine */
    /* Order survives growth past the inline slots. */
    for (int i = 0; i < JB_CE_MAX_ATTRS; i++) {
        const char *n, *v;
        snprintf(name, sizeof(name), "x%d", i);
        jb_ce_attr_at(ce, (size_t)i, &n, &v, NULL);
        CU_ASSERT_STRING_EQUAL(n, name);
        if (i > 0)
            CU_ASSERT_STRING_EQUAL(v, name);
    }
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "x0", NULL), "replaced");
    jb_ce_destroy(ce);
}

static void test_data(void)
{
    jb_ce *ce = jb_ce_create();
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_NONE);
    CU_ASSERT(t_data_is(ce, "", 0));
    CU_ASSERT_EQUAL(jb_ce_set_data(ce, JB_CE_DATA_BINARY, "\0\1\2", 3), JB_OK);
    CU_ASSERT(t_data_is(ce, "\0\1\2", 3));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_BINARY);
    void *buf = malloc(4);
    memcpy(buf, "{}  ", 4);
    jb_ce_take_data(ce, JB_CE_DATA_JSON, &buf, 2);
    CU_ASSERT_PTR_NULL(buf);
    CU_ASSERT(t_data_is(ce, "{}", 2));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_JSON);
    CU_ASSERT_EQUAL(jb_ce_set_data(ce, JB_CE_DATA_NONE, NULL, 0), JB_OK);
    CU_ASSERT(t_data_is(ce, "", 0));
    jb_ce_destroy(ce);
}

/* Attribute text lives in the event's arena until it is full, then in allocations
 * of its own: values stay right however they are mixed, replaced and removed
 * (ASan checks that nothing leaks or is freed twice). */
static void test_arena_and_heap_values(void)
{
    jb_ce *ce = jb_ce_create();
    char name[16], want[64][200];
    /* 40 attributes of up to ~150 bytes: far more than the arena holds. */
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        size_t len = (size_t)(i * 37 % 150);
        memset(want[i], 'a' + i % 26, len);
        want[i][len] = '\0';
        CU_ASSERT_EQUAL_FATAL(jb_ce_set(ce, name, want[i], len), JB_OK);
    }
    /* Replace every third value (arena bytes are not reused), remove every fifth. */
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 40; i += 3) {
            snprintf(name, sizeof(name), "a%d", i);
            snprintf(want[i], sizeof(want[i]), "round %d of attribute %d", r, i);
            CU_ASSERT_EQUAL(jb_ce_set_str(ce, name, want[i]), JB_OK);
        }
    for (int i = 0; i < 40; i += 5) {
        snprintf(name, sizeof(name), "a%d", i);
        jb_ce_unset(ce, name);
        want[i][0] = '\x01'; /* removed */
    }
    jb_ce *c = jb_ce_clone(ce);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        size_t len = 0;
        const char *v = jb_ce_get(ce, name, &len);
        if (want[i][0] == '\x01') {
            CU_ASSERT_PTR_NULL(v);
            continue;
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(len, strlen(want[i]));
        CU_ASSERT_STRING_EQUAL(v, want[i]);
        CU_ASSERT_STRING_EQUAL(jb_ce_get(c, name, NULL), want[i]);
    }
    CU_ASSERT(jb_ce_equal(ce, c));
    jb_ce_destroy(c);
    jb_ce_destroy(ce);
}

/* A borrowed body is not copied and not freed by the event; a clone copies it;
 * replacing it with owned data works either way. */
static void test_borrowed_data(void)
{
    char body[] = "borrowed bytes";
    jb_ce *ce = jb_ce_create();
    jb_ce_borrow_data(ce, JB_CE_DATA_BINARY, body, 8);
    size_t len = 0;
    CU_ASSERT_PTR_EQUAL(jb_ce_data(ce, &len), (const uint8_t *)body);
    CU_ASSERT_EQUAL(len, 8);
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_BINARY);
    jb_ce *c = jb_ce_clone(ce);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(jb_ce_data(c, NULL) != (const uint8_t *)body);
    CU_ASSERT(t_data_is(c, "borrowed", 8));
    jb_ce_destroy(c);
    CU_ASSERT_EQUAL(jb_ce_set_data(ce, JB_CE_DATA_TEXT, "own", 3), JB_OK);
    CU_ASSERT(t_data_is(ce, "own", 3));
    jb_ce_borrow_data(ce, JB_CE_DATA_JSON, body, 0); /* empty: no data */
    CU_ASSERT(t_data_is(ce, "", 0));
    jb_ce_borrow_data(ce, JB_CE_DATA_BINARY, body, sizeof(body) - 1);
    jb_ce_destroy(ce); /* must not free body (ASan would say so) */
    CU_ASSERT_STRING_EQUAL(body, "borrowed bytes");
}

static void test_equal_and_clone(void)
{
    static const char *const a[] = {"id", "1", "source", "/s", "x", "y", NULL};
    static const char *const reordered[] = {"x", "y", "source", "/s", "id", "1", NULL};
    static const char *const other_value[] = {"id", "1", "source", "/t", "x", "y", NULL};
    static const char *const missing[] = {"id", "1", "source", "/s", NULL};
    static const struct {
        const char *const *kv;
        const char *data;
        bool equal;
    } cases[] = {
        {a, "d", true},        {reordered, "d", true}, {other_value, "d", false},
        {missing, "d", false}, {a, "e", false},        {a, NULL, false},
    };
    jb_ce *base = t_mk(a);
    jb_ce_set_data(base, JB_CE_DATA_TEXT, "d", 1);
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *o = t_mk(cases[i].kv);
        if (cases[i].data != NULL)
            jb_ce_set_data(o, JB_CE_DATA_TEXT, cases[i].data, strlen(cases[i].data));
        CU_ASSERT_EQUAL(jb_ce_equal(base, o), cases[i].equal);
        CU_ASSERT_EQUAL(jb_ce_equal(o, base), cases[i].equal);
        jb_ce_destroy(o);
    }
    jb_ce *c = jb_ce_clone(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(jb_ce_equal(base, c));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(c), JB_CE_DATA_TEXT);
    jb_ce_set_str(c, "x", "changed");
    CU_ASSERT_STRING_EQUAL(jb_ce_get(base, "x", NULL), "y"); /* deep copy */
    jb_ce_destroy(c);
    jb_ce_destroy(base);
}

static void test_base64(void)
{
    static const struct {
        const char *plain;
        const char *enc;
    } vec[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < JB_CASES_N(vec); i++) {
        char *e;
        size_t el;
        CU_ASSERT_EQUAL_FATAL(
            jb_base64_encode((const uint8_t *)vec[i].plain, strlen(vec[i].plain), &e, &el), JB_OK);
        CU_ASSERT_STRING_EQUAL(e, vec[i].enc);
        CU_ASSERT_EQUAL(el, strlen(vec[i].enc));
        free(e);
        uint8_t *d;
        size_t dl;
        CU_ASSERT_EQUAL_FATAL(jb_base64_decode(vec[i].enc, strlen(vec[i].enc), &d, &dl), JB_OK);
        CU_ASSERT_EQUAL(dl, strlen(vec[i].plain));
        CU_ASSERT(memcmp(d, vec[i].plain, dl) == 0);
        free(d);
    }
    static const char *const bad[] = {
        "Zg", "Zg=", "Z===", "Zm9v!A==", "Zh==", "Zm9=", "=Zg=", "Zg==Zg==", "Zm 9v", "Zm9vYg=a"};
    for (size_t i = 0; i < JB_CASES_N(bad); i++) {
        uint8_t *d = NULL;
        size_t dl;
        CU_ASSERT_EQUAL(jb_base64_decode(bad[i], strlen(bad[i]), &d, &dl), JB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(d);
    }
    /* All byte values survive. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    char *e;
    size_t el, dl;
    uint8_t *d;
    CU_ASSERT_EQUAL(jb_base64_encode(all, sizeof(all), &e, &el), JB_OK);
    CU_ASSERT_EQUAL(jb_base64_decode(e, el, &d, &dl), JB_OK);
    CU_ASSERT(dl == 256 && memcmp(d, all, 256) == 0);
    free(e);
    free(d);
}

/* The other forms the one decoder serves: JWT's unpadded base64url, and
 * kubeconfig data (white space, optional padding). */
static void test_base64_forms(void)
{
    static const struct {
        const char *in;
        unsigned flags;
        const char *plain; /* NULL: refused */
    } vec[] = {
        {"-_8", JB_B64_URL | JB_B64_NOPAD, "\xfb\xff"},
        {"Zm9vYg", JB_B64_URL | JB_B64_NOPAD, "foob"},
        {"Zm9vYg==", JB_B64_URL | JB_B64_NOPAD, NULL}, /* JWT parts carry no padding */
        {"+/8", JB_B64_URL | JB_B64_NOPAD, NULL},      /* standard alphabet */
        {"Zm9vY", JB_B64_URL | JB_B64_NOPAD, NULL},    /* 4n+1 symbols */
        {"Zh", JB_B64_URL | JB_B64_NOPAD, NULL},       /* bits after the last byte */
        {"Zm9v\nYg==", JB_B64_LENIENT, "foob"},
        {" Zm9vYg ", JB_B64_LENIENT, "foob"},
        {"Zm9vYg", JB_B64_LENIENT, "foob"},
        {"Zm9v=Yg", JB_B64_LENIENT, NULL}, /* data after padding */
        {"Zm9v!", JB_B64_LENIENT, NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(vec); i++) {
        uint8_t *d = NULL;
        size_t dl = 0;
        jb_status st = jb_base64_decode_ex(vec[i].in, strlen(vec[i].in), vec[i].flags, &d, &dl);
        if (vec[i].plain == NULL) {
            CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
            CU_ASSERT_PTR_NULL(d);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(st, JB_OK);
        CU_ASSERT_EQUAL(dl, strlen(vec[i].plain));
        CU_ASSERT(memcmp(d, vec[i].plain, dl + 1) == 0); /* NUL-terminated too */
        free(d);
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"set, get, replace in place, unset keeps order", test_set_get_replace_order},
        {"values are sized (zero bytes, empty)", test_values_with_zero_bytes},
        {"name and value length limits", test_limits},
        {"at most JB_CE_MAX_ATTRS attributes; order past inline slots", test_max_attrs},
        {"data: set, take ownership, kinds", test_data},
        {"attribute text in the arena and past it: replace, unset, clone",
         test_arena_and_heap_values},
        {"borrowed data: not copied, not freed, copied by clone", test_borrowed_data},
        {"equality ignores order; clone is deep", test_equal_and_clone},
        {"base64 RFC 4648 vectors, strict decoding", test_base64},
        {"base64 forms: unpadded base64url, lenient kubeconfig data", test_base64_forms},
    };
    return jb_cunit_main("proto_model", NULL, NULL, cases, JB_CASES_N(cases));
}
