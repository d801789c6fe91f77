/* Temporary stubs so that other modules can link against jb_sub.h while the
 * implementation lands; each function moves to its real file. */
#include "subscription/jb_sub.h"

#include <stdlib.h>

#define STUB(err) jb_err_set(err, JB_ERR_INTERNAL, "not implemented yet")

jb_status jb_sub_store_open(const struct jb_cfg *c, jsCtx *js, jb_sub_store **o, jb_err *err)
{
    (void)c, (void)js, (void)o;
    return STUB(err);
}
void jb_sub_store_close(jb_sub_store *st)
{
    (void)st;
}
const char *jb_sub_apply_result_str(jb_sub_apply_result r)
{
    (void)r;
    return "";
}
jb_status jb_sub_store_put(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *r, jb_err *err)
{
    (void)st, (void)s, (void)r;
    return STUB(err);
}
jb_status jb_sub_store_get(jb_sub_store *st, const char *ns, const char *n, jb_sub **o, jb_err *err)
{
    (void)st, (void)ns, (void)n, (void)o;
    return STUB(err);
}
jb_status jb_sub_store_list(jb_sub_store *st, const char *ns, jb_sub_vec *o, jb_err *err)
{
    (void)st, (void)ns, (void)o;
    return STUB(err);
}
jb_status jb_sub_store_delete(jb_sub_store *st, const char *ns, const char *n, jb_err *err)
{
    (void)st, (void)ns, (void)n;
    return STUB(err);
}
jb_status jb_sub_store_get_status(jb_sub_store *st, const char *ns, const char *n, char **j,
                                  jb_err *err)
{
    (void)st, (void)ns, (void)n, (void)j;
    return STUB(err);
}
jb_status jb_sub_store_put_status(jb_sub_store *st, const char *ns, const char *n, const char *j,
                                  bool *c, jb_err *err)
{
    (void)st, (void)ns, (void)n, (void)j, (void)c;
    return STUB(err);
}
jb_status jb_sub_store_subscribed_json(jb_sub_store *st, const struct jb_cfg *c, const char *a,
                                       size_t al, char **j, size_t *jl, jb_err *err)
{
    (void)st, (void)c, (void)a, (void)al, (void)j, (void)jl;
    return STUB(err);
}
jb_status jb_sub_ensure_stream(const struct jb_cfg *c, jsCtx *js, jb_err *err)
{
    (void)c, (void)js;
    return STUB(err);
}
jb_status jb_sub_reconciler_create(const struct jb_cfg *c, natsConnection *nc, jsCtx *js,
                                   const jb_sub_reconciler_callbacks *cb, jb_sub_reconciler **o,
                                   jb_err *err)
{
    (void)c, (void)nc, (void)js, (void)cb, (void)o;
    return STUB(err);
}
jb_status jb_sub_reconciler_sync(jb_sub_reconciler *r, bool d, jb_err *err)
{
    (void)r, (void)d;
    return STUB(err);
}
jb_status jb_sub_reconciler_start(jb_sub_reconciler *r, int64_t i, jb_err *err)
{
    (void)r, (void)i;
    return STUB(err);
}
void jb_sub_reconciler_kick(jb_sub_reconciler *r)
{
    (void)r;
}
bool jb_sub_reconciler_synced(const jb_sub_reconciler *r)
{
    (void)r;
    return false;
}
jb_status jb_sub_reconciler_consumers(jb_sub_reconciler *r, jb_sub_consumer_list *o)
{
    (void)r, (void)o;
    return JB_ERR_INTERNAL;
}
void jb_sub_reconciler_destroy(jb_sub_reconciler *r)
{
    (void)r;
}
jb_status jb_sub_dirwatch_start(const struct jb_cfg *c, jsCtx *js, const char *d,
                                jb_sub_dirwatch **o, jb_err *err)
{
    (void)c, (void)js, (void)d, (void)o;
    return STUB(err);
}
void jb_sub_dirwatch_stop(jb_sub_dirwatch *w)
{
    (void)w;
}
jb_status jb_sub_apply_dir(jb_sub_store *st, const char *d, jb_err *err)
{
    (void)st, (void)d;
    return STUB(err);
}
