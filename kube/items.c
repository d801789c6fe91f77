/* The controller's items and the hand-off into its worker: a jb_mailbox
 * (common/jb_mailbox.h) bounded by items and by bytes. */
#include <stdlib.h>

#include "kube/kube_internal.h"

void kube_item_free(kube_item *it)
{
    if (it == NULL)
        return;
    free(it->scope);
    free(it->key);
    cJSON_Delete(it->obj);
    free(it->json);
    free(it->path);
    free(it->memo);
    free(it->rv);
    free(it);
}

void kube_item_dispose(jb_mail *m, void *ud)
{
    (void)ud;
    kube_item_free(m->ptr);
}

jb_mailbox *kube_mailbox_create(size_t max_items, size_t max_bytes)
{
    jb_mailbox *m = NULL;
    if (jb_mailbox_create(max_items, &m, NULL) != JB_OK)
        return NULL;
    jb_mailbox_set_byte_cap(m, max_bytes);
    return m;
}

bool kube_post(jb_mailbox *m, kube_item **itp)
{
    kube_item *it = *itp;
    *itp = NULL;
    jb_mail mail = {.ptr = it};
    /* An item larger than the byte cap still goes in alone: the cap bounds the queue,
     * and the parser already bounds one item. */
    if (jb_mailbox_post_wait_sized(m, &mail, it->bytes) == JB_OK)
        return true;
    kube_item_free(it);
    return false;
}
