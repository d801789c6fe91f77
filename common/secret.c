/* Secrets read from files (NATS_PASSWORD_FILE, a sink's bearer token file, ...):
 * a file keeps the secret out of the environment, the process list and the
 * configuration, and can be rotated by whoever mounts it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

jb_status jb_secret_read_file(const char *path, char **out, size_t *len, jb_err *err)
{
    jb_status st = JB_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return jb_err_set(err, JB_ERR_CONFIG, "cannot read %s: %s", path, strerror(errno));
    buf = malloc(JB_SECRET_MAX + 2);
    if (buf == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, JB_SECRET_MAX + 1, f);
    if (ferror(f)) {
        st = jb_err_set(err, JB_ERR_CONFIG, "cannot read %s", path);
        goto out;
    }
    if (n > JB_SECRET_MAX) {
        st = jb_err_set(err, JB_ERR_CONFIG, "%s: larger than %d bytes", path, JB_SECRET_MAX);
        goto out;
    }
    /* Editors and `echo` add a line break; it is never part of the secret. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0 || memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL) {
        st = jb_err_set(err, JB_ERR_CONFIG, "%s: want one non-empty line", path);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    buf = NULL;
out:
    if (buf != NULL) {
        memset(buf, 0, JB_SECRET_MAX + 2);
        free(buf);
    }
    fclose(f);
    return st;
}

void jb_secret_free(char *s)
{
    if (s == NULL)
        return;
    /* Not a guarantee (copies may exist), but the freed heap holds no secret. */
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    free(s);
}
