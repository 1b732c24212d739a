/* Unit tests for composing an environment from the plans' manifests and
 * applying it to an environment list. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "recipes/recipes.h"

typedef struct fx {
    char *tmp;
    char *pa, *pb, *pc;
    char *farm;
} fx;

static fx *fx_new(void)
{
    fx *f = plan_xcalloc(1, sizeof(*f));
    f->tmp = th_tmpdir();
    f->pa = plan_path_join(f->tmp, "a");
    f->pb = plan_path_join(f->tmp, "b");
    f->pc = plan_path_join(f->tmp, "c");
    f->farm = plan_path_join(f->tmp, "farm");
    assert_int_equal(mkdir(f->pa, 0755), 0);
    assert_int_equal(mkdir(f->pb, 0755), 0);
    assert_int_equal(mkdir(f->pc, 0755), 0);
    return f;
}

static void fx_free(fx *f)
{
    free(f->pa);
    free(f->pb);
    free(f->pc);
    free(f->farm);
    th_rmtree(f->tmp);
    free(f);
}

static void manifest(const char *plan, const char *env_json)
{
    char *text = plan_xasprintf("{\"name\":\"x\",\"env\":%s}", env_json);
    th_write_str(plan, ".plan/manifest.json", text);
    free(text);
}

static int compose(fx *f, size_t n, plan_env_plan *out)
{
    const char *paths[] = {f->pa, f->pb, f->pc};
    return plan_env_compose(ctx, NULL, paths, n, f->farm, out);
}

static const plan_env_item *find(const plan_env_plan *e, const char *name, size_t nth)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->items[i].name, name) && nth-- == 0)
            return &e->items[i];
    return NULL;
}

static size_t count(const plan_env_plan *e, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < e->n; i++)
        c += !strcmp(e->items[i].name, name);
    return c;
}

static const char *env_get(const plan_strlist *l, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < l->len; i++)
        if (!strncmp(l->items[i], name, n) && l->items[i][n] == '=')
            return l->items[i] + n + 1;
    return NULL;
}

static void bin_from_two_plans_is_one_entry(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/a", "a\n");
    th_write_str(f->pb, "bin/b", "b\n");
    const char *decl = "[{\"name\":\"PATH\",\"op\":\"prepend\",\"value\":\"bin\"}]";
    manifest(f->pa, decl);
    manifest(f->pb, decl);
    plan_env_plan e;
    if (compose(f, 2, &e))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_int_equal(count(&e, "PATH"), 1);
    const plan_env_item *it = find(&e, "PATH", 0);
    char *bin = plan_path_join(f->farm, "bin");
    assert_string_equal(it->value, bin);
    assert_int_equal(it->op, PLAN_ENV_PREPEND);
    free(bin);
    plan_env_plan_release(&e);
    fx_free(f);
}

static void default_path_only_with_a_bin(void **state)
{
    (void)state;
    fx *f = fx_new();
    /* no manifest at all: a plan added by hand */
    th_write_str(f->pa, "share/doc", "d\n");
    plan_env_plan e;
    assert_int_equal(compose(f, 1, &e), 0);
    assert_int_equal(e.n, 0);
    plan_env_plan_release(&e);

    th_write_str(f->pb, "bin/tool", "t\n");
    assert_int_equal(compose(f, 2, &e), 0);
    assert_int_equal(e.n, 1);
    char *bin = plan_path_join(f->farm, "bin");
    assert_string_equal(e.items[0].name, "PATH");
    assert_int_equal(e.items[0].op, PLAN_ENV_PREPEND);
    assert_string_equal(e.items[0].value, bin);
    free(bin);
    plan_env_plan_release(&e);

    /* a bin that is a file is no directory for PATH */
    th_write_str(f->pc, "bin", "not a dir\n");
    const char *only_c[] = {f->pc};
    assert_int_equal(plan_env_compose(ctx, NULL, only_c, 1, f->farm, &e), 0);
    assert_int_equal(e.n, 0);
    plan_env_plan_release(&e);
    fx_free(f);
}

static void set_expands_out_to_the_plans_own_path(void **state)
{
    (void)state;
    fx *f = fx_new();
    manifest(f->pa, "[{\"name\":\"A_HOME\",\"op\":\"set\",\"value\":\"$out/share/a\"},"
                    "{\"name\":\"A_BRACED\",\"op\":\"set\",\"value\":\"${out}/x:$out\"},"
                    "{\"name\":\"A_OTHER\",\"op\":\"set\",\"value\":\"$outer and $out_x\"},"
                    "{\"name\":\"BROKEN\",\"op\":\"replace\",\"value\":\"x\"},"
                    "{\"name\":\"NOVALUE\",\"op\":\"set\"}]");
    manifest(f->pb, "[{\"name\":\"B_HOME\",\"op\":\"set\",\"value\":\"$out\"},"
                    "{\"name\":\"MANPATH\",\"op\":\"append\",\"value\":\"share/man\"}]");
    plan_env_plan e;
    if (compose(f, 2, &e))
        fail_msg("%s", plan_ctx_error(ctx));
    char *want = plan_xasprintf("%s/share/a", f->pa);
    assert_string_equal(find(&e, "A_HOME", 0)->value, want);
    free(want);
    want = plan_xasprintf("%s/x:%s", f->pa, f->pa);
    assert_string_equal(find(&e, "A_BRACED", 0)->value, want);
    free(want);
    assert_string_equal(find(&e, "A_OTHER", 0)->value, "$outer and $out_x");
    assert_string_equal(find(&e, "B_HOME", 0)->value, f->pb);
    assert_null(find(&e, "BROKEN", 0));
    assert_null(find(&e, "NOVALUE", 0));
    want = plan_path_join(f->farm, "share/man");
    assert_string_equal(find(&e, "MANPATH", 0)->value, want);
    assert_int_equal(find(&e, "MANPATH", 0)->op, PLAN_ENV_APPEND);
    free(want);
    plan_env_plan_release(&e);
    fx_free(f);
}

static void damaged_manifest_is_an_error(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/a", "a\n");
    th_write_str(f->pb, ".plan/manifest.json", "{\"env\": [");
    plan_env_plan e;
    assert_int_equal(compose(f, 2, &e), PLAN_ERR_CORRUPT);
    assert_non_null(strstr(plan_ctx_error(ctx), "manifest.json"));
    assert_int_equal(e.n, 0);
    assert_null(e.items);
    plan_ctx_clear_error(ctx);
    plan_env_plan_release(&e); /* harmless after a failure */
    fx_free(f);
}

static void apply_keeps_the_plans_order(void **state)
{
    (void)state;
    fx *f = fx_new();
    manifest(f->pa, "[{\"name\":\"P\",\"op\":\"prepend\",\"value\":\"a\"},"
                    "{\"name\":\"Q\",\"op\":\"append\",\"value\":\"a\"},"
                    "{\"name\":\"E\",\"op\":\"prepend\",\"value\":\"a\"},"
                    "{\"name\":\"S\",\"op\":\"set\",\"value\":\"first\"}]");
    manifest(f->pb, "[{\"name\":\"P\",\"op\":\"prepend\",\"value\":\"b\"},"
                    "{\"name\":\"Q\",\"op\":\"append\",\"value\":\"b\"},"
                    "{\"name\":\"E\",\"op\":\"append\",\"value\":\"b\"},"
                    "{\"name\":\"S\",\"op\":\"set\",\"value\":\"last\"},"
                    "{\"name\":\"NEW\",\"op\":\"prepend\",\"value\":\"n\"}]");
    manifest(f->pc, "[{\"name\":\"P\",\"op\":\"prepend\",\"value\":\"c\"}]");
    plan_env_plan e;
    if (compose(f, 3, &e))
        fail_msg("%s", plan_ctx_error(ctx));
    plan_strlist env;
    plan_strlist_init(&env);
    plan_strlist_add(&env, "HOME=/home/u");
    plan_strlist_add(&env, "P=/old/p");
    plan_strlist_add(&env, "Q=/old/q");
    plan_strlist_add(&env, "E=");
    plan_strlist_add(&env, "S=orig");
    plan_strlist_add(&env, "PX=/untouched"); /* a name P is a prefix of */
    plan_env_apply(&e, &env);
    char *want = plan_xasprintf("%s/a:%s/b:%s/c:/old/p", f->farm, f->farm, f->farm);
    assert_string_equal(env_get(&env, "P"), want);
    free(want);
    want = plan_xasprintf("/old/q:%s/a:%s/b", f->farm, f->farm);
    assert_string_equal(env_get(&env, "Q"), want);
    free(want);
    /* an empty old value leaves no empty entry (which would mean ".") */
    want = plan_xasprintf("%s/a:%s/b", f->farm, f->farm);
    assert_string_equal(env_get(&env, "E"), want);
    free(want);
    assert_string_equal(env_get(&env, "S"), "last");
    want = plan_path_join(f->farm, "n");
    assert_string_equal(env_get(&env, "NEW"), want);
    free(want);
    assert_string_equal(env_get(&env, "PX"), "/untouched");
    assert_string_equal(env_get(&env, "HOME"), "/home/u");
    assert_int_equal(env.len, 7);
    /* each name once */
    for (size_t i = 0; i < env.len; i++)
        for (size_t k = i + 1; k < env.len; k++) {
            size_t n = strcspn(env.items[i], "=");
            assert_false(!strncmp(env.items[i], env.items[k], n + 1));
        }
    plan_strlist_release(&env);
    plan_env_plan_release(&e);
    fx_free(f);
}

static void path_gets_the_farm_bin_first(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/a", "a\n");
    th_write_str(f->pa, "sbin/a", "a\n");
    manifest(f->pa, "[{\"name\":\"PATH\",\"op\":\"prepend\",\"value\":\"sbin\"}]");
    plan_env_plan e;
    if (compose(f, 1, &e))
        fail_msg("%s", plan_ctx_error(ctx));
    plan_strlist env;
    plan_strlist_init(&env);
    plan_strlist_add(&env, "PATH=/usr/bin:/bin");
    plan_env_apply(&e, &env);
    char *want = plan_xasprintf("%s/bin:%s/sbin:/usr/bin:/bin", f->farm, f->farm);
    assert_string_equal(env_get(&env, "PATH"), want);
    free(want);
    plan_strlist_release(&env);
    /* no PATH at all */
    plan_strlist_init(&env);
    plan_env_apply(&e, &env);
    want = plan_xasprintf("%s/bin:%s/sbin", f->farm, f->farm);
    assert_string_equal(env_get(&env, "PATH"), want);
    free(want);
    plan_strlist_release(&env);
    plan_env_plan_release(&e);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bin_from_two_plans_is_one_entry),
        cmocka_unit_test(default_path_only_with_a_bin),
        cmocka_unit_test(set_expands_out_to_the_plans_own_path),
        cmocka_unit_test(damaged_manifest_is_an_error),
        cmocka_unit_test(apply_keeps_the_plans_order),
        cmocka_unit_test(path_gets_the_farm_bin_first),
    };
    return cmocka_run_group_tests_name("compose", tests, setup, teardown);
}
