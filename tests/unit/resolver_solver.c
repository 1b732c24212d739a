/* Unit tests for the solver's API: what a lockfile writer and `plan why`
 * get from a resolution, errors from providers and bad input.  The search
 * itself is tested by the data cases (tests/resolver/, resolver_cases.c). */
#include "test_helpers.h"
#include "test_ctx.h"
#include "resolver/resolver.h"


static plan_resolver_index *chain_index(void)
{
    plan_resolver_index *ix = plan_resolver_index_new();
    plan_resolver_index_add(ix, "app", "1.0.0");
    plan_resolver_index_add_dep(ix, "web", "^2.0.0");
    plan_resolver_index_add_dep(ix, "log", "~1.0.0");
    plan_resolver_index_add(ix, "web", "2.1.0");
    plan_resolver_index_add_dep(ix, "tls", ">=3");
    plan_resolver_index_add_dep(ix, "log", "^1.0.0");
    plan_resolver_index_add(ix, "tls", "3.0.0");
    plan_resolver_index_add(ix, "tls", "v3.2.0"); /* spelled with a 'v' */
    plan_resolver_index_add(ix, "log", "1.0.4");
    plan_resolver_index_add(ix, "log", "not-a-version");
    return ix;
}

static size_t find(const plan_resolution *res, const char *name)
{
    for (size_t i = 0; i < res->count; i++)
        if (!strcmp(res->packages[i].name, name))
            return i;
    fail_msg("'%s' is not in the resolution", name);
    return 0;
}

static void resolution_tells_why_each_package_is_there(void **state)
{
    (void)state;
    plan_resolver_index *ix = chain_index();
    plan_resolver_provider prov = plan_resolver_index_provider(ix);
    plan_resolver *r = plan_resolver_new(ctx, &prov);
    assert_int_equal(plan_resolver_require(r, "app", "*"), 0);
    const plan_resolution *res;
    assert_int_equal(plan_resolver_solve(r, &res), 0);
    assert_null(plan_resolver_explain(r));
    assert_int_equal(res->count, 4);
    /* Sorted by name. */
    assert_string_equal(res->packages[0].name, "app");
    assert_string_equal(res->packages[1].name, "log");
    assert_string_equal(res->packages[2].name, "tls");
    assert_string_equal(res->packages[3].name, "web");
    size_t app = find(res, "app"), web = find(res, "web"), tls = find(res, "tls"),
           log = find(res, "log");
    /* The provider's spelling is kept. */
    assert_string_equal(res->packages[tls].version, "v3.2.0");
    /* The chain for `plan why tls`: tls <- web (>=3) <- app (^2.0.0) <- request. */
    assert_int_equal(res->packages[tls].parent, web);
    assert_string_equal(res->packages[tls].required_as, ">=3");
    assert_int_equal(res->packages[web].parent, app);
    assert_string_equal(res->packages[web].required_as, "^2.0.0");
    assert_int_equal(res->packages[app].parent, SIZE_MAX);
    assert_string_equal(res->packages[app].required_as, "*");
    /* log is needed by app and web; the shortest chain is through app. */
    assert_int_equal(res->packages[log].parent, app);
    assert_string_equal(res->packages[log].required_as, "~1.0.0");
    /* Every dependency, for the lockfile. */
    assert_int_equal(res->packages[web].ndeps, 2);
    assert_int_equal(res->packages[web].deps[0], tls);
    assert_string_equal(res->packages[web].dep_ranges[0], ">=3");
    assert_int_equal(res->packages[web].deps[1], log);
    assert_int_equal(res->packages[tls].ndeps, 0);
    char *text = plan_resolution_format(res);
    assert_string_equal(text, "app 1.0.0\nlog 1.0.4\ntls v3.2.0\nweb 2.1.0\n");
    free(text);
    /* A resolver solves once. */
    assert_int_equal(plan_resolver_solve(r, &res), PLAN_ERR_INVALID);
    plan_resolver_free(r);
    plan_resolver_index_free(ix);
}

/* Named packages first, in the order named and each once, then the rest in
 * the lock's order; a name the lock lacks is passed over. */
static void lock_request_order_puts_requests_first(void **state)
{
    (void)state;
    plan_lock *l = plan_lock_new();
    const char *in_lock[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        plan_lock_add(l, in_lock[i], "1.0.0");
    plan_strlist names;
    plan_strlist_init(&names);
    const char *asked[] = {"d", "b", "nothere", "d", "b"};
    for (size_t i = 0; i < 5; i++)
        plan_strlist_add(&names, asked[i]);
    size_t order[5];
    plan_lock_request_order(l, &names, order);
    const char *want[] = {"d", "b", "a", "c", "e"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(l->packages[order[i]].name, want[i]);
    plan_strlist_release(&names);
    plan_lock_free(l);
}

static void bad_input_is_refused_up_front(void **state)
{
    (void)state;
    plan_resolver_index *ix = chain_index();
    plan_resolver_provider prov = plan_resolver_index_provider(ix);
    plan_resolver *r = plan_resolver_new(ctx, &prov);
    assert_int_equal(plan_resolver_require(r, "app", ">>1"), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "'app'"));
    assert_non_null(strstr(plan_ctx_error(ctx), ">>1"));
    assert_int_equal(plan_resolver_require(r, "", "1"), PLAN_ERR_INVALID);
    assert_int_equal(plan_resolver_lock(r, "app", "1.0"), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "lock of 'app'"));
    plan_resolver_free(r);
    plan_resolver_index_free(ix);
}

/* A provider that fails on one name: the solve stops with its error. */
static int failing_versions(void *user, plan_ctx *c, const char *name, plan_strlist *out)
{
    (void)user;
    if (!strcmp(name, "broken"))
        return plan_fail(c, PLAN_ERR_IO, "cannot read the index entry of 'broken'");
    plan_strlist_add(out, "1.0.0");
    return 0;
}

static int failing_deps(void *user, plan_ctx *c, const char *name, const char *version,
                        plan_strlist *names, plan_strlist *ranges)
{
    (void)user;
    (void)c;
    (void)version;
    if (!strcmp(name, "top")) {
        plan_strlist_add(names, "broken");
        plan_strlist_add(ranges, "*");
    }
    return 0;
}

static void provider_errors_abort_the_solve(void **state)
{
    (void)state;
    plan_resolver_provider prov = {failing_versions, failing_deps, NULL};
    plan_resolver *r = plan_resolver_new(ctx, &prov);
    assert_int_equal(plan_resolver_require(r, "top", "*"), 0);
    const plan_resolution *res;
    assert_int_equal(plan_resolver_solve(r, &res), PLAN_ERR_IO);
    assert_null(res);
    assert_null(plan_resolver_explain(r));
    assert_non_null(strstr(plan_ctx_error(ctx), "'broken'"));
    plan_resolver_free(r);
}

static void problem_files_report_their_mistakes(void **state)
{
    (void)state;
    plan_resolver_problem pb;
    assert_int_equal(plan_resolver_problem_parse(ctx, "x.test", "[index]\n  dep 1\n", &pb),
                     PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "x.test:2:"));
    assert_int_equal(plan_resolver_problem_parse(ctx, "x.test", "foo 1.0.0\n", &pb),
                     PLAN_ERR_INVALID);
    assert_int_equal(plan_resolver_problem_parse(ctx, "x.test", "[index]\nfoo\n", &pb),
                     PLAN_ERR_INVALID);
    assert_int_equal(plan_resolver_problem_parse(ctx, "x.test",
                                                 "[index]\nfoo 1.0.0\n[request]\nfoo\n"
                                                 "[explain]\n\nline one\n# kept\n\n",
                                                 &pb),
                     0);
    assert_string_equal(pb.expect_explain, "line one\n# kept\n");
    assert_string_equal(pb.req_ranges.items[0], "*");
    assert_null(pb.expect_result);
    plan_resolver_problem_release(&pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolution_tells_why_each_package_is_there),
        cmocka_unit_test(lock_request_order_puts_requests_first),
        cmocka_unit_test(bad_input_is_refused_up_front),
        cmocka_unit_test(provider_errors_abort_the_solve),
        cmocka_unit_test(problem_files_report_their_mistakes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
