/* The solver's data-driven cases: every tests/resolver/NAME.test file is one
 * test (format in docs/solver.md).  A case expects either a [result] (the
 * solution, "name version" per line) or an [explain] (the exact words of
 * the failure).  PLAN_RESOLVER_SHOW=1 prints what the solver produced, for
 * writing new cases; read it before pasting it in. */
#include "test_helpers.h"
#include "resolver/resolver.h"

#include <dirent.h>

static char *case_dir(void)
{
    const char *src = getenv("PLAN_SRC");
    return plan_path_join(src && *src ? src : ".", "tests/resolver");
}

static void run_case(void **state)
{
    const char *path = *state;
    plan_ctx *ctx = plan_ctx_new();
    plan_buf text;
    plan_buf_init(&text);
    if (plan_fs_read_file(path, 16 << 20, &text))
        fail_msg("cannot read '%s'", path);
    plan_resolver_problem pb;
    if (plan_resolver_problem_parse(ctx, path, text.data, &pb))
        fail_msg("%s", plan_ctx_error(ctx));
    if (!pb.expect_result == !pb.expect_explain)
        fail_msg("%s: give exactly one of [result] and [explain]", path);
    plan_resolver *r = plan_resolver_problem_resolver(ctx, &pb);
    if (!r)
        fail_msg("%s: %s", path, plan_ctx_error(ctx));
    const plan_resolution *res;
    int rc = plan_resolver_solve(r, &res);
    char *got = NULL;
    if (rc == 0)
        got = plan_resolution_format(res);
    else if (plan_resolver_explain(r))
        got = plan_xstrdup(plan_resolver_explain(r));
    else
        fail_msg("%s: solver error: %s", path, plan_ctx_error(ctx));
    if (getenv("PLAN_RESOLVER_SHOW"))
        printf("---- %s (%s)\n%s----\n", path, rc ? "no solution" : "solved", got);
    if (pb.expect_result) {
        if (rc)
            fail_msg("%s: expected a solution, got:\n%s", path, got);
        if (strcmp(got, pb.expect_result))
            fail_msg("%s: expected\n%sgot\n%s", path, pb.expect_result, got);
    } else {
        if (!rc)
            fail_msg("%s: expected no solution, got:\n%s", path, got);
        if (strcmp(got, pb.expect_explain))
            fail_msg("%s: expected the explanation\n%s\ngot\n%s", path, pb.expect_explain,
                     got);
        /* Failures also leave a short message on the context. */
        assert_int_equal(rc, PLAN_ERR_FAILED);
        assert_non_null(strstr(plan_ctx_error(ctx), "no set of versions"));
    }
    free(got);
    plan_resolver_free(r);
    plan_resolver_problem_release(&pb);
    plan_buf_release(&text);
    plan_ctx_free(ctx);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    char *dir = case_dir();
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "resolver_cases: no case directory '%s' (set PLAN_SRC)\n", dir);
        return 1;
    }
    plan_strlist files;
    plan_strlist_init(&files);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".test"))
            plan_strlist_add(&files, e->d_name);
    }
    closedir(d);
    qsort(files.items, files.len, sizeof(char *), by_name);
    if (files.len == 0) {
        fprintf(stderr, "resolver_cases: no .test files in '%s'\n", dir);
        return 1;
    }
    struct CMUnitTest *tests = plan_xcalloc(files.len, sizeof(*tests));
    char **paths = plan_xcalloc(files.len, sizeof(char *));
    for (size_t i = 0; i < files.len; i++) {
        paths[i] = plan_path_join(dir, files.items[i]);
        tests[i].name = files.items[i];
        tests[i].test_func = run_case;
        tests[i].initial_state = paths[i];
    }
    int rc = _cmocka_run_group_tests("resolver_cases", tests, files.len, NULL, NULL);
    for (size_t i = 0; i < files.len; i++)
        free(paths[i]);
    free(paths);
    free(tests);
    plan_strlist_release(&files);
    free(dir);
    return rc;
}
