/* Temporary stubs so that other modules can link against jb_sub.h while the
 * implementation lands; each function moves to its real file. */
#include "subscription/jb_sub.h"

#include <stdlib.h>

#define STUB(err) jb_err_set(err, JB_ERR_INTERNAL, "not implemented yet")

void jb_sub_vec_clear(jb_sub_vec *v) { (void)v; }
jb_status jb_sub_parse(const char *b, size_t l, const char *o, const char *d, jb_sub_vec *v,
                       jb_err *err) { (void)b, (void)l, (void)o, (void)d, (void)v; return STUB(err); }
jb_status jb_sub_parse_path(const char *p, const char *d, jb_sub_vec *v, jb_err *err) { (void)p, (void)d, (void)v; return STUB(err); }
jb_status jb_sub_from_json(const char *j, size_t l, jb_sub **o, jb_err *err) { (void)j, (void)l, (void)o; return STUB(err); }
const char *jb_sub_json(const jb_sub *s) { (void)s; return ""; }
jb_sub *jb_sub_dup(const jb_sub *s) { (void)s; return NULL; }
void jb_sub_destroy(jb_sub *s) { (void)s; }
const char *jb_sub_namespace(const jb_sub *s) { (void)s; return ""; }
const char *jb_sub_name(const jb_sub *s) { (void)s; return ""; }
const char *jb_sub_key(const jb_sub *s) { (void)s; return ""; }
const char *jb_sub_sink(const jb_sub *s) { (void)s; return ""; }
const char *jb_sub_source(const jb_sub *s) { (void)s; return ""; }
jb_sub_matching jb_sub_type_matching(const jb_sub *s) { (void)s; return JB_SUB_MATCH_STANDARD; }
const char *jb_sub_type_matching_raw(const jb_sub *s) { (void)s; return NULL; }
size_t jb_sub_ntypes(const jb_sub *s) { (void)s; return 0; }
const char *jb_sub_type(const jb_sub *s, size_t i) { (void)s, (void)i; return ""; }
const char *jb_sub_config_value(const jb_sub *s, const char *k) { (void)s, (void)k; return NULL; }
int64_t jb_sub_created_ms(const jb_sub *s) { (void)s; return 0; }
const char *jb_sub_annotation(const jb_sub *s, const char *k) { (void)s, (void)k; return NULL; }
jb_status jb_sub_delivery_get(const jb_sub *s, const struct jb_cfg *c, jb_sub_delivery *o, jb_err *err) { (void)s, (void)c, (void)o; return STUB(err); }
jb_status jb_sub_validate(const jb_sub *s, const struct jb_cfg *c, jb_sub_errors *o) { (void)s, (void)c, (void)o; return JB_ERR_INTERNAL; }
void jb_sub_errors_free(jb_sub_errors *e) { (void)e; }
size_t jb_sub_clean_source(const char *s, size_t l, char *o, size_t c) { (void)s, (void)l, (void)o, (void)c; return 0; }
size_t jb_sub_clean_type(const char *s, size_t l, char *o, size_t c) { (void)s, (void)l, (void)o, (void)c; return 0; }
jb_status jb_sub_subject(const jb_sub *s, const struct jb_cfg *c, const char *t, char **o, jb_err *err) { (void)s, (void)c, (void)t, (void)o; return STUB(err); }
void jb_sub_consumer_name(const char *ns, const char *n, const char *s, char out[33]) { (void)ns, (void)n, (void)s; out[0] = 0; }
jb_status jb_sub_consumers(const jb_sub *s, const struct jb_cfg *c, jb_sub_consumer_list *o, jb_err *err) { (void)s, (void)c, (void)o; return STUB(err); }
void jb_sub_consumer_list_free(jb_sub_consumer_list *l) { (void)l; }
bool jb_sub_consumer_copy(jb_sub_consumer *d, const jb_sub_consumer *s) { (void)d, (void)s; return false; }
void jb_sub_consumer_free(jb_sub_consumer *c) { (void)c; }
jb_status jb_sub_store_open(const struct jb_cfg *c, jsCtx *js, jb_sub_store **o, jb_err *err) { (void)c, (void)js, (void)o; return STUB(err); }
void jb_sub_store_close(jb_sub_store *st) { (void)st; }
const char *jb_sub_apply_result_str(jb_sub_apply_result r) { (void)r; return ""; }
jb_status jb_sub_store_put(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *r, jb_err *err) { (void)st, (void)s, (void)r; return STUB(err); }
jb_status jb_sub_store_get(jb_sub_store *st, const char *ns, const char *n, jb_sub **o, jb_err *err) { (void)st, (void)ns, (void)n, (void)o; return STUB(err); }
jb_status jb_sub_store_list(jb_sub_store *st, const char *ns, jb_sub_vec *o, jb_err *err) { (void)st, (void)ns, (void)o; return STUB(err); }
jb_status jb_sub_store_delete(jb_sub_store *st, const char *ns, const char *n, jb_err *err) { (void)st, (void)ns, (void)n; return STUB(err); }
jb_status jb_sub_store_get_status(jb_sub_store *st, const char *ns, const char *n, char **j, jb_err *err) { (void)st, (void)ns, (void)n, (void)j; return STUB(err); }
jb_status jb_sub_store_put_status(jb_sub_store *st, const char *ns, const char *n, const char *j, bool *c, jb_err *err) { (void)st, (void)ns, (void)n, (void)j, (void)c; return STUB(err); }
jb_status jb_sub_subscribed_json(const jb_sub_vec *s, const struct jb_cfg *c, const char *a, size_t al, char **j, size_t *jl) { (void)s, (void)c, (void)a, (void)al, (void)j, (void)jl; return JB_ERR_INTERNAL; }
jb_status jb_sub_store_subscribed_json(jb_sub_store *st, const struct jb_cfg *c, const char *a, size_t al, char **j, size_t *jl, jb_err *err) { (void)st, (void)c, (void)a, (void)al, (void)j, (void)jl; return STUB(err); }
jb_status jb_sub_ensure_stream(const struct jb_cfg *c, jsCtx *js, jb_err *err) { (void)c, (void)js; return STUB(err); }
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
