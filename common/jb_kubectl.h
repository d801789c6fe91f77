/*
 * common/ kubectl-style resource commands: what `jetbridge sub` and `jetbridge
 * app` share (flags, -o json|yaml output, error wording, the short-lived NATS
 * connection). Each command keeps its own verbs, tables and messages.
 */
#ifndef JB_KUBECTL_H
#define JB_KUBECTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/jb_common.h"

struct cJSON;

#define JB_KCTL_MAX_FILES 64

typedef struct jb_kctl_opts {
    const char *files[JB_KCTL_MAX_FILES]; /* -f/--filename, in order */
    int nfiles;
    const char *ns;     /* -n/--namespace; NULL when not given */
    bool all;           /* -A/--all-namespaces */
    const char *output; /* -o/--output: NULL, "json" or "yaml" */
    const char *name;   /* the one positional argument */
} jb_kctl_opts;

/* Parses argv[first..argc) of `jetbridge <cmd> VERB ...`: -f (repeatable, at most
 * JB_KCTL_MAX_FILES), -o json|yaml, one NAME and, when namespaced, -n and -A.
 * Returns 0, or 2 after printing `jetbridge <cmd>: <problem> "<arg>"; see
 * `jetbridge <cmd> --help`` to stderr. */
int jb_kctl_parse(const char *cmd, bool namespaced, int argc, char **argv, int first,
                  jb_kctl_opts *o);

/* True when argv[from..argc) holds --help or -h. */
bool jb_kctl_wants_help(int argc, char **argv, int from);

/* Prints n objects as kubectl -o json|yaml does: the object itself when single,
 * else a v1 List of them. obj(i, ud) makes the i-th (the helper frees it; NULL,
 * out of memory, is skipped). Returns 0, or 1 after printing an error. */
typedef struct cJSON *(*jb_kctl_obj_fn)(size_t i, void *ud);
int jb_kctl_print(size_t n, bool single, const char *output, jb_kctl_obj_fn obj, void *ud);

/* Prints err as kubectl does ("Error from server (NotFound): ..." for
 * JB_ERR_NOT_FOUND, else "error: ...") and returns 1, the exit code. */
int jb_kctl_report(jb_status st, const jb_err *err);

/* ------------------------------------------------ a resource's command */

typedef struct jb_kctl_resource jb_kctl_resource;

/* What a verb works with. nc, js and store are NULL until jb_kctl_store. */
typedef struct jb_kctl_ctx {
    const jb_kctl_resource *res;
    const void *cfg;          /* the command's configuration, passed through (jb_cfg) */
    const jb_nats_opts *nats; /* where jb_kctl_store connects */
    jb_kctl_opts o;           /* the verb's flags (not parsed for an own_args verb) */
    int argc;                 /* argv[0] is the command, argv[1] the verb */
    char **argv;
    natsConnection *nc;
    jsCtx *js;
    void *store; /* what res->open made */
} jb_kctl_ctx;

typedef struct jb_kctl_verb {
    const char *verb;
    int (*run)(jb_kctl_ctx *c); /* returns the exit code */
    bool own_args;              /* the verb reads argv itself (for example `token create`) */
} jb_kctl_verb;

struct jb_kctl_resource {
    const char *cmd;    /* "sub": messages say `jetbridge sub` */
    const char *client; /* the NATS connection name */
    bool namespaced;    /* -n and -A exist */
    const jb_kctl_verb *verbs;
    size_t nverbs;
    void (*usage)(FILE *f, const char *verb); /* verb NULL: every verb */
    /* Opens the resource's store on js (*store is the resource's), and closes it. */
    jb_status (*open)(const void *cfg, jsCtx *js, void **store, jb_err *err);
    void (*close)(void *store);
};

/* `jetbridge <cmd> VERB [flags]`: help (`--help` anywhere, `help`, or no verb: exit
 * 2), an unknown verb (2), flags (2 when wrong), then the verb. Closes what
 * jb_kctl_store opened. Returns the exit code. */
int jb_kctl_main(const jb_kctl_resource *res, const void *cfg, const jb_nats_opts *nats, int argc,
                 char **argv);

/* For verbs that need a NAME: 0 when there is one, else 2 after saying so. */
int jb_kctl_need_name(const jb_kctl_ctx *c);

/* Connects to NATS_URL (no retry in the background) and opens the store, once: a
 * verb calls it after its usage checks, so a usage error never waits for NATS.
 * 0, or 1 after printing the error. */
int jb_kctl_store(jb_kctl_ctx *c);

#endif
