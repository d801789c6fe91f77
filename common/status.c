#include "common/jb_status.h"

#include <stdarg.h>
#include <stdio.h>

const char *jb_status_str(jb_status s)
{
    /* No default: the compiler names a status that has no text. */
    switch (s) {
    case JB_OK:
        return "ok";
    case JB_ERR_NOMEM:
        return "out of memory";
    case JB_ERR_INVALID:
        return "invalid input";
    case JB_ERR_TOO_LARGE:
        return "too large";
    case JB_ERR_UNSUPPORTED:
        return "unsupported";
    case JB_ERR_NOT_FOUND:
        return "not found";
    case JB_ERR_FULL:
        return "full";
    case JB_ERR_TIMEOUT:
        return "timeout";
    case JB_ERR_NOT_CONNECTED:
        return "not connected to NATS";
    case JB_ERR_NO_STREAM:
        return "no stream for subject";
    case JB_ERR_STORAGE_FULL:
        return "stream storage full";
    case JB_ERR_NATS:
        return "NATS error";
    case JB_ERR_IO:
        return "I/O error";
    case JB_ERR_CONFIG:
        return "bad configuration";
    case JB_ERR_CONFLICT:
        return "conflict";
    case JB_ERR_CLOSED:
        return "closed";
    case JB_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

jb_status jb_err_set(jb_err *err, jb_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}
