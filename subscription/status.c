/* The status object, in Kyma's shape (docs/contract.md 3). */
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define COND_VALID  "Subscription spec valid"
#define COND_ACTIVE "Subscription active"

/* The previous lastTransitionTime of a condition whose status did not change. */
static const char *prev_time(const cJSON *prev, const char *type, bool status)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(prev, "conditions");
    const cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
        const cJSON *lt = cJSON_GetObjectItemCaseSensitive(c, "lastTransitionTime");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0 && cJSON_IsString(st) &&
            strcmp(st->valuestring, status ? "True" : "False") == 0 && cJSON_IsString(lt))
            return lt->valuestring;
    }
    return NULL;
}

static bool add_cond(cJSON *arr, const cJSON *prev, const char *type, bool status,
                     const char *reason, const char *msg, const char *now)
{
    const char *t = prev_time(prev, type, status);
    cJSON *c = cJSON_CreateObject();
    bool ok = c && cJSON_AddStringToObject(c, "type", type) &&
              cJSON_AddStringToObject(c, "status", status ? "True" : "False") &&
              cJSON_AddStringToObject(c, "lastTransitionTime", t ? t : now) &&
              cJSON_AddStringToObject(c, "reason", reason) &&
              cJSON_AddStringToObject(c, "message", msg) && cJSON_AddItemToArray(arr, c);
    if (!ok)
        cJSON_Delete(c);
    return ok;
}

static bool add_types(cJSON *root, const jb_sub *s, const jb_cfg *cfg)
{
    cJSON *types = cJSON_AddArrayToObject(root, "types");
    cJSON *backend = cJSON_AddObjectToObject(root, "backend");
    cJSON *btypes = backend ? cJSON_AddArrayToObject(backend, "types") : NULL;
    if (types == NULL || btypes == NULL)
        return false;
    jb_sub_consumer_list l = {0};
    jb_err err;
    if (jb_sub_consumers(s, cfg, &l, &err) != JB_OK)
        return true; /* invalid: no types, as Kyma shows */
    bool ok = true;
    for (size_t i = 0; ok && i < l.n; i++) {
        cJSON *t = cJSON_CreateObject(), *b = cJSON_CreateObject();
        ok = t && b && cJSON_AddStringToObject(t, "originalType", l.items[i].type) &&
             cJSON_AddStringToObject(t, "cleanType", l.items[i].clean_type) &&
             cJSON_AddStringToObject(b, "originalType", l.items[i].type) &&
             cJSON_AddStringToObject(b, "consumerName", l.items[i].consumer);
        if (ok) {
            cJSON_AddItemToArray(types, t);
            cJSON_AddItemToArray(btypes, b);
        } else {
            cJSON_Delete(t);
            cJSON_Delete(b);
        }
    }
    jb_sub_consumer_list_free(&l);
    return ok;
}

jb_status sub_status_json(const jb_sub *s, const jb_cfg *cfg, const char *prev_json,
                          const char *active_err, char **out)
{
    jb_sub_errors ve = {0};
    if (jb_sub_validate(s, cfg, &ve) != JB_OK)
        return JB_ERR_NOMEM;
    cJSON *prev = prev_json ? cJSON_Parse(prev_json) : NULL;
    cJSON *root = cJSON_CreateObject();
    char now[32];
    jb_k8s_time_format(jb_now_wall_ms(), now);
    bool valid = ve.n == 0, active = valid && active_err == NULL;
    cJSON *conds = NULL;
    bool ok = root && cJSON_AddBoolToObject(root, "ready", active) && add_types(root, s, cfg) &&
              (conds = cJSON_AddArrayToObject(root, "conditions")) != NULL &&
              add_cond(conds, prev, COND_VALID, valid,
                       valid ? "Subscription spec has no validation errors"
                             : "Subscription spec has validation errors",
                       ve.message, now) &&
              add_cond(conds, prev, COND_ACTIVE, active,
                       active ? "NATS Subscription active" : "NATS Subscription not active",
                       active_err && valid ? active_err : "", now);
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    if (json != NULL && strlen(json) > JB_SUB_STATUS_MAX_BYTES) {
        /* Long types: the lists go, the conditions (bounded) stay. */
        cJSON *backend = cJSON_GetObjectItemCaseSensitive(root, "backend");
        cJSON_ReplaceItemInObjectCaseSensitive(root, "types", cJSON_CreateArray());
        cJSON_ReplaceItemInObjectCaseSensitive(backend, "types", cJSON_CreateArray());
        cJSON_free(json);
        json = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    cJSON_Delete(prev);
    jb_sub_errors_free(&ve);
    if (json == NULL)
        return JB_ERR_NOMEM;
    *out = json;
    return JB_OK;
}
