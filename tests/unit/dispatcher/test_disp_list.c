/* dispatcher/disp_list.h: the intrusive doubly linked list of disp.c (in-flight
 * deliveries, the +WPI deadlines) and http.c (requests in progress). */
#include "dispatcher/disp_list.h"
#include "jb_cunit.h"

typedef struct rec {
    int id;
    jb_dlink link;
} rec;

/* The ids from head to tail, and the same backwards, must be want[0..n). */
static void check(const jb_dlist *l, const int *want, size_t n)
{
    size_t i = 0;
    for (const jb_dlink *p = l->head; p != NULL; p = p->next, i++) {
        CU_ASSERT_TRUE(i < n);
        if (i < n)
            CU_ASSERT_EQUAL(JB_DLIST_ENTRY(p, rec, link)->id, want[i]);
    }
    CU_ASSERT_EQUAL(i, n);
    for (const jb_dlink *p = l->tail; p != NULL; p = p->prev) {
        CU_ASSERT_TRUE(i > 0);
        if (i == 0)
            break;
        CU_ASSERT_EQUAL(JB_DLIST_ENTRY(p, rec, link)->id, want[--i]);
    }
    CU_ASSERT_EQUAL(i, 0);
    CU_ASSERT_EQUAL(l->head == NULL, l->tail == NULL);
}

static void test_append_unlink(void)
{
    rec r[4] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
    jb_dlist l = {0};
    check(&l, NULL, 0);
    for (int i = 0; i < 4; i++)
        jb_dlist_append(&l, &r[i].link);
    check(&l, (const int[]){1, 2, 3, 4}, 4);
    jb_dlist_unlink(&l, &r[1].link); /* the middle */
    CU_ASSERT_PTR_NULL(r[1].link.prev);
    CU_ASSERT_PTR_NULL(r[1].link.next);
    check(&l, (const int[]){1, 3, 4}, 3);
    jb_dlist_unlink(&l, &r[0].link); /* the head */
    check(&l, (const int[]){3, 4}, 2);
    jb_dlist_unlink(&l, &r[3].link); /* the tail */
    check(&l, (const int[]){3}, 1);
    /* Unlinked and appended again: to the end (how a +WPI deadline moves on). */
    jb_dlist_append(&l, &r[0].link);
    jb_dlist_append(&l, &r[3].link);
    check(&l, (const int[]){3, 1, 4}, 3);
    jb_dlist_unlink(&l, &r[0].link);
    jb_dlist_unlink(&l, &r[2].link);
    jb_dlist_unlink(&l, &r[3].link); /* the last one */
    check(&l, NULL, 0);
    CU_ASSERT_PTR_NULL(l.head);
    CU_ASSERT_PTR_NULL(l.tail);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"append, unlink at head, middle and tail, append again", test_append_unlink},
    };
    return jb_cunit_main("disp_list", NULL, NULL, cases, JB_CASES_N(cases));
}
