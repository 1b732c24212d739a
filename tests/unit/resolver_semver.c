/* Unit tests for SemVer versions and npm-style ranges: our own table of
 * cases, written from the SemVer 2.0.0 text and npm's documented range
 * rules. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "resolver/resolver.h"

static void versions_parse_strictly(void **state)
{
    (void)state;
    static const char *good[] = {
        "0.0.0", "1.2.3", "v1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1",
        "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85", "1.0.0+21AF26D3----117B344092BD", "1.0.0+001",
        "9007199254740991.0.0", "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
    };
    static const char *bad[] = {
        "", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3+",
        "1.2.3-01", "1.2.3-a..b", "1.2.3-a_b", "1.2.3+a+b", " 1.2.3", "1.2.3 ", "=1.2.3",
        "V1.2.3", "vv1.2.3", "1.2.x", "*", "9007199254740992.0.0", "-1.2.3", "1.2.3-é",
        "99999999999999999999.0.0", "1.2.3.", ".1.2.3",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        plan_semver v;
        if (plan_semver_parse(ctx, good[i], &v))
            fail_msg("'%s' should parse: %s", good[i], plan_ctx_error(ctx));
        plan_semver_release(&v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        plan_semver v;
        if (plan_semver_parse(ctx, bad[i], &v) == 0)
            fail_msg("'%s' should not parse", bad[i]);
        assert_int_equal(plan_ctx_error_code(ctx), PLAN_ERR_INVALID);
        assert_non_null(strstr(plan_ctx_error(ctx), "invalid version"));
    }
    char *longv = plan_xmalloc(300);
    memset(longv, '1', 299);
    longv[299] = 0;
    longv[1] = '.';
    longv[3] = '.';
    plan_semver v;
    assert_int_equal(plan_semver_parse(ctx, longv, &v), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "longer than 256"));
    free(longv);
}

static void parts_and_format(void **state)
{
    (void)state;
    plan_semver v;
    assert_int_equal(plan_semver_parse(ctx, "v1.22.333-rc.1+build.9", &v), 0);
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 22);
    assert_int_equal(v.patch, 333);
    assert_string_equal(v.prerelease, "rc.1");
    assert_string_equal(v.build, "build.9");
    char *s = plan_semver_format(&v);
    assert_string_equal(s, "1.22.333-rc.1+build.9"); /* 'v' dropped, build kept */
    free(s);
    plan_semver c;
    plan_semver_copy(&c, &v);
    plan_semver_release(&v);
    assert_string_equal(c.build, "build.9");
    plan_semver_release(&c);
}

static int cmp(const char *a, const char *b)
{
    plan_semver x, y;
    if (plan_semver_parse(ctx, a, &x) || plan_semver_parse(ctx, b, &y))
        fail_msg("bad test version: %s", plan_ctx_error(ctx));
    int c = plan_semver_compare(&x, &y);
    plan_semver_release(&x);
    plan_semver_release(&y);
    return c;
}

static void precedence_follows_the_spec(void **state)
{
    (void)state;
    /* The spec's own chain, then more. */
    static const char *chain[] = {
        "0.0.0-0", "0.0.0", "0.0.1", "0.1.0", "1.0.0-0", "1.0.0-1", "1.0.0-2", "1.0.0-10",
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0",
        "10.0.0", "9007199254740991.0.0",
    };
    size_t n = sizeof(chain) / sizeof(chain[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n; k++) {
            int c = cmp(chain[i], chain[k]);
            int want = i < k ? -1 : i > k;
            if ((c < 0 ? -1 : c > 0) != want)
                fail_msg("compare(%s, %s) = %d, want %d", chain[i], chain[k], c, want);
        }
    assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0);
    assert_int_equal(cmp("1.0.0-A", "1.0.0-a"), -1); /* ASCII order */
    assert_int_equal(cmp("1.0.0-a-1", "1.0.0-a"), 1);
    assert_int_equal(cmp("1.0.0-999", "1.0.0-1000"), -1); /* numerically */
    plan_semver x, y;
    plan_semver_parse(ctx, "1.0.0+a", &x);
    plan_semver_parse(ctx, "1.0.0+b", &y);
    assert_true(plan_semver_compare_full(&x, &y) < 0);
    plan_semver_release(&x);
    plan_semver_release(&y);
}

static char *desugar(const char *range)
{
    plan_semver_range *r;
    if (plan_semver_range_parse(ctx, range, &r))
        fail_msg("range '%s' should parse: %s", range, plan_ctx_error(ctx));
    char *s = plan_semver_range_format(r);
    plan_semver_range_free(r);
    return s;
}

/* Every sugar, rewritten to plain comparators as npm rewrites it. */
static void ranges_desugar_like_npm(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"", "*"},
        {"*", "*"},
        {"x", "*"},
        {"X", "*"},
        {"1.2.3", "1.2.3"},
        {"=1.2.3", "1.2.3"},
        {"v1.2.3", "1.2.3"},
        {"=v1.2.3", "1.2.3"},
        {"1.2.3+build", "1.2.3"},
        {">1.2.3", ">1.2.3"},
        {">= 1.2.3", ">=1.2.3"},
        {"<  1.2.3-beta", "<1.2.3-beta"},
        {"1", ">=1.0.0 <2.0.0-0"},
        {"1.x", ">=1.0.0 <2.0.0-0"},
        {"1.x.x", ">=1.0.0 <2.0.0-0"},
        {"1.*", ">=1.0.0 <2.0.0-0"},
        {"1.2", ">=1.2.0 <1.3.0-0"},
        {"1.2.x", ">=1.2.0 <1.3.0-0"},
        {">1", ">=2.0.0"},
        {">1.2", ">=1.3.0"},
        {">=1", ">=1.0.0"},
        {">=1.2", ">=1.2.0"},
        {"<1", "<1.0.0-0"},
        {"<1.2", "<1.2.0-0"},
        {"<=1", "<2.0.0-0"},
        {"<=1.2", "<1.3.0-0"},
        {"=1.2", ">=1.2.0 <1.3.0-0"},
        {">*", "<0.0.0-0"},
        {"<*", "<0.0.0-0"},
        {">=*", "*"},
        {"~1.2.3", ">=1.2.3 <1.3.0-0"},
        {"~1.2", ">=1.2.0 <1.3.0-0"},
        {"~1", ">=1.0.0 <2.0.0-0"},
        {"~0.2.3", ">=0.2.3 <0.3.0-0"},
        {"~1.2.3-beta.2", ">=1.2.3-beta.2 <1.3.0-0"},
        {"~>1.2.3", ">=1.2.3 <1.3.0-0"},
        {"~> 1.2", ">=1.2.0 <1.3.0-0"},
        {"~ 1.2.3", ">=1.2.3 <1.3.0-0"},
        {"~*", "*"},
        {"^1.2.3", ">=1.2.3 <2.0.0-0"},
        {"^0.2.3", ">=0.2.3 <0.3.0-0"},
        {"^0.0.3", ">=0.0.3 <0.0.4-0"},
        {"^1.2.3-beta.2", ">=1.2.3-beta.2 <2.0.0-0"},
        {"^0.0.3-beta", ">=0.0.3-beta <0.0.4-0"},
        {"^1.2.x", ">=1.2.0 <2.0.0-0"},
        {"^0.0.x", ">=0.0.0 <0.1.0-0"},
        {"^0.0", ">=0.0.0 <0.1.0-0"},
        {"^1.x", ">=1.0.0 <2.0.0-0"},
        {"^0.x", ">=0.0.0 <1.0.0-0"},
        {"^ 1.2", ">=1.2.0 <2.0.0-0"},
        {"^*", "*"},
        {"1.2.3 - 2.3.4", ">=1.2.3 <=2.3.4"},
        {"1.2 - 2.3.4", ">=1.2.0 <=2.3.4"},
        {"1.2.3 - 2.3", ">=1.2.3 <2.4.0-0"},
        {"1.2.3 - 2", ">=1.2.3 <3.0.0-0"},
        {"* - 2", "<3.0.0-0"},
        {"1.2.3-pre - 2.0.0-rc.1", ">=1.2.3-pre <=2.0.0-rc.1"},
        {"  1.2.3   -   2.3.4  ", ">=1.2.3 <=2.3.4"},
        {"1.2.7 || >=1.2.9 <2.0.0", "1.2.7||>=1.2.9 <2.0.0"},
        {"1.x||2.x", ">=1.0.0 <2.0.0-0||>=2.0.0 <3.0.0-0"},
        {"1.2.3 ||", "1.2.3||*"},
        {">=1.2.3\t<2", ">=1.2.3 <2.0.0-0"},
        {">1.x", ">=2.0.0"},
        {"<=1.x", "<2.0.0-0"},
        {"1.x.3", ">=1.0.0 <2.0.0-0"}, /* npm's grammar allows it; the x wins */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = desugar(cases[i][0]);
        if (strcmp(got, cases[i][1]))
            fail_msg("'%s' desugars to '%s', want '%s'", cases[i][0], got, cases[i][1]);
        free(got);
    }
}

static void bad_ranges_are_errors(void **state)
{
    (void)state;
    static const char *bad[] = {
        ">=1.2.3<2", "1.2.3 -2", "1.2.3- 2", "1.2.3 - 2 >1", "~1.2.3 - 2", "|1.2.3",
        "1.2.3 | 2", "> =1.2.3", ">>1.2.3", "=>1.2.3", "01.2.3", "1.02", "1.2.3-01",
        "1.2.x-beta", "1-beta", "^", ">=", "~>", "1.2.3 >=", "foo", "1.2.3.4", "a.b.c",
        "1 .2", "1.2.3-", "^1.2.3+", "&& 1", "latest", "1.2.3 && 2", "-", "v", "1..2",
        "9007199254740992", "*.*.*.*",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        plan_semver_range *r = NULL;
        if (plan_semver_range_parse(ctx, bad[i], &r) == 0) {
            char *s = plan_semver_range_format(r);
            fail_msg("'%s' should be refused, parsed as '%s'", bad[i], s);
        }
        assert_null(r);
        assert_int_equal(plan_ctx_error_code(ctx), PLAN_ERR_INVALID);
        assert_non_null(strstr(plan_ctx_error(ctx), "invalid range"));
    }
}

static bool sat(const char *range, const char *version)
{
    plan_semver_range *r;
    plan_semver v;
    if (plan_semver_range_parse(ctx, range, &r))
        fail_msg("range '%s': %s", range, plan_ctx_error(ctx));
    if (plan_semver_parse(ctx, version, &v))
        fail_msg("version '%s': %s", version, plan_ctx_error(ctx));
    bool ok = plan_semver_range_satisfies(r, &v);
    plan_semver_range_free(r);
    plan_semver_release(&v);
    return ok;
}

static void satisfaction_and_the_prerelease_rule(void **state)
{
    (void)state;
    static const struct {
        const char *range, *version;
        bool want;
    } cases[] = {
        {"^1.2.3", "1.2.3", true},
        {"^1.2.3", "1.9.9", true},
        {"^1.2.3", "2.0.0", false},
        {"^1.2.3", "1.2.2", false},
        {"^0.2.3", "0.2.9", true},
        {"^0.2.3", "0.3.0", false},
        {"^0.0.3", "0.0.3", true},
        {"^0.0.3", "0.0.4", false},
        {"~1.2.3", "1.2.9", true},
        {"~1.2.3", "1.3.0", false},
        {"1.x", "1.99.0", true},
        {"1.x", "2.0.0", false},
        {"*", "0.0.0", true},
        {"*", "1.0.0-beta", false},          /* no prerelease named */
        {">=0.0.0", "1.0.0-beta", false},
        {"^1.2.3-beta.2", "1.2.3-beta.4", true}, /* same tuple: allowed */
        {"^1.2.3-beta.2", "1.2.3-beta.1", false},
        {"^1.2.3-beta.2", "1.2.4-beta.3", false}, /* other tuple: not allowed */
        {"^1.2.3-beta.2", "1.2.4", true},
        {"^1.2.3", "2.0.0-0", false},
        {"<2.0.0", "2.0.0-rc.1", false},
        {"<2.0.0-rc.2", "2.0.0-rc.1", true},
        {">1.2.3-alpha.3", "1.2.3-alpha.7", true},
        {">1.2.3-alpha.3", "3.4.5-alpha.9", false},
        {">1.2.3-alpha.3", "3.4.5", true},
        {"1.2.3-pre - 2.0.0", "1.2.3-pre.1", true},
        {"1.2.3 - 2.3", "2.3.99", true},
        {"1.2.3 - 2.3", "2.4.0", false},
        {"1.2.3 - 2.3.4", "2.3.4", true},
        {"1.2.3 - 2.3.4", "2.3.5", false},
        {"<1.2.3 || >2", "1.2.4", false},
        {"<1.2.3 || >2", "3.0.0", true},
        {"1.2.3+build", "1.2.3+other", true},
        {"=1.2.3", "1.2.3", true},
        {">*", "1.0.0", false},
        {"1.0.0 - 2.0.0 || 3.0.0-beta.1", "3.0.0-beta.1", true},
        {"1.0.0 - 2.0.0 || 3.0.0-beta.1", "3.0.0-beta.2", false},
        {">=1.0.0-rc.1 <1.0.0", "1.0.0-rc.5", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (sat(cases[i].range, cases[i].version) != cases[i].want)
            fail_msg("satisfies('%s', '%s') should be %s", cases[i].version, cases[i].range,
                     cases[i].want ? "true" : "false");
    plan_semver_range *r;
    assert_int_equal(plan_semver_range_parse(ctx, "^1.0.0-beta", &r), 0);
    assert_true(plan_semver_range_has_prerelease(r));
    plan_semver_range_free(r);
    assert_int_equal(plan_semver_range_parse(ctx, "^1.0.0", &r), 0);
    assert_false(plan_semver_range_has_prerelease(r));
    plan_semver_range_free(r);
}

/* Hostile sizes are refused quickly, and big legal ones stay linear. */
static void pathological_inputs_are_bounded(void **state)
{
    (void)state;
    plan_buf b;
    plan_buf_init(&b);
    for (int i = 0; i < 2000; i++)
        plan_buf_adds(&b, "||");
    plan_semver_range *r;
    assert_int_equal(plan_semver_range_parse(ctx, b.data, &r), PLAN_ERR_INVALID);
    plan_buf_reset(&b);
    for (int i = 0; i < 300; i++)
        plan_buf_adds(&b, ">1 ");
    assert_int_equal(plan_semver_range_parse(ctx, b.data, &r), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "more than 256 comparators"));
    plan_buf_reset(&b);
    for (int i = 0; i < 120; i++) /* 2 comparators each: 242 in all */
        plan_buf_adds(&b, "1||");
    plan_buf_adds(&b, "2");
    assert_int_equal(plan_semver_range_parse(ctx, b.data, &r), 0);
    plan_semver v;
    plan_semver_parse(ctx, "2.5.0", &v);
    assert_true(plan_semver_range_satisfies(r, &v));
    plan_semver_release(&v);
    plan_semver_range_free(r);
    plan_buf_reset(&b);
    for (int i = 0; i < 5000; i++)
        plan_buf_addc(&b, '1');
    assert_int_equal(plan_semver_range_parse(ctx, b.data, &r), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "longer than"));
    plan_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(versions_parse_strictly),
        cmocka_unit_test(parts_and_format),
        cmocka_unit_test(precedence_follows_the_spec),
        cmocka_unit_test(ranges_desugar_like_npm),
        cmocka_unit_test(bad_ranges_are_errors),
        cmocka_unit_test(satisfaction_and_the_prerelease_rule),
        cmocka_unit_test(pathological_inputs_are_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
