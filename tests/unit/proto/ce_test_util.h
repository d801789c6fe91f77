/* Helpers shared by the proto unit tests (header-only: each test file is its own
 * program). */
#ifndef JB_CE_TEST_UTIL_H
#define JB_CE_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "jb_cunit.h"
#include "proto/jb_ce.h"

/* Builds an event from NULL-terminated name/value pairs. */
static inline jb_ce *t_mk(const char *const *kv)
{
    jb_ce *ce = jb_ce_create();
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
        if (jb_ce_set_str(ce, kv[i], kv[i + 1]) != JB_OK) {
            jb_ce_destroy(ce);
            return NULL;
        }
    }
    return ce;
}

/* A valid event with every attribute kind the model knows. */
static inline jb_ce *t_valid(void)
{
    static const char *const kv[] = {"specversion", "1.0",        "id",   "A234-1234-1234",
                                     "source",      "/mycontext", "type", "order.created.v1",
                                     NULL};
    return t_mk(kv);
}

/* True when ce has exactly the attributes kv (any order). */
static inline int t_has(const jb_ce *ce, const char *const *kv)
{
    size_t n = 0;
    for (size_t i = 0; kv[i] != NULL; i += 2, n++) {
        size_t len;
        const char *v = jb_ce_get(ce, kv[i], &len);
        if (v == NULL || len != strlen(kv[i + 1]) || memcmp(v, kv[i + 1], len) != 0)
            return 0;
    }
    return n == jb_ce_attr_count(ce);
}

/* Compares the data of ce with the given bytes. */
static inline int t_data_is(const jb_ce *ce, const void *d, size_t n)
{
    size_t len;
    const uint8_t *p = jb_ce_data(ce, &len);
    return len == n && (n == 0 || memcmp(p, d, n) == 0);
}

#endif
