/* libFuzzer: NATS binding decoding (binary or structured) of a natsMsg built from
 * the input: "key:value" lines, an empty line, then the payload. */
#include "fuzz_ce_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t i = 0;
    char key[256], value[16384];
    natsMsg *msg = NULL;
    /* Find the payload first: headers are added after creating the message. */
    const char *sep = NULL;
    for (size_t k = 0; k + 1 < size; k++) {
        if (in[k] == '\n' && in[k + 1] == '\n') {
            sep = in + k;
            break;
        }
    }
    size_t hend = sep != NULL ? (size_t)(sep - in) : size;
    size_t pstart = sep != NULL ? hend + 2 : size;
    if (size - pstart > (size_t)INT32_MAX)
        return 0;
    if (natsMsg_Create(&msg, "kyma.fuzz", NULL, in + pstart, (int)(size - pstart)) != NATS_OK)
        return 0;
    while (i < hend) {
        const char *nl = memchr(in + i, '\n', hend - i);
        size_t end = nl != NULL ? (size_t)(nl - in) : hend;
        const char *colon = memchr(in + i, ':', end - i);
        if (colon != NULL) {
            size_t c = (size_t)(colon - in);
            size_t kl = c - i, vl = end - c - 1;
            if (kl > 0 && kl < sizeof(key) && vl < sizeof(value)) {
                memcpy(key, in + i, kl);
                key[kl] = '\0';
                memcpy(value, in + c + 1, vl);
                value[vl] = '\0';
                if (strlen(key) == kl)
                    natsMsgHeader_Add(msg, key, value);
            }
        }
        i = end + 1;
    }
    jb_ce *ce = NULL;
    jb_err err = {{0}};
    jb_status st = jb_ce_from_nats(msg, &ce, &err);
    /* Borrowing the payload decodes the same event, or fails the same way. */
    jb_ce *borrowed = NULL;
    jb_err berr = {{0}};
    if (jb_ce_from_nats_borrow(msg, &borrowed, &berr) != st ||
        (st == JB_OK &&
         (!jb_ce_equal(ce, borrowed) || jb_ce_data_kind_of(ce) != jb_ce_data_kind_of(borrowed))) ||
        (st != JB_OK && strcmp(err.msg, berr.msg) != 0))
        abort();
    jb_ce_destroy(borrowed);
    if (st == JB_OK) {
        rt_nats(ce);
        check_event(ce);
        jb_ce_destroy(ce);
    }
    natsMsg_Destroy(msg);
    return 0;
}
