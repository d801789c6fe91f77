/*
 * subscription/jb_sub_dirwatch.h: applying (and watching) a directory of
 * Subscription manifests (`--subscriptions DIR`).
 * Part of the subscription module; subscription/jb_sub.h includes it.
 */
#ifndef JB_SUB_DIRWATCH_H
#define JB_SUB_DIRWATCH_H

#include "subscription/jb_sub_store.h"

/* Applies every manifest of dir to the store now (creating/updating; deleting
 * subscriptions previously applied from this dir whose manifests are gone,
 * recognised by the annotation JB_SUB_ANNOTATION_DIR whose value is the real path of
 * the file a subscription came from), then again whenever a file in dir changes
 * (inotify, changes within 200 ms batched), on a thread of its own; failed applies
 * (NATS down) are retried every 2 s. A file that does not parse is logged and leaves
 * its subscriptions as they are; subscriptions applied otherwise are never deleted.
 * The first apply happens before this returns; its failure is returned. js must
 * outlive the watcher. */
#define JB_SUB_ANNOTATION_DIR "jetbridge.kyma-project.io/applied-from"
typedef struct jb_sub_dirwatch jb_sub_dirwatch;
jb_status jb_sub_dirwatch_start(const struct jb_cfg *cfg, jsCtx *js, const char *dir,
                                jb_sub_dirwatch **out, jb_err *err);
void jb_sub_dirwatch_stop(jb_sub_dirwatch *w);
/* One apply of dir without a thread (what dirwatch does on each change). */
jb_status jb_sub_apply_dir(jb_sub_store *st, const char *dir, jb_err *err);

#endif
