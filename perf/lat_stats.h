/* Latency figures for the benchmarks that time events one by one (disp_e2e,
 * hop_chain): percentiles of a sorted array of nanoseconds, in milliseconds, and the
 * p99 of the events sent from a point on (the run without its start from idle). */
#ifndef JB_PERF_LAT_STATS_H
#define JB_PERF_LAT_STATS_H

#include <stdint.h>
#include <stdlib.h>

static inline int lat_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100; 100: the largest) of sorted[0..n), in ms; 0 when n is 0. */
static inline double lat_pct_ms(const int64_t *sorted, size_t n, int p)
{
    if (n == 0)
        return 0;
    size_t i = n * (size_t)p / 100;
    return (double)sorted[i < n ? i : n - 1] / 1e6;
}

/* Where the warm part of a run starts: E2E_WARM_MS (1000) after its start t0. */
static inline int64_t lat_warm_from(int64_t t0)
{
    const char *wm = getenv("E2E_WARM_MS");
    return t0 + (wm != NULL ? strtoll(wm, NULL, 10) : 1000) * 1000000LL;
}

/* The p99 (ms) of the lat[i] whose sent[i] is from or later, and how many those were
 * (into *n_out); lat and sent are not changed. 0 when there are none or no memory. */
static inline double lat_p99_from(const int64_t *lat, const int64_t *sent, size_t n, int64_t from,
                                  size_t *n_out)
{
    size_t k = 0;
    double p99 = 0;
    int64_t *part = sent != NULL ? malloc(n * sizeof(*part) + 1) : NULL;
    if (part != NULL) {
        for (size_t i = 0; i < n; i++)
            if (sent[i] >= from)
                part[k++] = lat[i];
        qsort(part, k, sizeof(*part), lat_cmp);
        p99 = lat_pct_ms(part, k, 99);
        free(part);
    }
    *n_out = k;
    return p99;
}

#endif
