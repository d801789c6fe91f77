/* dispatcher/ intrusive doubly linked lists: a jb_dlink embedded in the record,
 * a jb_dlist (head and tail) where the records are kept. Appending and unlinking
 * are O(1) and allocate nothing. Used by disp.c (its in-flight deliveries, the
 * +WPI deadline list) and http.c (its requests in progress). Not thread-safe: the owner's thread
 * only. */
#ifndef JB_DISP_LIST_H
#define JB_DISP_LIST_H

#include <stddef.h>

typedef struct jb_dlink {
    struct jb_dlink *prev, *next;
} jb_dlink;

typedef struct jb_dlist {
    jb_dlink *head, *tail;
} jb_dlist;

/* The record that embeds link as its member. */
#define JB_DLIST_ENTRY(link, type, member) ((type *)((char *)(link)-offsetof(type, member)))

/* n (not on any list) goes to the end of l. */
static inline void jb_dlist_append(jb_dlist *l, jb_dlink *n)
{
    n->prev = l->tail;
    n->next = NULL;
    *(l->tail != NULL ? &l->tail->next : &l->head) = n;
    l->tail = n;
}

/* n (on l) leaves it; its links are cleared. */
static inline void jb_dlist_unlink(jb_dlist *l, jb_dlink *n)
{
    *(n->prev != NULL ? &n->prev->next : &l->head) = n->next;
    *(n->next != NULL ? &n->next->prev : &l->tail) = n->prev;
    n->prev = n->next = NULL;
}

#endif
