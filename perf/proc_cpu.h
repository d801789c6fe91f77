/* CPU time (user + system, seconds) of this process, and of another one from
 * /proc/PID/stat, for the benchmarks that report what they and a peer (nats-server,
 * the sink) spent per event. BENCH_WATCH_PID in the environment names the peer;
 * without it, or when it cannot be read, the figure is -1. */
#ifndef JB_PERF_PROC_CPU_H
#define JB_PERF_PROC_CPU_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static inline double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline double watched_cpu_s(void)
{
    const char *pid = getenv("BENCH_WATCH_PID");
    if (pid == NULL || *pid == '\0')
        return -1;
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    bool ok = f != NULL && fgets(line, sizeof(line), f) != NULL;
    if (f != NULL)
        fclose(f);
    if (!ok)
        return -1;
    /* Fields after the command's closing parenthesis, from field 3 (state) on:
     * utime is field 14, stime 15. */
    const char *p = strrchr(line, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field <= 15; field++) {
        while (*p != '\0' && *p != ' ')
            p++;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return -1;
        if (field == 14)
            ut = strtoull(p, NULL, 10);
        else if (field == 15)
            st = strtoull(p, NULL, 10);
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#endif
