/* scripts/check-layers, the gate of the module order that the build and `make lint`
 * run: the repository passes, and a planted include that points up the order or
 * into another module's private header fails with a line naming the file. The
 * planted trees are temporary directories; the repository is only read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

#define SCRIPT JB_SOURCE_DIR "/scripts/check-layers"

/* Runs check-layers on root; the exit code, *out its output (malloc'd). */
static int check_layers(const char *root, char **out)
{
    const char *argv[] = {SCRIPT, root, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, NULL, 0);
    if (p == NULL)
        return -1;
    int rc = jb_tproc_wait(p, 60000);
    *out = jb_tproc_log(p);
    jb_tproc_stop(p);
    return rc;
}

/* A tree with module/name holding text; the tree's path is in dir. */
static bool plant(char *dir, size_t cap, const char *module, const char *name, const char *text)
{
    snprintf(dir, cap, "/tmp/jb-layers-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return false;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, module);
    if (mkdir(path, 0755) != 0)
        return false;
    snprintf(path, sizeof(path), "%s/%s/%s", dir, module, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static void test_repository_passes(void)
{
    char *out = NULL;
    CU_ASSERT_EQUAL(check_layers(JB_SOURCE_DIR, &out), 0);
    if (out != NULL && out[0] != '\0')
        fprintf(stderr, "%s\n", out);
    free(out);
}

typedef struct planted {
    const char *module, *file, *text;
    int want_rc;
    const char *want_line; /* NULL: no output */
} planted;

static void test_planted(void)
{
    static const planted cases[] = {
        /* Up the order: a module may never use cli/. */
        {"dispatcher", "x.c", "#include \"cli/jb_cli.h\"\n", 1,
         "dispatcher/x.c includes cli/, which dispatcher/ may not use"},
        /* Sideways: the publisher may not use the dispatcher. */
        {"publisher", "y.c", "#include \"dispatcher/jb_disp.h\"\n", 1,
         "publisher/y.c includes dispatcher/"},
        /* Down the order but into a private header. */
        {"cli", "z.c", "#include \"dispatcher/disp_internal.h\"\n", 1,
         "cli/z.c includes dispatcher/disp_internal.h, a private header of dispatcher/"},
        /* Down the order through the public header, and its own private one. */
        {"cli", "ok.c", "#include \"dispatcher/jb_disp.h\"\n#include \"cli/cli_internal.h\"\n", 0,
         NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const planted *c = &cases[i];
        char dir[64], *out = NULL;
        CU_ASSERT_TRUE_FATAL(plant(dir, sizeof(dir), c->module, c->file, c->text));
        CU_ASSERT_EQUAL(check_layers(dir, &out), c->want_rc);
        if (c->want_line != NULL) {
            CU_ASSERT_PTR_NOT_NULL(out != NULL ? strstr(out, c->want_line) : NULL);
        } else {
            CU_ASSERT_TRUE(out != NULL && out[0] == '\0');
        }
        if (out != NULL && (c->want_line == NULL) != (out[0] == '\0'))
            fprintf(stderr, "case %zu: %s\n", i, out);
        free(out);
        jb_rm_tree(dir);
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"the repository keeps the module order", test_repository_passes},
        {"planted includes up, sideways, into private headers", test_planted},
    };
    return jb_cunit_main("layers", NULL, NULL, cases, JB_CASES_N(cases));
}
