/*
 * common/ typed vectors of owned pointers: one definition of push, clear and
 * truncate for every `struct { T **items; size_t n, cap; }` a module exposes
 * (jb_sub_vec, jb_app_vec), so each keeps its typed items without casts.
 */
#ifndef JB_VEC_H
#define JB_VEC_H

#include <stdbool.h>
#include <stdlib.h>

#include "common/jb_common.h"
#include "common/jb_manifest.h"

/* Defines, for vector type VEC of ELEM pointers destroyed by DESTROY:
 *   jb_status PUSH(VEC *v, ELEM *x): appends x, taking ownership (x is destroyed
 *     when out of memory: JB_ERR_NOMEM);
 *   void CLEAR(VEC *v): destroys every item and frees the array (v NULL is fine);
 *   void TRUNCATE(VEC *v, size_t n, bool keep_array): destroys the items past the
 *     first n (what a failed call appended); without keep_array an emptied v
 *     frees its array too, as it was before that call. */
#define JB_VEC_DEFINE(VEC, ELEM, DESTROY, PUSH, CLEAR, TRUNCATE)                                   \
    jb_status PUSH(VEC *v, ELEM *x)                                                                \
    {                                                                                              \
        ELEM **items = jb_array_grow(v->items, v->n, &v->cap, sizeof(*items));                     \
        if (items == NULL) {                                                                       \
            DESTROY(x);                                                                            \
            return JB_ERR_NOMEM;                                                                   \
        }                                                                                          \
        v->items = items;                                                                          \
        v->items[v->n++] = x;                                                                      \
        return JB_OK;                                                                              \
    }                                                                                              \
    void TRUNCATE(VEC *v, size_t n, bool keep_array)                                               \
    {                                                                                              \
        while (v->n > n)                                                                           \
            DESTROY(v->items[--v->n]);                                                             \
        if (!keep_array && v->n == 0) {                                                            \
            free(v->items);                                                                        \
            v->items = NULL;                                                                       \
            v->cap = 0;                                                                            \
        }                                                                                          \
    }                                                                                              \
    void CLEAR(VEC *v)                                                                             \
    {                                                                                              \
        if (v != NULL)                                                                             \
            TRUNCATE(v, 0, false);                                                                 \
    }

/* Defines the manifest readers of a kind whose objects are made by
 *   jb_status MAKE(const cJSON *doc, const char *path, const char *arg, ELEM **out,
 *                  jb_err *err)
 * (arg: what the kind needs besides the document, for example a default namespace):
 *   static jb_status NAME(bool from_path, const char *buf, size_t len,
 *                         const char *origin, const char *arg, VEC *out, jb_err *err)
 *     reads buf (or the file, directory or "-" named origin, when from_path) with
 *     jb_manifest_each and appends the objects to out, all or nothing: on failure
 *     out is as it was;
 *   static jb_status NAME##_one(const cJSON *doc, const char *path, void *out,
 *                               jb_err *err)
 *     makes one object into *(ELEM **)out (for jb_manifest_from_json). */
#define JB_VEC_DEFINE_READER(NAME, VEC, ELEM, MAKE, PUSH, TRUNCATE)                                \
    typedef struct NAME##_ctx {                                                                    \
        VEC *out;                                                                                  \
        const char *arg;                                                                           \
    } NAME##_ctx;                                                                                  \
    static jb_status NAME##_add(const cJSON *doc, const char *path, void *ud, jb_err *err)         \
    {                                                                                              \
        NAME##_ctx *c = ud;                                                                        \
        ELEM *x = NULL;                                                                            \
        jb_status st = MAKE(doc, path, c->arg, &x, err);                                           \
        if (st == JB_OK && (st = PUSH(c->out, x)) != JB_OK)                                        \
            jb_err_set(err, st, "%s: out of memory", path);                                        \
        return st;                                                                                 \
    }                                                                                              \
    static jb_status NAME(bool from_path, const char *buf, size_t len, const char *origin,         \
                          const char *arg, VEC *out, jb_err *err)                                  \
    {                                                                                              \
        NAME##_ctx c = {out, arg};                                                                 \
        size_t n0 = out->n;                                                                        \
        bool had_items = out->items != NULL;                                                       \
        jb_status st = from_path ? jb_manifest_each_path(origin, NAME##_add, &c, err)              \
                                 : jb_manifest_each(buf, len, origin, NAME##_add, &c, err);        \
        if (st != JB_OK)                                                                           \
            TRUNCATE(out, n0, had_items);                                                          \
        return st;                                                                                 \
    }                                                                                              \
    static jb_status NAME##_one(const cJSON *doc, const char *path, void *out, jb_err *err)        \
    {                                                                                              \
        return MAKE(doc, path, NULL, out, err);                                                    \
    }

#endif
