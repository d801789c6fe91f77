/*
 * libFuzzer target: the ingress request guard's head parser (publisher/guard.c):
 * finding the end of a request head, resumed at every split point as a slowly
 * sent head would be, and checking it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "publisher/pub_guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    pub_guard_cfg cfg = {.max_body = 65536, .max_head = 16384, .deadline_ms = 1000};
    size_t scan = 0, end = pub_guard_head_end(p, size, &scan);
    /* Fed in two parts, the search must find the same end. */
    size_t scan2 = 0, half = size / 2;
    size_t end2 = pub_guard_head_end(p, half, &scan2);
    if (end2 == 0)
        end2 = pub_guard_head_end(p, size, &scan2);
    if (end != end2 || end > size || scan > size)
        abort();
    pub_guard_head h;
    pub_guard_check_head(p, end > 0 ? end : size, &cfg, &h);
    if (h.code == 0 && (h.content_length < 0 || h.content_length > cfg.max_body))
        abort();
    if (h.code != 0 && h.why == NULL)
        abort();
    return 0;
}
