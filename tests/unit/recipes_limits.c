/* Unit tests for resource limits and isolation: parsing --limit, deciding
 * how each limit is applied, and the limits and namespaces really holding
 * in a forked child. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "recipes/recipes.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under ASan, an allocation over RLIMIT_DATA must come back NULL, as it
 * does without ASan, instead of aborting. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static void parses_every_key(void **state)
{
    (void)state;
    plan_limits l = {0};
    assert_int_equal(plan_limits_parse(ctx, &l, "cpu=0.5,mem=64M,nofile=256,nproc=32,nice=10"), 0);
    assert_true(l.cpu > 0.49 && l.cpu < 0.51);
    assert_int_equal(l.mem, 64u << 20);
    assert_int_equal(l.nofile, 256);
    assert_int_equal(l.nproc, 32);
    assert_int_equal(l.nice, 10);
    for (int i = 0; i < PLAN_LIMIT_COUNT; i++) {
        assert_true(l.set[i]);
        assert_true(l.required[i]);
    }
    assert_string_equal(l.text[PLAN_LIMIT_MEM], "64M");
    assert_true(plan_limits_any(&l));
}

static void an_option_overrides_a_default(void **state)
{
    (void)state;
    plan_limits l = {0};
    assert_int_equal(plan_limits_set(ctx, &l, "mem", "1G", false), 0);
    assert_int_equal(plan_limits_set(ctx, &l, "nofile", "512", false), 0);
    assert_int_equal(plan_limits_parse(ctx, &l, "mem=32M"), 0);
    assert_int_equal(l.mem, 32u << 20);
    assert_true(l.required[PLAN_LIMIT_MEM]);
    assert_false(l.required[PLAN_LIMIT_NOFILE]);
    assert_false(l.set[PLAN_LIMIT_CPU]);
}

static void refuses_bad_limits(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"mem=lots", "limit 'mem': expected a size such as 512M or 2G, found 'lots'"},
        {"cpu=0", "limit 'cpu': expected a number of CPUs such as 0.5 or 2, found '0'"},
        {"nice=20", "limit 'nice': expected an integer from -20 to 19, found '20'"},
        {"nofile=-1", "limit 'nofile': expected a positive integer, found '-1'"},
        {"nproc=99999999999999999999", "limit 'nproc': expected a positive integer, found "
                                       "'99999999999999999999'"},
        {"disk=1G", "unknown limit 'disk': the limits are cpu, mem, nofile, nproc and nice"},
        {"mem", "limit 'mem' is not KEY=VALUE, such as mem=64M"},
        {"=5", "limit '=5' is not KEY=VALUE, such as mem=64M"},
        {"", "empty limits: write KEY=VALUE,... such as mem=64M,nofile=256"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        plan_limits l = {0};
        assert_int_equal(plan_limits_parse(ctx, &l, cases[i].spec), PLAN_ERR_INVALID);
        assert_string_equal(plan_ctx_error(ctx), cases[i].msg);
        plan_ctx_clear_error(ctx);
    }
}

/* Run fn in a child under s's limits; its exit status. */
static int in_child(const plan_limits_setup *s, int (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        if (plan_limits_join(s, err, sizeof(err)) || plan_limits_apply(s, err, sizeof(err)))
            _exit(100);
        _exit(fn());
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* How many more files can be opened (at most 1000). */
static int open_until_refused(void)
{
    int n = 0;
    while (n < 1000 && open("/dev/null", O_RDONLY) >= 0)
        n++;
    return errno == EMFILE ? n : 255;
}

static void nofile_caps_open_files(void **state)
{
    (void)state;
    plan_limits l = {0};
    assert_int_equal(plan_limits_parse(ctx, &l, "nofile=32"), 0);
    plan_limits_setup *s = NULL;
    assert_int_equal(plan_limits_prepare(ctx, &l, "unit-nofile", &s), 0);
    assert_string_equal(plan_limits_report(s), "nofile=32 (RLIMIT_NOFILE)");
    int opened = in_child(s, open_until_refused);
    /* stdin, stdout, stderr and cmocka's own descriptors come first. */
    assert_true(opened > 0 && opened <= 29);
    plan_limits_setup_free(s);
}

static int allocate_64m(void)
{
    size_t n = 64u << 20;
    char *p = malloc(n);
    if (!p)
        return 0;
    memset(p, 1, n);
    free(p);
    return 3;
}

static void an_allocation_over_mem_fails(void **state)
{
    (void)state;
    plan_limits l = {0};
    plan_limits_setup *s = NULL;
    assert_int_equal(plan_limits_prepare(ctx, &l, "unit-none", &s), 0);
    assert_int_equal(in_child(s, allocate_64m), 3); /* without a limit, it works */
    plan_limits_setup_free(s);
    assert_int_equal(plan_limits_parse(ctx, &l, "mem=16M"), 0);
    assert_int_equal(plan_limits_prepare(ctx, &l, "unit-mem", &s), 0);
    assert_non_null(strstr(plan_limits_report(s), "mem=16M (RLIMIT_DATA"));
    assert_int_equal(in_child(s, allocate_64m), 0);
    plan_limits_setup_free(s);
}

static int niceness(void)
{
    errno = 0;
    int n = getpriority(PRIO_PROCESS, 0);
    return errno ? 255 : n;
}

static void nice_is_set(void **state)
{
    (void)state;
    plan_limits l = {0};
    assert_int_equal(plan_limits_parse(ctx, &l, "nice=7"), 0);
    plan_limits_setup *s = NULL;
    assert_int_equal(plan_limits_prepare(ctx, &l, "unit-nice", &s), 0);
    assert_string_equal(plan_limits_report(s), "nice=7 (setpriority)");
    assert_int_equal(in_child(s, niceness), 7);
    plan_limits_setup_free(s);
}

/* cpu has no rlimit: a cgroup applies it, or an explicit one is an error
 * and a default one is reported as not applied. */
static void cpu_needs_a_cgroup(void **state)
{
    (void)state;
    plan_limits l = {0};
    assert_int_equal(plan_limits_parse(ctx, &l, "cpu=0.5"), 0);
    plan_limits_setup *s = NULL;
    int rc = plan_limits_prepare(ctx, &l, "unit-cpu", &s);
    if (rc == 0) {
        assert_string_equal(plan_limits_report(s), "cpu=0.5 (cpu.max)");
        plan_limits_setup_free(s);
        return;
    }
    assert_int_equal(rc, PLAN_ERR_FAILED);
    assert_non_null(strstr(plan_ctx_error(ctx), "cannot apply the limit cpu=0.5: a share of "
                                                "CPUs needs a cgroup; no cgroup: "));
    assert_non_null(strstr(plan_ctx_error(ctx), "; leave 'cpu' out of --limit"));
    plan_ctx_clear_error(ctx);
    plan_limits d = {0};
    assert_int_equal(plan_limits_set(ctx, &d, "cpu", "0.5", false), 0);
    assert_int_equal(plan_limits_set(ctx, &d, "nofile", "64", false), 0);
    assert_int_equal(plan_limits_prepare(ctx, &d, "unit-cpu", &s), 0);
    assert_non_null(strstr(plan_limits_report(s), "nofile=64 (RLIMIT_NOFILE); not applied: "
                                                  "cpu=0.5 (a share of CPUs needs a cgroup"));
    plan_limits_setup_free(s);
}

/* ---------- isolation ---------- */

static char *iso_store, *iso_keep;

/* In the namespaces: PID 2, the store read-only, the kept folder
 * writable, /tmp private and empty. */
static int check_isolated(void)
{
    if (getpid() != 2)
        return 10;
    char *f = plan_path_join(iso_store, "x");
    int fd = open(f, O_WRONLY | O_CREAT, 0644);
    free(f);
    if (fd >= 0 || errno != EROFS)
        return 11;
    f = plan_path_join(iso_keep, "written");
    fd = open(f, O_WRONLY | O_CREAT, 0644);
    free(f);
    if (fd < 0)
        return 12;
    close(fd);
    if (access("/tmp/plan-unit-marker", F_OK) == 0)
        return 13;
    return 0;
}

static void isolation_holds(void **state)
{
    (void)state;
    if (plan_isolation_check(ctx, true) != 0) {
        /* Unavailable here: the message must say what and the way out. */
        assert_non_null(strstr(plan_ctx_error(ctx), "--isolate is not available here: cannot "
                                                    "create "));
        assert_non_null(strstr(plan_ctx_error(ctx), "run without --isolate and --no-network"));
        plan_ctx_clear_error(ctx);
        skip();
    }
    char *tmp = th_tmpdir();
    iso_store = plan_path_join(tmp, "store");
    iso_keep = plan_path_join(tmp, "keep");
    assert_int_equal(mkdir(iso_store, 0755), 0);
    assert_int_equal(mkdir(iso_keep, 0755), 0);
    int m = open("/tmp/plan-unit-marker", O_WRONLY | O_CREAT, 0644);
    assert_true(m >= 0);
    close(m);
    const char *keep[] = {iso_keep};
    plan_isolation iso = {.no_network = true, .store_dir = iso_store, .keep = keep, .n_keep = 1};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        if (plan_isolation_enter(&iso, err, sizeof(err)) != 0)
            _exit(100);
        _exit(check_isolated());
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    unlink("/tmp/plan-unit-marker");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char *written = plan_path_join(iso_keep, "written");
    assert_int_equal(access(written, F_OK), 0);
    free(written);
    free(iso_store);
    free(iso_keep);
    th_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_every_key),
        cmocka_unit_test(an_option_overrides_a_default),
        cmocka_unit_test(refuses_bad_limits),
        cmocka_unit_test(nofile_caps_open_files),
        cmocka_unit_test(an_allocation_over_mem_fails),
        cmocka_unit_test(nice_is_set),
        cmocka_unit_test(cpu_needs_a_cgroup),
        cmocka_unit_test(isolation_holds),
    };
    return cmocka_run_group_tests_name("recipes_limits", tests, setup, teardown);
}
