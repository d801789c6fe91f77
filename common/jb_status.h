/*
 * jb_status: the one status enum of jetbridge, and jb_err, a fixed buffer for the
 * human-readable message that goes with a failure (for example the 400 body
 * "type: MUST be a non-empty string"). This header is the floor every module stands
 * on, proto/ and config/ included; it depends on nothing.
 */
#ifndef JB_STATUS_H
#define JB_STATUS_H

#include <stddef.h>

typedef enum jb_status {
    JB_OK = 0,
    JB_ERR_NOMEM,         /* allocation failed */
    JB_ERR_INVALID,       /* input is malformed or violates a rule; jb_err says which */
    JB_ERR_TOO_LARGE,     /* input exceeds a configured limit */
    JB_ERR_UNSUPPORTED,   /* a format or feature we do not implement (for example avro) */
    JB_ERR_NOT_FOUND,     /* the named object does not exist */
    JB_ERR_FULL,          /* a bounded queue or window is full: try again later */
    JB_ERR_TIMEOUT,       /* no answer in time */
    JB_ERR_NOT_CONNECTED, /* no connection to NATS */
    JB_ERR_NO_STREAM,     /* no JetStream stream answers for the subject */
    JB_ERR_STORAGE_FULL,  /* JetStream storage is full */
    JB_ERR_NATS,          /* another NATS or JetStream error */
    JB_ERR_IO,            /* a system call failed */
    JB_ERR_CONFIG,        /* bad configuration value */
    JB_ERR_CONFLICT,      /* the object changed under us, or already exists */
    JB_ERR_CLOSED,        /* the receiver stopped taking (a closed mailbox) */
    JB_ERR_INTERNAL,      /* a bug: a state that should not happen */
} jb_status;

/* Returns a constant, lower-case description of s; never NULL. */
const char *jb_status_str(jb_status s);

/* A human-readable error message that travels with a non-OK jb_status. */
#define JB_ERR_MSG_MAX 512
typedef struct jb_err {
    char msg[JB_ERR_MSG_MAX];
} jb_err;

/* Formats into err->msg (truncating safely); err may be NULL. Returns code so that
 * callers can write `return jb_err_set(err, JB_ERR_INVALID, "...")`. */
jb_status jb_err_set(jb_err *err, jb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
