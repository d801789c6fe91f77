/*
 * libFuzzer target for the Prometheus text reader behind `jetbridge stats`
 * (jb_prom_next, jb_prom_label in common/prom.c). Two halves:
 *  - the input as a scraped page, copied to an exact-size buffer (no NUL), so any
 *    read past its length is caught: every sample's name and labels lie inside the
 *    buffer, names are Prometheus names, labels are looked up without crashing, and
 *    the reader always moves forward and ends;
 *  - a round trip: the input split into two label values and a number, written by
 *    the registry (common/metrics.c) that the processes serve, must read back as the
 *    same values and the same number: what the writer escapes, the reader undoes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

static void read_page(const uint8_t *data, size_t size)
{
    char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return;
    if (size > 0)
        memcpy(buf, data, size);
    size_t pos = 0, last = 0;
    jb_prom_sample s;
    while (jb_prom_next(buf, size, &pos, &s)) {
        if (pos <= last && last != 0)
            abort(); /* no progress */
        last = pos;
        if (pos > size || s.name_len == 0 || !inside(s.name, s.name_len, buf, size))
            abort();
        if (s.labels_len > 0 && !inside(s.labels, s.labels_len, buf, size))
            abort();
        for (size_t i = 0; i < s.name_len; i++)
            if (s.name[i] == ' ' || s.name[i] == '{' || s.name[i] == '\n')
                abort();
        char v[8];
        (void)jb_prom_label(&s, "consumer_name", v, sizeof(v));
        (void)jb_prom_label(&s, "a", v, 1);
    }
    if (pos != size)
        abort(); /* the reader stops only at the end */
    free(buf);
}

/* A label value from data: NUL bytes dropped (values are C strings), at most 500
 * bytes (the registry cuts at 512). */
static char *value_from(const uint8_t *d, size_t n)
{
    char *v = malloc(n + 1);
    size_t o = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n && o < 500; i++)
        if (d[i] != 0)
            v[o++] = (char)d[i];
    v[o] = '\0';
    return v;
}

static void round_trip(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    uint32_t num = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16;
    data += 4;
    size -= 4;
    size_t half = size / 2;
    char *a = value_from(data, half), *b = value_from(data + half, size - half);
    jb_metrics *m = jb_metrics_create(16);
    static const char *const names[] = {"consumer_name", "response_code"};
    jb_metric *c = jb_metrics_counter(m, "rt_total", "round trip", 2, names);
    char *page = NULL;
    size_t len = 0;
    if (a == NULL || b == NULL || m == NULL || c == NULL)
        goto out;
    const char *vals[] = {a, b};
    jb_metric_add(c, vals, (double)num);
    if (jb_metrics_render(m, &page, &len) != JB_OK)
        goto out;
    jb_prom_sample s;
    size_t pos = 0;
    bool found = false;
    while (jb_prom_next(page, len, &pos, &s)) {
        if (s.name_len != 8 || memcmp(s.name, "rt_total", 8) != 0)
            continue;
        char got_a[600], got_b[600];
        if (found || !jb_prom_label(&s, "consumer_name", got_a, sizeof(got_a)) ||
            !jb_prom_label(&s, "response_code", got_b, sizeof(got_b)) || strcmp(got_a, a) != 0 ||
            strcmp(got_b, b) != 0 || s.value != (double)num)
            abort();
        found = true;
    }
    if (!found)
        abort();
out:
    free(page);
    jb_metrics_destroy(m);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_page(data, size);
    round_trip(data, size);
    return 0;
}
