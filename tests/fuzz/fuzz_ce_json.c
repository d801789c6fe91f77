/* libFuzzer: JSON event format, single and batch; re-encodes what decoded. */
#include "fuzz_ce_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    jb_ce *ce = NULL;
    jb_err err;
    if (jb_ce_from_json(in, size, &ce, &err) == JB_OK) {
        rt_json(ce);
        check_event(ce);
        jb_ce_destroy(ce);
    }
    jb_ce **ces = NULL, **back = NULL;
    size_t n = 0, bn = 0;
    if (jb_ce_batch_from_json(in, size, &ces, &n, &err) == JB_OK) {
        CHECK(n <= JB_CE_MAX_BATCH);
        char *s;
        size_t sl;
        CHECK(jb_ce_batch_to_json(ces, n, &s, &sl) == JB_OK);
        CHECK(jb_ce_batch_from_json(s, sl, &back, &bn, &err) == JB_OK);
        CHECK(bn == n);
        for (size_t i = 0; i < n; i++) {
            CHECK(jb_ce_equal(ces[i], back[i]));
            check_event(ces[i]);
        }
        free(s);
        jb_ce_batch_free(back, bn);
        jb_ce_batch_free(ces, n);
    }
    return 0;
}
