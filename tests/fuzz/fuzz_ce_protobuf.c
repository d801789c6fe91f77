/* libFuzzer: protobuf event format, single and batch; re-encodes what decoded. */
#include "fuzz_ce_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jb_ce *ce = NULL;
    jb_err err;
    if (jb_ce_from_protobuf(data, size, &ce, &err) == JB_OK) {
        rt_protobuf(ce);
        check_event(ce);
        jb_ce_destroy(ce);
    }
    jb_ce **ces = NULL, **back = NULL;
    size_t n = 0, bn = 0;
    if (jb_ce_batch_from_protobuf(data, size, &ces, &n, &err) == JB_OK) {
        CHECK(n <= JB_CE_MAX_BATCH);
        uint8_t *b;
        size_t bl;
        jb_status st = jb_ce_batch_to_protobuf(ces, n, &b, &bl);
        CHECK(st == JB_OK || st == JB_ERR_INVALID);
        if (st == JB_OK) {
            CHECK(jb_ce_batch_from_protobuf(b, bl, &back, &bn, &err) == JB_OK);
            CHECK(bn == n);
            for (size_t i = 0; i < n; i++)
                CHECK(same(ces[i], back[i]));
            free(b);
            jb_ce_batch_free(back, bn);
        }
        for (size_t i = 0; i < n; i++)
            check_event(ces[i]);
        jb_ce_batch_free(ces, n);
    }
    return 0;
}
