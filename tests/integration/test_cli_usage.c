/*
 * What a new user meets first: --help at every level, --version, one line and a
 * pointer to help for an unknown command, one wording for bad arguments, exit 2 for
 * usage and configuration errors. Through the real binary; no NATS is needed (help
 * works whatever the environment holds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

#define T 30000

static void test_help_at_every_level(void)
{
    static const struct {
        const char *argv[4];
        const char *want;
    } cases[] = {
        {{"help", NULL}, "Usage: jetbridge <command>"},
        {{"help", "sub", NULL}, "jetbridge sub apply -f FILE|DIR"},
        {{"run", "--help", NULL}, "Usage: jetbridge run"},
        {{"publisher", "--help", NULL}, "publisher"},
        {{"dispatcher", "--help", NULL}, "dispatcher"},
        {{"stats", "--help", NULL}, "stats"},
        {{"sub", "--help", NULL}, "jetbridge sub describe NAME"},
        {{"sub", "apply", "--help", NULL}, "jetbridge sub apply -f FILE|DIR"},
        {{"sub", "get", "-h", NULL}, "jetbridge sub get [NAME]"},
        {{"dlq", "--help", NULL}, "jetbridge dlq purge"},
        {{"dlq", "list", "--help", NULL}, "jetbridge dlq list"},
        {{"dlq", "replay", "--help", NULL}, "jetbridge dlq replay"},
        {{"dlq", "purge", "--help", NULL}, "--all"},
        {{"app", "apply", "--help", NULL}, "jetbridge app apply -f FILE|DIR"},
    };
    /* A broken environment must not stop help. */
    const char *env[] = {"NATS_URL=not a url", "INGRESS_PORT=oops", NULL};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *out = NULL, *err = NULL;
        int rc = jb_trun_capture(cases[i].argv, env, &out, &err, T);
        CU_ASSERT_EQUAL(rc, 0);
        bool ok = out != NULL && strstr(out, cases[i].want) != NULL;
        if (!ok || rc != 0)
            fprintf(stderr, "%s %s: rc %d out %s err %s\n", cases[i].argv[0],
                    cases[i].argv[1] ? cases[i].argv[1] : "", rc, out ? out : "", err ? err : "");
        CU_ASSERT_TRUE(ok);
        free(out);
        free(err);
    }
    /* Only that verb's usage for `sub apply --help`. */
    const char *argv[] = {"sub", "apply", "--help", NULL};
    char *out = NULL;
    CU_ASSERT_EQUAL(jb_trun_capture(argv, NULL, &out, NULL, T), 0);
    CU_ASSERT_PTR_NULL(out != NULL ? strstr(out, "sub describe") : "");
    free(out);
}

static void test_version(void)
{
    const char *argv[] = {"--version", NULL};
    char *out = NULL;
    CU_ASSERT_EQUAL(jb_trun_capture(argv, NULL, &out, NULL, T), 0);
    CU_ASSERT_TRUE(out != NULL && strncmp(out, "jetbridge ", 10) == 0 && strchr(out, '.') != NULL);
    free(out);
}

/* One line on stderr and where to look; exit 2. */
static void test_usage_errors(void)
{
    static const struct {
        const char *argv[5];
        const char *want;
    } cases[] = {
        {{"frobnicate", NULL}, "jetbridge: unknown command \"frobnicate\"; see `jetbridge help`\n"},
        {{"--frob", NULL}, "jetbridge: unknown flag \"--frob\"; see `jetbridge help`\n"},
        {{"help", "frob", NULL}, "jetbridge: unknown command \"frob\"; see `jetbridge help`\n"},
        {{"sub", "frob", NULL},
         "jetbridge sub: unknown command \"frob\"; see `jetbridge sub --help`\n"},
        {{"sub", "get", "--bogus", NULL},
         "jetbridge sub: unknown argument \"--bogus\"; see `jetbridge sub --help`\n"},
        {{"dlq", "frob", NULL},
         "jetbridge dlq: unknown command \"frob\"; see `jetbridge dlq --help`\n"},
        {{"dlq", "list", "--bogus", NULL},
         "jetbridge dlq: unknown argument \"--bogus\"; see `jetbridge dlq --help`\n"},
        {{"stats", "--bogus", NULL},
         "jetbridge stats: unknown argument \"--bogus\"; see `jetbridge stats --help`\n"},
        {{"run", "--bogus", NULL},
         "jetbridge run: unknown argument \"--bogus\"; see `jetbridge run --help`\n"},
        {{"publisher", "--bogus", NULL},
         "jetbridge publisher: unknown argument \"--bogus\"; see `jetbridge publisher --help`\n"},
        {{"dispatcher", "--bogus", NULL},
         "jetbridge dispatcher: unknown argument \"--bogus\"; see `jetbridge dispatcher --help`\n"},
        {{"dlq", "purge", NULL}, "jetbridge dlq: purge needs --subscription"},
        {{"dlq", "replay", "--all", NULL}, "jetbridge dlq: --all is for purge alone"},
    };
    const char *env[] = {"NATS_URL=nats://127.0.0.1:1", NULL};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *out = NULL, *err = NULL;
        CU_ASSERT_EQUAL(jb_trun_capture(cases[i].argv, env, &out, &err, T), 2);
        bool ok = err != NULL && strncmp(err, cases[i].want, strlen(cases[i].want)) == 0 &&
                  strchr(err, '\n') == err + strlen(err) - 1;
        if (!ok)
            fprintf(stderr, "%s: got %s", cases[i].want, err ? err : "(nothing)\n");
        CU_ASSERT_TRUE(ok);
        free(out);
        free(err);
    }
}

/* The project's docs and code stand alone: nothing outside tests/ and scripts/ cites a
 * contract or a folder that is not in the repository (docs/contract.md is the
 * contract). Checked on the tracked files with git grep. */
static void test_docs_stand_alone(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "git -C '%s' grep -n -I -E 'DESIGN(\\.md| [0-9])|\\.\\./shared' -- . "
             "':!tests' ':!scripts' 2>&1",
             JB_SOURCE_DIR);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char line[1024];
    int lines = 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        fprintf(stderr, "cites what the repository does not hold: %s", line);
        lines++;
    }
    int rc = pclose(p);
    /* git grep: 1 = nothing found. 0 = found; anything else = no git checkout. */
    CU_ASSERT_EQUAL(WEXITSTATUS(rc), 1);
    CU_ASSERT_EQUAL(lines, 0);
    /* And the contract they point to exists. */
    FILE *f = fopen(JB_SOURCE_DIR "/docs/contract.md", "r");
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f != NULL)
        fclose(f);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"--help at every level", test_help_at_every_level},
        {"--version", test_version},
        {"usage errors: one line, a pointer to help, exit 2", test_usage_errors},
        {"docs and code cite nothing outside the repository", test_docs_stand_alone},
    };
    return jb_cunit_main("cli_usage", NULL, NULL, cases, JB_CASES_N(cases));
}
