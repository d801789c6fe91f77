/*
 * Private to config/: the typed side of the key table (how each key is parsed and
 * where it is stored in jb_cfg). The public side (names, defaults, help) is
 * jb_cfg_key_info; both are generated from the one list in keys.c.
 */
#ifndef JB_CFG_INTERNAL_H
#define JB_CFG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/jb_cfg.h"

typedef enum cfg_kind {
    CFG_INT,      /* int field, decimal integer in [min, max] */
    CFG_I64,      /* int64_t field, decimal integer in [min, max] */
    CFG_DURATION, /* int64_t milliseconds in [min, max] */
    CFG_SIZE,     /* int64_t bytes in [min, max]; "-1" is accepted when min is -1 */
    CFG_STRING,   /* char *, any value */
    CFG_NONEMPTY, /* char *, any non-empty value */
    CFG_TOKEN,    /* char *, a NATS name: non-empty, no whitespace . * > / \ */
    CFG_ENUM,     /* enum field: index of the value in choices ("file|memory") */
    CFG_CHOICE,   /* char *, restricted to choices */
    CFG_ADDR,     /* char *, "host:port" or ":port" */
    CFG_LOGFMT,   /* bool log_json (+ log_format_auto): "auto", "json" or "text" ("console") */
    CFG_IP,       /* char *, a numeric IPv4 or IPv6 address */
} cfg_kind;

typedef struct cfg_spec {
    cfg_kind kind;
    size_t off; /* offsetof(jb_cfg, field) */
    int64_t min, max;
    const char *choices; /* '|'-separated, for CFG_ENUM and CFG_CHOICE */
} cfg_spec;

/* The table: infos[i] and specs[i] describe key i. */
const cfg_spec *cfg_specs(size_t *n);

/* Index of the key with env name / flag name (without "--") of length len, or -1. */
int cfg_find_env(const char *name, size_t len);
int cfg_find_flag(const char *name, size_t len);

/* Parses value[0..len) for key i into cfg. On failure writes "invalid value
 * \"...\": want <allowed>" to err (prefixed by the caller) and returns false. */
bool cfg_apply(jb_cfg *cfg, size_t i, const char *value, size_t len, char *why, size_t whylen);

#endif
