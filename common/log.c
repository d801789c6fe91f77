/* Structured logging: one line per event; JSON, or key=value text for a terminal.
 * Fields with an empty value are left out. */
#include "common/jb_common.h"
#include "common/jb_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once by jb_log_setup before threads start, read-only afterwards. */
static struct {
    jb_log_level min;
    bool json;
} log_conf = {JB_LOG_INFO, true};

static const char *level_name(jb_log_level l)
{
    switch (l) {
    case JB_LOG_DEBUG:
        return "debug";
    case JB_LOG_INFO:
        return "info";
    case JB_LOG_WARN:
        return "warn";
    case JB_LOG_ERROR:
        return "error";
    }
    return "info";
}

void jb_log_setup(jb_log_level min_level, bool json)
{
    log_conf.min = min_level;
    log_conf.json = json;
}

bool jb_log_level_parse(const char *s, jb_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (jb_log_level)i;
            return true;
        }
    }
    return false;
}

/* A fixed line buffer: a log line never allocates and is cut, not overflowed. */
typedef struct line {
    char buf[4096];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 2 - l->len; /* keep room for "\n" and NUL */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string: the escaped text between quotes, cut where the line ends. */
static void put_json_str(line *l, const char *s)
{
    put(l, "\"", 1);
    size_t room = sizeof(l->buf) - 2 - l->len; /* as put() keeps room for "\n" and NUL */
    size_t n = jb_json_escape_into(l->buf + l->len, room + 1, s, strlen(s));
    l->len += n < room ? n : room;
    put(l, "\"", 1);
}

/* Text format: a value with spaces, quotes, '=' or control bytes is written as a
 * JSON string, so that a line still splits unambiguously into key=value pairs. */
static void put_text_value(line *l, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f) {
            put_json_str(l, s);
            return;
        }
    }
    if (*s == '\0')
        put(l, "\"\"", 2);
    else
        puts_(l, s);
}

void jb_log(jb_log_level level, const char *component, const char *msg, ...)
{
    if (level < log_conf.min)
        return;
    line l = {.len = 0};
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    va_list ap;
    va_start(ap, msg);
    if (log_conf.json) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_name(level));
        puts_(&l, "\",\"component\":");
        put_json_str(&l, component ? component : "");
        puts_(&l, ",\"msg\":");
        put_json_str(&l, msg);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            if (v == NULL || v[0] == '\0')
                continue; /* an empty field says nothing */
            puts_(&l, ",");
            put_json_str(&l, k);
            puts_(&l, ":");
            put_json_str(&l, v ? v : "");
        }
        puts_(&l, "}");
    } else {
        puts_(&l, ts);
        puts_(&l, " ");
        puts_(&l, level_name(level));
        puts_(&l, " ");
        puts_(&l, component ? component : "");
        puts_(&l, " ");
        puts_(&l, msg);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            if (v == NULL || v[0] == '\0')
                continue;
            puts_(&l, " ");
            puts_(&l, k);
            puts_(&l, "=");
            put_text_value(&l, v ? v : "");
        }
    }
    va_end(ap);
    l.buf[l.len++] = '\n';
    /* One write(2) per line keeps lines whole when threads log at once. */
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
