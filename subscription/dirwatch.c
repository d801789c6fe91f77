/* --subscriptions DIR: apply a directory of manifests to the store at start and
 * whenever its files change (inotify), deleting what was removed from it. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

/* Editors and ConfigMap updates write in several steps: wait this long after the
 * last change before applying. */
#define QUIET_MS  200
#define RETRY_MS  2000
#define MAX_FILES 4096

static bool manifest_file(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
                           (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
                           (l > 5 && strcmp(n + l - 5, ".json") == 0));
}

typedef struct applied {
    jb_sub_vec subs; /* parsed, annotated with their file */
    char **failed;   /* files that did not parse */
    size_t nfailed;
} applied;

static void applied_free(applied *a)
{
    jb_sub_vec_clear(&a->subs);
    for (size_t i = 0; i < a->nfailed; i++)
        free(a->failed[i]);
    free(a->failed);
}

/* Parses every manifest file of dir; a file that does not parse is logged and
 * remembered, so its subscriptions stay as they are. */
static jb_status parse_files(const char *dir, applied *a, jb_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    if (n < 0)
        return jb_err_set(err, JB_ERR_IO, "%s: %s", dir, strerror(errno));
    jb_status st = JB_OK;
    a->failed = calloc((size_t)n + 1, sizeof(char *));
    if (a->failed == NULL)
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (st == JB_OK && i < MAX_FILES && manifest_file(list[i]->d_name) &&
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name) < sizeof(path)) {
            jb_sub_vec v = {0};
            jb_err perr = {{0}};
            if (jb_sub_parse_path(path, NULL, &v, &perr) != JB_OK) {
                jb_log(JB_LOG_ERROR, "subscription", "manifest file not applied", "file", path,
                       "error", perr.msg, NULL);
                a->failed[a->nfailed] = strdup(path);
                a->nfailed += a->failed[a->nfailed] != NULL;
            }
            for (size_t k = 0; k < v.n && st == JB_OK; k++) {
                jb_sub *s = sub_with_meta(v.items[k], 0, JB_SUB_ANNOTATION_DIR, path);
                st = s ? jb_sub_vec_push(&a->subs, s) : JB_ERR_NOMEM;
                if (st != JB_OK)
                    jb_err_set(err, st, "out of memory");
            }
            jb_sub_vec_clear(&v);
        }
        free(list[i]);
    }
    free(list);
    return st;
}

static bool in_dir(const char *file, const char *dir)
{
    size_t l = strlen(dir);
    return strncmp(file, dir, l) == 0 && file[l] == '/' && strchr(file + l + 1, '/') == NULL;
}

/* Deletes stored subscriptions applied from dir that its files no longer hold. */
static jb_status delete_removed(jb_sub_store *st, const char *dir, const applied *a, jb_err *err)
{
    jb_sub_vec stored = {0};
    jb_status rc = jb_sub_store_list(st, NULL, &stored, err);
    for (size_t i = 0; rc == JB_OK && i < stored.n; i++) {
        const jb_sub *s = stored.items[i];
        const char *from = jb_sub_annotation(s, JB_SUB_ANNOTATION_DIR);
        if (from == NULL || !in_dir(from, dir))
            continue;
        bool keep = false;
        for (size_t k = 0; !keep && k < a->subs.n; k++)
            keep = strcmp(a->subs.items[k]->key, s->key) == 0;
        for (size_t k = 0; !keep && k < a->nfailed; k++)
            keep = strcmp(a->failed[k], from) == 0;
        if (keep)
            continue;
        rc = jb_sub_store_delete(st, s->ns, s->name, err);
        if (rc == JB_ERR_NOT_FOUND)
            rc = JB_OK;
        if (rc == JB_OK) {
            char ref[512];
            snprintf(ref, sizeof(ref), "%s/%s", s->ns, s->name);
            jb_log(JB_LOG_INFO, "subscription", "deleted: its manifest left the directory",
                   "subscription", ref, "file", from, NULL);
        }
    }
    jb_sub_vec_clear(&stored);
    return rc;
}

jb_status jb_sub_apply_dir(jb_sub_store *st, const char *dir, jb_err *err)
{
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL)
        return jb_err_set(err, JB_ERR_IO, "%s: %s", dir, strerror(errno));
    applied a = {0};
    jb_status rc = parse_files(real, &a, err);
    for (size_t i = 0; rc == JB_OK && i < a.subs.n; i++) {
        jb_sub_apply_result res;
        const jb_sub *s = a.subs.items[i];
        rc = jb_sub_store_put(st, s, &res, err);
        if (rc == JB_OK && res != JB_SUB_UNCHANGED) {
            char ref[512];
            snprintf(ref, sizeof(ref), "%s/%s", s->ns, s->name);
            jb_log(JB_LOG_INFO, "subscription", jb_sub_apply_result_str(res), "subscription", ref,
                   "file", jb_sub_annotation(s, JB_SUB_ANNOTATION_DIR), NULL);
        }
    }
    if (rc == JB_OK)
        rc = delete_removed(st, real, &a, err);
    applied_free(&a);
    return rc;
}

/* ------------------------------------------------------------ the watcher */

struct jb_sub_dirwatch {
    jb_sub_store *st;
    char *dir;
    int ifd;    /* inotify */
    int stopfd; /* eventfd: stop */
    pthread_t thread;
    bool running;
};

static void drain(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void *watch_main(void *arg)
{
    jb_sub_dirwatch *w = arg;
    bool pending = false;
    for (;;) {
        struct pollfd p[2] = {{w->ifd, POLLIN, 0}, {w->stopfd, POLLIN, 0}};
        int timeout = pending ? QUIET_MS : -1;
        int n = poll(p, 2, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (n > 0 && p[0].revents) {
            drain(w->ifd);
            pending = true; /* wait for quiet */
            continue;
        }
        if (n == 0 && pending) {
            jb_err err = {{0}};
            if (jb_sub_apply_dir(w->st, w->dir, &err) == JB_OK) {
                pending = false;
            } else {
                jb_log(JB_LOG_WARN, "subscription", "applying the directory failed; retrying",
                       "dir", w->dir, "error", err.msg, NULL);
                struct pollfd s = {w->stopfd, POLLIN, 0};
                if (poll(&s, 1, RETRY_MS) > 0)
                    break;
            }
        }
    }
    return NULL;
}

jb_status jb_sub_dirwatch_start(const jb_cfg *cfg, jsCtx *js, const char *dir,
                                jb_sub_dirwatch **out, jb_err *err)
{
    jb_sub_dirwatch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    w->ifd = w->stopfd = -1;
    jb_status rc = JB_ERR_NOMEM;
    if ((w->dir = strdup(dir)) == NULL)
        goto fail;
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    rc = jb_err_set(err, JB_ERR_IO, "%s: cannot watch: %s", dir, strerror(errno));
    if (w->ifd < 0 || w->stopfd < 0 ||
        inotify_add_watch(w->ifd, dir,
                          IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
                              IN_MOVED_FROM | IN_ATTRIB) < 0)
        goto fail;
    /* Watch first, then apply: a change during the first apply is not missed. */
    if ((rc = jb_sub_store_open(cfg, js, &w->st, err)) != JB_OK ||
        (rc = jb_sub_apply_dir(w->st, dir, err)) != JB_OK)
        goto fail;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        rc = jb_err_set(err, JB_ERR_IO, "cannot start the directory watcher");
        goto fail;
    }
    w->running = true;
    *out = w;
    return JB_OK;
fail:
    jb_sub_dirwatch_stop(w);
    return rc;
}

void jb_sub_dirwatch_stop(jb_sub_dirwatch *w)
{
    if (w == NULL)
        return;
    if (w->running) {
        uint64_t one = 1;
        if (write(w->stopfd, &one, sizeof(one)) < 0) {
            /* An eventfd write only fails on overflow; the thread is waking anyway. */
        }
        pthread_join(w->thread, NULL);
    }
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->stopfd >= 0)
        close(w->stopfd);
    jb_sub_store_close(w->st);
    free(w->dir);
    free(w);
}
