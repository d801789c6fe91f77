/*
 * libFuzzer target for the configuration value parsers. The first byte picks the
 * parser, the rest is the value (copied to an exact-size buffer so that reading
 * past the length is caught). Properties: no crash; an accepted value is in range;
 * the canonical spelling of an accepted value parses back to the same number;
 * the ISO 8601 parser never accepts what the general duration parser refuses, and
 * both agree on the value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_text.h"
#include "config/jb_cfg.h"

static void check_duration(const char *s, size_t len)
{
    int64_t ms = -1, iso = -1, again = -1;
    bool ok = jb_cfg_parse_duration_ms(s, len, &ms);
    bool iso_ok = jb_cfg_parse_iso8601_duration_ms(s, len, &iso);
    if (ok) {
        if (ms < 0)
            abort();
        char canon[32];
        int n = snprintf(canon, sizeof(canon), "%lldms", (long long)ms);
        if (!jb_cfg_parse_duration_ms(canon, (size_t)n, &again) || again != ms)
            abort();
    }
    if (iso_ok && (!ok || iso != ms))
        abort();
}

static void check_size(const char *s, size_t len)
{
    int64_t v = -1, again = -1;
    if (!jb_cfg_parse_size(s, len, &v))
        return;
    if (v < 0)
        abort();
    char canon[32];
    int n = snprintf(canon, sizeof(canon), "%lld", (long long)v);
    if (!jb_cfg_parse_size(canon, (size_t)n, &again) || again != v)
        abort();
}

static void check_int(const char *s, size_t len)
{
    static const int64_t ranges[][2] = {{1, 65535}, {-1, INT64_MAX}, {INT64_MIN, INT64_MAX}};
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        int64_t v = 0, again = 0;
        if (!jb_parse_int(s, len, ranges[r][0], ranges[r][1], &v))
            continue;
        if (v < ranges[r][0] || v > ranges[r][1])
            abort();
        char canon[32];
        int n = snprintf(canon, sizeof(canon), "%lld", (long long)v);
        if (!jb_parse_int(canon, (size_t)n, ranges[r][0], ranges[r][1], &again) || again != v)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, len);
    bool b;
    switch (data[0] % 4) {
    case 0:
        check_duration(s, len);
        break;
    case 1:
        check_size(s, len);
        break;
    case 2:
        check_int(s, len);
        break;
    default:
        (void)jb_cfg_parse_bool(s, len, &b);
        check_duration(s, len);
        check_size(s, len);
        check_int(s, len);
    }
    free(s);
    return 0;
}
