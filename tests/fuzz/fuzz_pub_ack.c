/*
 * libFuzzer target for the JetStream ack parser (jb_pub_ack_parse), which reads the
 * ack message every publish gets back. The input is the message's data, copied to an
 * exact-size buffer (no NUL), so any read past its length is caught. Properties: the
 * status is one the publisher documents for an ack (204, 500, 503, 504, 507); there
 * is an error text exactly when the status is not 204; the parser answers the same
 * twice; a "no responders" answer is 504 whatever the data.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "publisher/pub_internal.h"

static int parse(const char *d, size_t n, bool nr)
{
    char *text = (char *)"unset";
    int st = jb_pub_ack_parse(d, n, nr, &text);
    if (st != 204 && st != 500 && st != 503 && st != 504 && st != 507)
        abort();
    if ((st == 204) != (text == NULL))
        abort();
    free(text);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return 0;
    if (size > 0)
        memcpy(buf, data, size);
    int a = parse(buf, size, false);
    if (parse(buf, size, false) != a)
        abort();
    if (parse(buf, size, true) != 504)
        abort();
    free(buf);
    return 0;
}
