/* Temporary stubs so that other modules can link against jb_sub.h while the
 * implementation lands; each function moves to its real file. */
#include "subscription/jb_sub.h"

#define STUB(err) jb_err_set(err, JB_ERR_INTERNAL, "not implemented yet")

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
