/*
 * CUnit glue: every test program is one suite, one CTest entry. A test file lists
 * its cases in a jb_test_case table and calls jb_cunit_main from main().
 */
#ifndef JB_CUNIT_H
#define JB_CUNIT_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

typedef struct jb_test_case {
    const char *name;
    void (*fn)(void);
} jb_test_case;

/* Runs the cases as suite `suite` with optional init/cleanup (may be NULL), prints
 * CUnit's summary, returns 0 when every assertion held. JB_CASE=<case name> in the
 * environment runs that one case only (0 cases run is a failure, so a typo shows). */
int jb_cunit_main(const char *suite, int (*init)(void), int (*cleanup)(void),
                  const jb_test_case *cases, size_t ncases);

#define JB_CASES_N(arr) (sizeof(arr) / sizeof((arr)[0]))

#endif
