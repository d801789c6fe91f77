/* Temporary stubs so that other modules can link against jb_sub.h while the
 * implementation lands; each function moves to its real file. */
#include "subscription/jb_sub.h"

#define STUB(err) jb_err_set(err, JB_ERR_INTERNAL, "not implemented yet")

jb_status jb_sub_reconciler_create(const struct jb_cfg *c, natsConnection *nc, jsCtx *js, const jb_sub_reconciler_callbacks *cb, jb_sub_reconciler **o, jb_err *err) { (void)c, (void)nc, (void)js, (void)cb, (void)o; return STUB(err); }
jb_status jb_sub_reconciler_sync(jb_sub_reconciler *r, bool d, jb_err *err) { (void)r, (void)d; return STUB(err); }
jb_status jb_sub_reconciler_start(jb_sub_reconciler *r, int64_t i, jb_err *err) { (void)r, (void)i; return STUB(err); }
void jb_sub_reconciler_kick(jb_sub_reconciler *r) { (void)r; }
bool jb_sub_reconciler_synced(const jb_sub_reconciler *r) { (void)r; return false; }
jb_status jb_sub_reconciler_consumers(jb_sub_reconciler *r, jb_sub_consumer_list *o) { (void)r, (void)o; return JB_ERR_INTERNAL; }
void jb_sub_reconciler_destroy(jb_sub_reconciler *r) { (void)r; }
jb_status jb_sub_dirwatch_start(const struct jb_cfg *c, jsCtx *js, const char *d, jb_sub_dirwatch **o, jb_err *err) { (void)c, (void)js, (void)d, (void)o; return STUB(err); }
void jb_sub_dirwatch_stop(jb_sub_dirwatch *w) { (void)w; }
jb_status jb_sub_apply_dir(jb_sub_store *st, const char *d, jb_err *err) { (void)st, (void)d; return STUB(err); }
