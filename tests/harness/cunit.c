#include "jb_cunit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jb_cunit_main(const char *suite, int (*init)(void), int (*cleanup)(void),
                  const jb_test_case *cases, size_t ncases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite(suite, init, cleanup);
    if (s == NULL) {
        CU_cleanup_registry();
        return 1;
    }
    /* JB_CASE=<name> runs that one case alone (cases set up what they need). */
    const char *only = getenv("JB_CASE");
    for (size_t i = 0; i < ncases; i++) {
        if (only != NULL && only[0] != '\0' && strcmp(cases[i].name, only) != 0)
            continue;
        if (CU_add_test(s, cases[i].name, cases[i].fn) == NULL) {
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
                      CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    /* A suite that ran nothing is a failure, not a pass. */
    return (failed == 0 && ran > 0) ? 0 : 1;
}
