/*
 * The Kubernetes harness (jb_tkube) against the real things it drives: etcd, kube-apiserver
 * v1.20.2 and kubectl. The Kubernetes suites rely on what is asserted here: per-user
 * kubeconfigs with RBAC deciding, kubectl with standard input, an API server that can be killed
 * and restarted over the same data, compaction that turns old watches into 410 Gone, and no
 * process or directory left behind.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

static jb_tkube *kube;

static bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool contains(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* kubectl as user (overriding the admin kubeconfig: the last --kubeconfig wins). */
static int kubectl_as(const char *user, const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "--kubeconfig '%s' %s", jb_tkube_kubeconfig(kube, user), args);
    return jb_tkube_kubectl(kube, cmd, NULL, out);
}

static int api_port(void)
{
    const char *colon = strrchr(jb_tkube_url(kube), ':');
    return colon != NULL ? (int)strtol(colon + 1, NULL, 10) : -1;
}

/* True while some process's command line mentions path (our etcd and apiserver carry their
 * temporary directory in their arguments). */
static bool process_mentions(const char *path)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char file[300], buf[8192];
        snprintf(file, sizeof(file), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(file, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        found = strstr(buf, path) != NULL;
    }
    closedir(proc);
    return found;
}

static bool wait_no_process(const char *path, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (!process_mentions(path))
            return true;
        jb_sleep_ms(100);
    }
    return !process_mentions(path);
}

static int suite_init(void)
{
    kube = jb_tkube_start();
    return kube == NULL ? 1 : 0; /* no API server: every case fails, none is skipped */
}

static int suite_cleanup(void)
{
    jb_tkube_stop(kube);
    kube = NULL;
    return 0;
}

static void test_users_and_rbac(void)
{
    char want[64];
    snprintf(want, sizeof(want), "https://127.0.0.1:%d", api_port());
    CU_ASSERT(api_port() > 0);
    CU_ASSERT_STRING_EQUAL(jb_tkube_url(kube), want);
    CU_ASSERT(jb_tkube_kubeconfig(kube, "nobody") == NULL);
    CU_ASSERT(jb_tkube_token(kube, "nobody") == NULL);
    CU_ASSERT(strlen(jb_tkube_token(kube, "admin")) >= 32);
    CU_ASSERT_STRING_NOT_EQUAL(jb_tkube_token(kube, "admin"), jb_tkube_token(kube, "norbac"));
    CU_ASSERT(access(jb_tkube_ca_file(kube), R_OK) == 0);

    char *out = NULL;
    CU_ASSERT(kubectl_as("admin", "get namespaces -o name", &out) == 0);
    CU_ASSERT(contains(out, "namespace/default"));
    CU_ASSERT(contains(out, "namespace/kube-system"));
    free(out);

    out = NULL;
    CU_ASSERT(kubectl_as("norbac", "get namespaces", &out) != 0);
    CU_ASSERT(contains(out, "forbidden"));
    CU_ASSERT(contains(out, "jetbridge-norbac"));
    free(out);

    /* "controller" has nothing until RBAC grants it, then exactly that. */
    out = NULL;
    CU_ASSERT(kubectl_as("controller", "get namespaces", &out) != 0);
    CU_ASSERT(contains(out, "jetbridge-controller"));
    free(out);
    CU_ASSERT(jb_tkube_kubectl(kube,
                               "create clusterrole tkube-ns-reader --verb=get,list "
                               "--resource=namespaces",
                               NULL, NULL) == 0);
    CU_ASSERT(jb_tkube_kubectl(kube,
                               "create clusterrolebinding tkube-ns-reader "
                               "--clusterrole=tkube-ns-reader --user=jetbridge-controller",
                               NULL, NULL) == 0);
    out = NULL;
    CU_ASSERT(kubectl_as("controller", "get namespaces -o name", &out) == 0);
    CU_ASSERT(contains(out, "namespace/default"));
    free(out);
    out = NULL;
    CU_ASSERT(kubectl_as("controller", "get configmaps -A", &out) != 0);
    CU_ASSERT(contains(out, "forbidden"));
    free(out);
    CU_ASSERT(kubectl_as("norbac", "get namespaces", NULL) != 0);

    /* The same through jb_tkube_request (TLS verified, the user's token). */
    char *body = NULL;
    CU_ASSERT(jb_tkube_request(kube, "admin", "GET", "/api/v1/namespaces/default", NULL, NULL,
                               &body) == 200);
    CU_ASSERT(contains(body, "\"name\":\"default\""));
    free(body);
    body = NULL;
    CU_ASSERT(jb_tkube_request(kube, "norbac", "GET", "/api/v1/namespaces", NULL, NULL, &body) ==
              403);
    CU_ASSERT(contains(body, "jetbridge-norbac"));
    free(body);
    CU_ASSERT(jb_tkube_request(kube, "nobody", "GET", "/api/v1/namespaces", NULL, NULL, NULL) ==
              -1);
}

static void test_kubectl_stdin(void)
{
    const char *cm = "apiVersion: v1\n"
                     "kind: ConfigMap\n"
                     "metadata:\n"
                     "  name: tkube-stdin\n"
                     "  namespace: default\n"
                     "data:\n"
                     "  greeting: from-stdin\n";
    char *out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "apply -f -", cm, &out) == 0);
    CU_ASSERT(contains(out, "configmap/tkube-stdin created"));
    free(out);
    out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "get configmap tkube-stdin -o 'jsonpath={.data.greeting}'",
                               NULL, &out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "from-stdin");
    free(out);
    /* A failing command reports its exit code and its message. */
    out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "get configmap tkube-missing", NULL, &out) == 1);
    CU_ASSERT(contains(out, "NotFound") || contains(out, "not found"));
    free(out);
}

static void test_apiserver_kill_restart_keeps_data(void)
{
    CU_ASSERT(jb_tkube_kubectl(kube, "create configmap tkube-survivor --from-literal=k=v", NULL,
                               NULL) == 0);
    CU_ASSERT_FATAL(jb_tkube_apiserver_kill(kube));
    CU_ASSERT(!jb_tkube_apiserver_kill(kube)); /* already stopped */
    char *out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "get configmap tkube-survivor --request-timeout=5s", NULL,
                               &out) != 0);
    free(out);
    CU_ASSERT_FATAL(jb_tkube_apiserver_restart(kube));
    out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "get configmap tkube-survivor -o 'jsonpath={.data.k}'", NULL,
                               &out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "v");
    free(out);
    /* Tokens and the certificate survive a restart: the kubeconfigs stay valid. */
    CU_ASSERT(kubectl_as("admin", "get namespaces", NULL) == 0);
}

static const char *const sub_yaml = "apiVersion: eventing.kyma-project.io/v1alpha2\n"
                                    "kind: Subscription\n"
                                    "metadata:\n"
                                    "  name: tkube-compact\n"
                                    "  namespace: default\n"
                                    "spec:\n"
                                    "  source: myapp\n"
                                    "  sink: http://sink.default.svc.cluster.local\n"
                                    "  types:\n"
                                    "    - order.created.v1\n";

/* Opens a watch of default's subscriptions from rv for at most 2 s; the raw event stream. */
static char *watch_from(const char *rv)
{
    char args[512], *out = NULL;
    snprintf(args, sizeof(args),
             "get --raw '/apis/eventing.kyma-project.io/v1alpha2/namespaces/default/"
             "subscriptions?watch=1&timeoutSeconds=2&resourceVersion=%s'",
             rv);
    jb_tkube_kubectl(kube, args, NULL, &out);
    return out;
}

static void test_compaction_expires_old_watches(void)
{
    CU_ASSERT_FATAL(jb_tkube_install_crds(kube));
    CU_ASSERT_FATAL(jb_tkube_kubectl(kube, "apply -f -", sub_yaml, NULL) == 0);
    char *rv = NULL;
    CU_ASSERT_FATAL(jb_tkube_kubectl(kube,
                                     "get subscription tkube-compact "
                                     "-o 'jsonpath={.metadata.resourceVersion}'",
                                     NULL, &rv) == 0);
    CU_ASSERT_FATAL(rv != NULL && rv[0] != '\0');
    for (int i = 0; i < 3; i++) {
        char args[128];
        snprintf(args, sizeof(args), "label --overwrite subscription tkube-compact round=%d", i);
        CU_ASSERT(jb_tkube_kubectl(kube, args, NULL, NULL) == 0);
    }
    /* Before compaction the old version is still watchable: the changes since come as events. */
    char *events = watch_from(rv);
    CU_ASSERT(contains(events, "\"MODIFIED\""));
    CU_ASSERT(!contains(events, "\"code\":410"));
    free(events);

    CU_ASSERT_FATAL(jb_tkube_compact(kube));
    events = watch_from(rv);
    CU_ASSERT(contains(events, "\"code\":410"));
    CU_ASSERT(contains(events, "Expired"));
    free(events);
    free(rv);
    /* Current data is untouched. */
    char *out = NULL;
    CU_ASSERT(jb_tkube_kubectl(
                  kube, "get subscription tkube-compact -o 'jsonpath={.metadata.labels.round}'",
                  NULL, &out) == 0);
    CU_ASSERT_STRING_EQUAL(out, "2");
    free(out);
}

static void test_stop_removes_everything(void)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", jb_tkube_dir(kube));
    int port = api_port();
    CU_ASSERT(dir_exists(dir));
    CU_ASSERT(process_mentions(dir));
    jb_tkube_stop(kube);
    kube = NULL;
    CU_ASSERT(!dir_exists(dir));
    CU_ASSERT(!process_mentions(dir));
    CU_ASSERT(jb_http(port, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL) == -1);
}

/* Child mode: start the harness, say where, die without cleaning up. */
static int crash_with_kube(void)
{
    jb_tkube *k = jb_tkube_start();
    if (k == NULL)
        return 1;
    printf("%s\n", jb_tkube_dir(k));
    fflush(stdout);
    kill(getpid(), SIGKILL);
    return 1;
}

static void test_processes_die_with_crashed_test(void)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CU_ASSERT_FATAL(len > 0);
    self[len] = '\0';
    const char *args[] = {"--crash-with-kube", NULL};
    jb_tproc *p = jb_tproc_start_exe(self, args, NULL, 0);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(jb_tproc_wait(p, 180000) == 128 + SIGKILL);
    char *log = jb_tproc_log(p);
    CU_ASSERT_FATAL(log != NULL);
    char dir[256];
    snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(log, "\n"), log);
    free(log);
    CU_ASSERT_FATAL(strncmp(dir, "/", 1) == 0 && strstr(dir, "jb-kube-") != NULL);
    CU_ASSERT(dir_exists(dir)); /* a crashed test leaves its directory; the processes are gone */
    CU_ASSERT(wait_no_process(dir, 20000));
    jb_rm_tree(dir);
    CU_ASSERT(!dir_exists(dir));
    jb_tproc_stop(p);
}

static const jb_test_case cases[] = {
    {"admin lists namespaces, norbac is forbidden, RBAC decides for controller",
     test_users_and_rbac},
    {"kubectl reads a manifest from standard input", test_kubectl_stdin},
    {"apiserver killed and restarted keeps etcd's data", test_apiserver_kill_restart_keeps_data},
    {"compaction turns a watch from an old resourceVersion into 410 Gone",
     test_compaction_expires_old_watches},
    {"stop kills etcd and apiserver and removes the directory", test_stop_removes_everything},
    {"etcd and apiserver die with a crashed test", test_processes_die_with_crashed_test},
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--crash-with-kube") == 0)
        return crash_with_kube();
    return jb_cunit_main("kube_harness", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}
