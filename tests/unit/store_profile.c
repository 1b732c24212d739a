/* Unit tests for profiles: commits, the generation list, rollback,
 * deletion, failed commits, crash leftovers and names. */
#include "test_helpers.h"
#include "store/store.h"

#include <dirent.h>
#include <limits.h>

typedef struct fixture {
    plan_ctx *ctx;
    char *root;
    char *src;
    plan_store *store;
    char *tool1, *tool2, *other; /* basenames */
} fixture;

static char *add_tree(fixture *f, const char *name, const char *version, const char *rel,
                      const char *text)
{
    char *dir = plan_xasprintf("%s/%s-%s", f->src, name, version);
    th_write_str(dir, rel, text);
    plan_add_opts o = {.dir = dir, .name = name, .version = version};
    plan_add_result r;
    if (plan_store_add(f->store, &o, &r))
        fail_msg("add: %s", plan_ctx_error(f->ctx));
    char *base = plan_xstrdup(strrchr(r.path, '/') + 1);
    free(r.path);
    free(dir);
    return base;
}

static int setup(void **state)
{
    fixture *f = plan_xcalloc(1, sizeof(*f));
    f->ctx = plan_ctx_new();
    f->root = th_tmpdir();
    f->src = th_tmpdir();
    if (plan_store_open(f->ctx, f->root, &f->store))
        fail_msg("open: %s", plan_ctx_error(f->ctx));
    f->tool1 = add_tree(f, "tool", "1.0", "bin/tool", "tool 1\n");
    f->tool2 = add_tree(f, "tool", "2.0", "bin/tool", "tool 2\n");
    f->other = add_tree(f, "other", "1.0", "bin/other", "other\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    plan_store_close(f->store);
    plan_ctx_free(f->ctx);
    th_rmtree(f->root);
    th_rmtree(f->src);
    free(f->tool1);
    free(f->tool2);
    free(f->other);
    free(f);
    return 0;
}

static void spec_add(plan_generation *g, const char *name, const char *version,
                     const char *basename)
{
    plan_strlist_add(&g->pkg_names, name);
    plan_strlist_add(&g->pkg_versions, version);
    plan_strlist_add(&g->pkg_paths, basename);
}

static unsigned commit(fixture *f, plan_profile *p, plan_generation *g)
{
    unsigned n = 0;
    if (plan_profile_commit(p, g, NULL, NULL, NULL, NULL, &n))
        fail_msg("commit: %s", plan_ctx_error(f->ctx));
    return n;
}

/* The tool the profile's current tree offers, read through 'current'. */
static char *current_tool(plan_profile *p)
{
    char *file = plan_xasprintf("%s/current/bin/tool", plan_profile_dir(p));
    plan_buf b;
    plan_buf_init(&b);
    char *out = plan_fs_read_file(file, 4096, &b) == 0 ? plan_buf_detach(&b) : NULL;
    plan_buf_release(&b);
    free(file);
    return out;
}

static char *gen_listing(plan_profile *p)
{
    char *gen = plan_path_join(plan_profile_dir(p), "generations");
    plan_strlist l;
    plan_strlist_init(&l);
    DIR *d = opendir(gen);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            plan_strlist_add(&l, de->d_name);
    closedir(d);
    plan_strlist_sort(&l);
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < l.len; i++)
        plan_buf_printf(&b, "%s ", l.items[i]);
    plan_strlist_release(&l);
    free(gen);
    return plan_buf_detach(&b);
}

static void commits_switch_current(void **state)
{
    fixture *f = *state;
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    assert_string_equal(plan_profile_name(p), "default");
    assert_int_equal(plan_profile_current(p), 0);

    plan_generation g;
    plan_generation_init(&g);
    spec_add(&g, "tool", "1.0", f->tool1);
    plan_strlist_add(&g.req_names, "tool");
    plan_strlist_add(&g.req_ranges, "^1");
    g.created = 1000;
    assert_int_equal(commit(f, p, &g), 1);
    plan_generation_release(&g);
    assert_int_equal(plan_profile_current(p), 1);
    char *t = current_tool(p);
    assert_string_equal(t, "tool 1\n");
    free(t);

    plan_generation_init(&g);
    spec_add(&g, "tool", "2.0", f->tool2);
    spec_add(&g, "other", "1.0", f->other);
    plan_strlist_add(&g.prefer, "tool");
    plan_strlist_add(&g.recipes, "/some/recipes");
    g.strategy = plan_xstrdup("prefer-last");
    g.created = 2000;
    unsigned n = 0;
    plan_farm_stats st;
    if (plan_profile_commit(p, &g, NULL, "export A=1\n", "set -x A 1\n", &st, &n))
        fail_msg("commit: %s", plan_ctx_error(f->ctx));
    assert_int_equal(n, 2);
    assert_int_equal(st.dirs, 1); /* bin, merged */
    plan_generation_release(&g);
    assert_int_equal(plan_profile_current(p), 2);
    t = current_tool(p);
    assert_string_equal(t, "tool 2\n");
    free(t);
    char *sh = plan_xasprintf("%s/current/.plan/env.sh", plan_profile_dir(p));
    plan_buf b;
    plan_buf_init(&b);
    assert_int_equal(plan_fs_read_file(sh, 4096, &b), 0);
    assert_string_equal(b.data, "export A=1\n");
    plan_buf_release(&b);
    free(sh);
    /* 'current' is a relative link into generations/ */
    char *cur = plan_path_join(plan_profile_dir(p), "current");
    char target[PATH_MAX];
    ssize_t len = readlink(cur, target, sizeof(target) - 1);
    assert_true(len > 0);
    target[len] = '\0';
    assert_string_equal(target, "generations/2");
    free(cur);

    plan_generation *list;
    size_t count;
    assert_int_equal(plan_profile_generations(p, &list, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(list[0].number, 1);
    assert_int_equal(list[0].created, 1000);
    assert_false(list[0].current);
    assert_int_equal(list[0].pkg_paths.len, 1);
    assert_string_equal(list[0].pkg_paths.items[0], f->tool1);
    assert_int_equal(list[0].req_names.len, 1);
    assert_string_equal(list[0].req_names.items[0], "tool");
    assert_string_equal(list[0].req_ranges.items[0], "^1");
    assert_string_equal(list[0].strategy, "error");
    assert_int_equal(list[1].number, 2);
    assert_int_equal(list[1].created, 2000);
    assert_true(list[1].current);
    assert_int_equal(list[1].pkg_names.len, 2);
    assert_string_equal(list[1].pkg_names.items[0], "tool");
    assert_string_equal(list[1].pkg_versions.items[0], "2.0");
    assert_string_equal(list[1].pkg_paths.items[1], f->other);
    assert_string_equal(list[1].prefer.items[0], "tool");
    assert_string_equal(list[1].recipes.items[0], "/some/recipes");
    assert_string_equal(list[1].strategy, "prefer-last");
    plan_generations_free(list, count);

    plan_strlist names;
    plan_strlist_init(&names);
    assert_int_equal(plan_profile_names(f->store, &names), 0);
    assert_int_equal(names.len, 1);
    assert_string_equal(names.items[0], "default");
    plan_strlist_release(&names);
    plan_profile_close(p);
}

static void rollback_and_delete(void **state)
{
    fixture *f = *state;
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "work", true, &p), 0);
    const char *bases[] = {f->tool1, f->tool2};
    const char *versions[] = {"1.0", "2.0"};
    for (int i = 0; i < 2; i++) {
        plan_generation g;
        plan_generation_init(&g);
        spec_add(&g, "tool", versions[i], bases[i]);
        commit(f, p, &g);
        plan_generation_release(&g);
    }
    assert_int_equal(plan_profile_switch(p, 1), 0);
    assert_int_equal(plan_profile_current(p), 1);
    char *t = current_tool(p);
    assert_string_equal(t, "tool 1\n");
    free(t);
    assert_int_equal(plan_profile_switch(p, 7), PLAN_ERR_NOT_FOUND);
    assert_int_equal(plan_profile_current(p), 1);

    /* the current one is refused, another goes */
    assert_int_equal(plan_profile_delete_generation(p, 1), PLAN_ERR_INVALID);
    assert_int_equal(plan_profile_delete_generation(p, 9), PLAN_ERR_NOT_FOUND);
    assert_int_equal(plan_profile_delete_generation(p, 2), 0);
    plan_generation *list;
    size_t n;
    assert_int_equal(plan_profile_generations(p, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].number, 1);
    assert_true(list[0].current);
    plan_generations_free(list, n);
    char *ls = gen_listing(p);
    assert_string_equal(ls, "1 1.json ");
    free(ls);
    plan_ctx_clear_error(f->ctx);
    plan_profile_close(p);
}

static void failed_commit_changes_nothing(void **state)
{
    fixture *f = *state;
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    plan_generation g;
    plan_generation_init(&g);
    spec_add(&g, "tool", "1.0", f->tool1);
    commit(f, p, &g);
    plan_generation_release(&g);
    char *before = gen_listing(p);

    /* tool 1.0 and tool 2.0 both provide bin/tool */
    plan_generation_init(&g);
    spec_add(&g, "tool", "1.0", f->tool1);
    spec_add(&g, "tool2", "2.0", f->tool2);
    unsigned n = 99;
    assert_int_equal(plan_profile_commit(p, &g, NULL, "x", NULL, NULL, &n), PLAN_ERR_FAILED);
    assert_int_equal(n, 99);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "bin/tool"));
    plan_ctx_clear_error(f->ctx);
    plan_generation_release(&g);

    /* a path that is not in the store */
    plan_generation_init(&g);
    spec_add(&g, "ghost", "1.0", "00000000000000000000000000000000-ghost-1.0");
    assert_int_not_equal(plan_profile_commit(p, &g, NULL, NULL, NULL, NULL, &n), 0);
    plan_ctx_clear_error(f->ctx);
    plan_generation_release(&g);

    /* a --prefer that names no package */
    plan_generation_init(&g);
    spec_add(&g, "tool", "2.0", f->tool2);
    const char *prefer[] = {"nobody"};
    plan_farm_opts o = {.prefer = prefer, .n_prefer = 1};
    assert_int_equal(plan_profile_commit(p, &g, &o, NULL, NULL, NULL, &n), PLAN_ERR_INVALID);
    plan_ctx_clear_error(f->ctx);
    plan_generation_release(&g);

    assert_int_equal(plan_profile_current(p), 1);
    char *after = gen_listing(p);
    assert_string_equal(before, after);
    assert_string_equal(after, "1 1.json ");
    plan_generation *list;
    size_t count;
    assert_int_equal(plan_profile_generations(p, &list, &count), 0);
    assert_int_equal(count, 1);
    plan_generations_free(list, count);
    char *t = current_tool(p);
    assert_string_equal(t, "tool 1\n");
    free(t);
    free(before);
    free(after);
    plan_profile_close(p);
}

static void open_cleans_leftovers(void **state)
{
    fixture *f = *state;
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    plan_generation g;
    plan_generation_init(&g);
    spec_add(&g, "tool", "1.0", f->tool1);
    commit(f, p, &g);
    plan_generation_release(&g);
    char *gen = plan_path_join(plan_profile_dir(p), "generations");
    plan_profile_close(p);

    /* an interrupted commit: a half-built tree, a record without its tree */
    th_write_str(gen, ".2.tmp/bin/tool", "half\n");
    th_write_str(gen, "3.json", "{\"format\":\"plan-generation-v1\",\"packages\":[]}");
    assert_int_equal(plan_profile_open(f->store, "default", false, &p), 0);
    char *ls = gen_listing(p);
    assert_string_equal(ls, "1 1.json ");
    free(ls);
    assert_int_equal(plan_profile_current(p), 1);

    /* and the next commit is 2 */
    plan_generation_init(&g);
    spec_add(&g, "tool", "2.0", f->tool2);
    assert_int_equal(commit(f, p, &g), 2);
    plan_generation_release(&g);
    plan_profile_close(p);
    free(gen);
}

/* A generation tree without its record (a tampered or half-deleted
 * profile) is not a number to reuse: a commit must never remove a tree it
 * did not make, least of all the current one. */
static void commit_never_removes_a_tree_it_did_not_make(void **state)
{
    fixture *f = *state;
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    plan_generation g;
    plan_generation_init(&g);
    spec_add(&g, "tool", "1.0", f->tool1);
    commit(f, p, &g);
    plan_generation_release(&g);
    plan_generation_init(&g);
    spec_add(&g, "tool", "2.0", f->tool2);
    commit(f, p, &g);
    plan_generation_release(&g);
    char *rec = plan_xasprintf("%s/generations/2.json", plan_profile_dir(p));
    assert_int_equal(unlink(rec), 0);
    free(rec);

    plan_generation_init(&g);
    spec_add(&g, "other", "1.0", f->other);
    unsigned n = 0;
    int rc = plan_profile_commit(p, &g, NULL, NULL, NULL, NULL, &n);
    plan_ctx_clear_error(f->ctx);
    plan_generation_release(&g);
    (void)rc;
    char *tree = plan_xasprintf("%s/generations/2/bin/tool", plan_profile_dir(p));
    struct stat st;
    bool kept = stat(tree, &st) == 0;
    free(tree);
    plan_profile_close(p);
    if (!kept)
        fail_msg("the commit removed generation 2's tree (commit returned %d, number %u)", rc,
                 n);
}

static void names_are_checked(void **state)
{
    fixture *f = *state;
    const char *good[] = {"default", "dev-tools", "a_b.c", "X1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(plan_profile_check_name(good[i]), 0);
    char long_name[80];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    const char *bad[] = {"", ".hidden", "..", "-x", "a/b", "../x", "a b", "é", long_name};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (plan_profile_check_name(bad[i]) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        plan_profile *p = NULL;
        assert_int_equal(plan_profile_open(f->store, bad[i], true, &p), PLAN_ERR_INVALID);
        assert_null(p);
    }
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_int_equal(plan_profile_check_name(long_name), 0);

    plan_profile *p = NULL;
    assert_int_equal(plan_profile_open(f->store, "absent", false, &p), PLAN_ERR_NOT_FOUND);
    assert_null(p);
    char *dir = plan_path_join(f->root, "profiles/absent");
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);
    free(dir);
    plan_ctx_clear_error(f->ctx);
}

/* A damaged record is an error naming the file, not a silently shorter
 * list. */
static void damaged_record_is_reported(void **state)
{
    fixture *f = *state;
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    plan_generation g;
    plan_generation_init(&g);
    spec_add(&g, "tool", "1.0", f->tool1);
    commit(f, p, &g);
    plan_generation_release(&g);
    char *gen = plan_path_join(plan_profile_dir(p), "generations");
    th_write_str(gen, "1.json", "{not json");
    plan_generation *list;
    size_t n;
    assert_int_equal(plan_profile_generations(p, &list, &n), PLAN_ERR_CORRUPT);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "1.json"));
    plan_ctx_clear_error(f->ctx);
    free(gen);
    plan_profile_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(commits_switch_current),
        T(rollback_and_delete),
        T(failed_commit_changes_nothing),
        T(open_cleans_leftovers),
        T(commit_never_removes_a_tree_it_did_not_make),
        T(names_are_checked),
        T(damaged_record_is_reported),
    };
    return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
