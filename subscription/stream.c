/* The event stream (docs/contract.md 2.4): created when missing, updated when its
 * changeable settings differ from the configuration. */
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define DEFAULT_MAX_BYTES       (700LL * 1024 * 1024)
#define DEFAULT_MAX_PER_SUBJECT 1000000
#define DEFAULT_DUP_WINDOW_MS   (2 * 60 * 1000)

static void stream_config(const jb_cfg *cfg, jsStreamConfig *sc, const char **subjects, char *subj,
                          size_t cap)
{
    jsStreamConfig_Init(sc);
    snprintf(subj, cap, "%s.>", cfg->stream_subject_prefix);
    subjects[0] = subj;
    sc->Name = cfg->stream_name;
    sc->Subjects = subjects;
    sc->SubjectsLen = 1;
    sc->Storage = cfg->stream_storage == JB_STORAGE_MEMORY ? js_MemoryStorage : js_FileStorage;
    sc->Replicas = cfg->stream_replicas;
    sc->Retention = cfg->stream_retention == JB_RETENTION_LIMITS      ? js_LimitsPolicy
                    : cfg->stream_retention == JB_RETENTION_WORKQUEUE ? js_WorkQueuePolicy
                                                                      : js_InterestPolicy;
    sc->Discard = cfg->stream_discard == JB_DISCARD_OLD ? js_DiscardOld : js_DiscardNew;
    sc->MaxMsgs = cfg->stream_max_msgs != 0 ? cfg->stream_max_msgs : -1;
    sc->MaxBytes = cfg->stream_max_bytes != 0 ? cfg->stream_max_bytes : DEFAULT_MAX_BYTES;
    sc->MaxMsgsPerSubject = cfg->stream_max_msgs_per_subject != 0 ? cfg->stream_max_msgs_per_subject
                                                                  : DEFAULT_MAX_PER_SUBJECT;
    int64_t dup = cfg->stream_duplicate_window_ms > 0 ? cfg->stream_duplicate_window_ms
                                                      : DEFAULT_DUP_WINDOW_MS;
    sc->Duplicates = dup * 1000000;
}

/* True when the settings that can change in place differ. */
static bool differs(const jsStreamConfig *have, const jsStreamConfig *want)
{
    return have->SubjectsLen != 1 || strcmp(have->Subjects[0], want->Subjects[0]) != 0 ||
           have->MaxMsgs != want->MaxMsgs || have->MaxBytes != want->MaxBytes ||
           have->MaxMsgsPerSubject != want->MaxMsgsPerSubject || have->Discard != want->Discard ||
           have->Duplicates != want->Duplicates || have->Replicas != want->Replicas;
}

jb_status jb_sub_ensure_stream(const jb_cfg *cfg, jsCtx *js, jb_err *err)
{
    jsStreamConfig sc;
    const char *subjects[1];
    char subj[128];
    stream_config(cfg, &sc, subjects, subj, sizeof(subj));
    jsStreamInfo *si = NULL;
    jsErrCode ec = 0;
    natsStatus s = js_GetStreamInfo(&si, js, sc.Name, NULL, &ec);
    if (s == NATS_NOT_FOUND) {
        s = js_AddStream(&si, js, &sc, NULL, &ec);
        /* Another process created it first: fine when it is there now. */
        if (s != NATS_OK && ec == JSStreamNameExistErr)
            s = js_GetStreamInfo(&si, js, sc.Name, NULL, &ec);
        jsStreamInfo_Destroy(si);
        return s == NATS_OK ? JB_OK : jb_nats_err(s, "creating the stream", err);
    }
    if (s != NATS_OK)
        return jb_nats_err(s, "reading the stream", err);
    bool update = differs(si->Config, &sc);
    if (si->Config->Storage != sc.Storage || si->Config->Retention != sc.Retention)
        jb_log(JB_LOG_WARN, "subscription",
               "stream storage or retention differs from the configuration; they cannot change "
               "in place, keeping the stream's",
               "stream", sc.Name, NULL);
    if (update) {
        sc.Storage = si->Config->Storage;
        sc.Retention = si->Config->Retention;
    }
    jsStreamInfo_Destroy(si);
    si = NULL;
    if (!update)
        return JB_OK;
    s = js_UpdateStream(&si, js, &sc, NULL, &ec);
    jsStreamInfo_Destroy(si);
    return s == NATS_OK ? JB_OK : jb_nats_err(s, "updating the stream", err);
}
