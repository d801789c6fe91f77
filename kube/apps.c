/* Applications (applicationconnector.kyma-project.io/v1alpha1, cluster-scoped)
 * mirrored into the application registry's store, marked as Kubernetes'. */
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "kube/kube_internal.h"

jb_status kube_app_mirror(jb_app_store *st, const cJSON *cr, char **mirrored, jb_err *err)
{
    cJSON *copy = cJSON_Duplicate(cr, 1);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(copy, "metadata");
    if (copy == NULL || !cJSON_IsObject(meta)) {
        cJSON_Delete(copy);
        return jb_err_set(err, JB_ERR_INVALID, "application without metadata");
    }
    cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    if (!cJSON_IsObject(ann)) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
        ann = cJSON_AddObjectToObject(meta, "annotations");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(ann,
                                            "kubectl.kubernetes.io/last-applied-configuration");
    cJSON_DeleteItemFromObjectCaseSensitive(ann, JB_APP_ANN_MANAGED_BY);
    cJSON_AddStringToObject(ann, JB_APP_ANN_MANAGED_BY, JB_APP_MANAGED_KUBERNETES);
    jb_app *a = NULL;
    jb_status rc = jb_app_from_cjson(copy, "kubernetes", &a, err);
    cJSON_Delete(copy);
    if (rc != JB_OK)
        return rc;
    if (*mirrored == NULL || strcmp(*mirrored, jb_app_json(a)) != 0) {
        jb_app_apply_result res;
        rc = jb_app_store_apply(st, a, true, &res, err);
        if (rc == JB_OK) {
            free(*mirrored);
            *mirrored = strdup(jb_app_json(a));
            if (res != JB_APP_UNCHANGED)
                jb_log(JB_LOG_INFO, "kube", "application mirrored", "application", jb_app_name(a),
                       "result", jb_app_apply_result_str(res), NULL);
        }
    }
    jb_app_destroy(a);
    return rc;
}

jb_status kube_app_forget(jb_app_store *st, const char *name, jb_err *err)
{
    jb_status rc = jb_app_store_delete(st, name, err);
    if (rc == JB_OK)
        jb_log(JB_LOG_INFO, "kube", "application removed", "application", name, NULL);
    return rc == JB_ERR_NOT_FOUND ? JB_OK : rc;
}

void kube_app_collect_garbage(jb_app_store *st, bool (*known)(void *ud, const char *name), void *ud)
{
    jb_app_vec v = {0};
    jb_err err;
    if (jb_app_store_list(st, &v, &err) != JB_OK)
        return;
    for (size_t i = 0; i < v.n; i++)
        if (jb_app_kubernetes_owned(v.items[i]) && !known(ud, jb_app_name(v.items[i])))
            (void)kube_app_forget(st, jb_app_name(v.items[i]), &err);
    jb_app_vec_clear(&v);
}
