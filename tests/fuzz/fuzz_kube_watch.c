/* libFuzzer: the Kubernetes watch stream parser, fed in two chunks split where the
 * first byte says, with a small line limit so that oversized lines are exercised.
 * Invariants that fail abort. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "kube/jb_kube.h"

typedef struct counts {
    size_t events;
} counts;

static bool on_event(jb_kube_event_type t, const cJSON *obj, void *ud)
{
    counts *c = ud;
    if (!cJSON_IsObject(obj) || t > JB_KUBE_ERROR)
        abort();
    c->events++;
    return c->events < 1000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) { /* skipped lines are logged as warnings: keep the run fast */
        jb_log_setup(JB_LOG_ERROR, true);
        quiet = true;
    }
    if (size == 0)
        return 0;
    counts c = {0};
    jb_kube_watch_parser *p = jb_kube_watch_parser_create(4096, on_event, &c);
    if (p == NULL)
        return 0;
    size_t split = data[0] % size;
    const char *d = (const char *)data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    if (jb_kube_watch_feed(p, d, split))
        (void)jb_kube_watch_feed(p, d + split, n - split);
    /* Every newline-terminated line is an event, malformed or oversized. */
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    if (c.events + jb_kube_watch_malformed(p) + jb_kube_watch_oversized(p) > lines + 1)
        abort();
    jb_kube_watch_parser_destroy(p);
    return 0;
}
