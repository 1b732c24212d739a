/* Unit tests for merging plans in the store: the union shares the plans'
 * inodes, follows the farm's conflict rules, settles conflicts by
 * preference and strategy, hands files that differ to a structured merge,
 * finds its references, and is content addressed. */
#include "test_helpers.h"
#include "store/store.h"

typedef struct fixture {
    plan_ctx *ctx;
    char *root, *src;
    plan_store *store;
    char *a, *b;           /* two registered plans */
    plan_farm_plan plans[3];
} fixture;

static char *add_tree(fixture *f, const char *dir, const char *name, bool scan)
{
    plan_add_opts o = {.dir = dir, .name = name, .version = "1.0.0", .scan_all_refs = scan};
    plan_add_result r;
    if (plan_store_add(f->store, &o, &r))
        fail_msg("add: %s", plan_ctx_error(f->ctx));
    return r.path;
}

static char *tree_of(fixture *f, const char *name)
{
    char *dir = plan_path_join(f->src, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    return dir;
}

static void make_exec(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    assert_int_equal(chmod(p, 0755), 0);
    free(p);
}

static int setup(void **state)
{
    fixture *f = plan_xcalloc(1, sizeof(*f));
    f->ctx = plan_ctx_new();
    f->root = th_tmpdir();
    f->src = th_tmpdir();
    if (plan_store_open(f->ctx, f->root, &f->store))
        fail_msg("open: %s", plan_ctx_error(f->ctx));
    char *ta = tree_of(f, "a"), *tb = tree_of(f, "b");
    th_write_str(ta, "bin/a", "#!/bin/sh\necho a\n");
    make_exec(ta, "bin/a");
    th_write_str(ta, "share/LICENSE", "same text\n");
    th_write_str(ta, "share/a/only", "a's own\n");
    th_write_str(ta, "etc/conf", "port 1\n");
    th_symlink(ta, "share/latest", "a/only");
    th_write_str(ta, ".plan/manifest.json", "{}");
    th_write_str(tb, "bin/b", "#!/bin/sh\necho b\n");
    make_exec(tb, "bin/b");
    th_write_str(tb, "share/LICENSE", "same text\n");
    th_write_str(tb, "etc/conf", "port 2\n");
    th_symlink(tb, "share/latest", "a/only");
    th_write_str(tb, ".plan/manifest.json", "{\"b\": true}");
    f->a = add_tree(f, ta, "a", false);
    f->b = add_tree(f, tb, "b", false);
    free(ta);
    free(tb);
    f->plans[0] = (plan_farm_plan){"a", "1.0.0", f->a};
    f->plans[1] = (plan_farm_plan){"b", "1.0.0", f->b};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->a);
    free(f->b);
    free((char *)f->plans[2].path);
    plan_store_close(f->store);
    plan_ctx_free(f->ctx);
    th_rmtree(f->root);
    th_rmtree(f->src);
    free(f);
    return 0;
}

static plan_merge *begin(fixture *f, size_t n, const plan_merge_opts *o, plan_strlist *conflicts)
{
    plan_merge *m = NULL;
    if (plan_store_merge_begin(f->store, f->plans, n, o, conflicts, &m))
        fail_msg("merge: %s", plan_ctx_error(f->ctx));
    return m;
}

static char *finish(fixture *f, plan_merge *m, bool *existed)
{
    plan_output_result r;
    if (plan_store_merge_finish(f->store, m, "ab", "1.0.0", &r))
        fail_msg("finish: %s", plan_ctx_error(f->ctx));
    if (existed)
        *existed = r.existed;
    return r.path;
}

static char *read_text(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    plan_buf b;
    plan_buf_init(&b);
    int rc = plan_fs_read_file(p, 1 << 20, &b);
    free(p);
    if (rc) {
        plan_buf_release(&b);
        return NULL;
    }
    return plan_buf_detach(&b);
}

static ino_t inode(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    struct stat st;
    ino_t ino = lstat(p, &st) == 0 ? st.st_ino : 0;
    free(p);
    return ino;
}

static bool exists(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    struct stat st;
    bool there = lstat(p, &st) == 0;
    free(p);
    return there;
}

static void test_conflicts_listed_path_by_path(void **state)
{
    fixture *f = *state;
    plan_strlist c;
    plan_strlist_init(&c);
    plan_merge *m = begin(f, 2, NULL, &c);
    /* LICENSE (same bytes) and share/latest (same target) are not
     * conflicts; etc/conf is, and says who provides it. */
    assert_int_equal(c.len, 1);
    assert_string_equal(c.items[0],
                        "'etc/conf' is provided by a 1.0.0 and b 1.0.0 with different content");
    plan_store_merge_abort(m);
    plan_strlist_release(&c);
}

static void test_union_shares_inodes(void **state)
{
    fixture *f = *state;
    plan_strlist c;
    plan_strlist_init(&c);
    plan_merge_opts o = {.strategy = PLAN_COLLIDE_PREFER_LAST};
    plan_merge *m = begin(f, 2, &o, &c);
    assert_int_equal(c.len, 0);
    const plan_merge_stats *st = plan_merge_get_stats(m);
    assert_int_equal(st->identical, 2);
    assert_int_equal(st->chosen, 1);
    assert_int_equal(plan_merge_add_file(m, ".plan/manifest.json", "{\"m\": 1}", 8), 0);
    char *p = finish(f, m, NULL);
    assert_int_equal(inode(p, "bin/a"), inode(f->a, "bin/a"));
    assert_int_equal(inode(p, "bin/b"), inode(f->b, "bin/b"));
    assert_int_equal(inode(p, "share/a/only"), inode(f->a, "share/a/only"));
    assert_int_equal(inode(p, "etc/conf"), inode(f->b, "etc/conf")); /* prefer-last */
    char *mf = read_text(p, ".plan/manifest.json");
    assert_string_equal(mf, "{\"m\": 1}"); /* the plans' own manifests are left out */
    free(mf);
    /* Neither plan names the other: no references. */
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, p, &info), 0);
    assert_int_equal(info->references.len, 0);
    plan_path_info_free(info);
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, (const char *const *)&p, 1, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
    free(p);
    plan_strlist_release(&c);
}

static void test_same_inputs_same_path(void **state)
{
    fixture *f = *state;
    plan_merge_opts o = {.strategy = PLAN_COLLIDE_PREFER_FIRST};
    plan_strlist c;
    plan_strlist_init(&c);
    bool existed = true;
    char *p1 = finish(f, begin(f, 2, &o, &c), &existed);
    assert_false(existed);
    char *p2 = finish(f, begin(f, 2, &o, &c), &existed);
    assert_true(existed);
    assert_string_equal(p1, p2);
    char *conf = read_text(p1, "etc/conf");
    assert_string_equal(conf, "port 1\n"); /* prefer-first */
    free(conf);
    free(p1);
    free(p2);
    plan_strlist_release(&c);
}

static void test_prefer_and_directory_winner(void **state)
{
    fixture *f = *state;
    /* c has share/a as a file: with b preferred nothing changes for it,
     * and a, whose share/a is a directory, still wins over c. */
    char *tc = tree_of(f, "c");
    th_write_str(tc, "share/a", "c's file\n");
    f->plans[2] = (plan_farm_plan){"c", "1.0.0", add_tree(f, tc, "c", false)};
    free(tc);
    plan_strlist c;
    plan_strlist_init(&c);
    const char *prefer[] = {"b"};
    plan_merge_opts o = {.prefer = prefer, .n_prefer = 1};
    plan_merge *m = begin(f, 3, &o, &c);
    assert_int_equal(c.len, 1); /* share/a: a directory in a, a file in c */
    assert_string_equal(c.items[0], "'share/a' is provided by a 1.0.0 and c 1.0.0 (a directory "
                                    "in some, not in others)");
    plan_store_merge_abort(m);
    plan_strlist_release(&c);
    plan_strlist_init(&c);
    const char *prefer_a[] = {"a"};
    o.prefer = prefer_a;
    m = begin(f, 3, &o, &c);
    assert_int_equal(c.len, 0);
    char *p = finish(f, m, NULL);
    assert_int_equal(inode(p, "share/a/only"), inode(f->a, "share/a/only"));
    plan_strlist_release(&c);
    plan_strlist_init(&c);
    /* c's file wins: a's directory goes, with everything in it. */
    const char *prefer_c[] = {"c", "a"};
    o.prefer = prefer_c;
    o.n_prefer = 2;
    m = begin(f, 3, &o, &c);
    assert_int_equal(c.len, 0);
    char *q = finish(f, m, NULL);
    char *text = read_text(q, "share/a");
    assert_string_equal(text, "c's file\n");
    assert_false(exists(q, "share/a/only"));
    free(text);
    free(p);
    free(q);
    plan_strlist_release(&c);
}

static void test_unknown_preference(void **state)
{
    fixture *f = *state;
    plan_strlist c;
    plan_strlist_init(&c);
    const char *prefer[] = {"nope"};
    plan_merge_opts o = {.prefer = prefer, .n_prefer = 1};
    plan_merge *m = NULL;
    assert_int_equal(plan_store_merge_begin(f->store, f->plans, 2, &o, &c, &m),
                     PLAN_ERR_INVALID);
    assert_null(m);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "'nope'"));
    plan_strlist_release(&c);
}

static void test_references_found_in_union(void **state)
{
    fixture *f = *state;
    /* c names a's store path in a file, but was added without a scan:
     * only the merge's own scan can find that a is needed. */
    char *tc = tree_of(f, "c");
    char *text = plan_xasprintf("exec %s/bin/a\n", f->a);
    th_write_str(tc, "bin/c", text);
    free(text);
    f->plans[2] = (plan_farm_plan){"c", "1.0.0", add_tree(f, tc, "c", false)};
    free(tc);
    plan_farm_plan two[2] = {f->plans[1], f->plans[2]};
    plan_strlist c;
    plan_strlist_init(&c);
    plan_merge *m = NULL;
    assert_int_equal(plan_store_merge_begin(f->store, two, 2, NULL, &c, &m), 0);
    assert_int_equal(plan_merge_references(m)->len, 0); /* a is not one of them */
    plan_store_merge_abort(m);
    plan_farm_plan ac[2] = {f->plans[0], f->plans[2]};
    assert_int_equal(plan_store_merge_begin(f->store, ac, 2, NULL, &c, &m), 0);
    const plan_strlist *refs = plan_merge_references(m);
    assert_int_equal(refs->len, 1);
    assert_string_equal(refs->items[0], strrchr(f->a, '/') + 1);
    plan_store_merge_abort(m);
    plan_strlist_release(&c);
}

static int concat_hook(void *arg, const char *rel, const char *const *files, const size_t *plans,
                       size_t n, plan_buf *out, plan_strlist *conflicts)
{
    int *mode = arg;
    (void)plans;
    if (*mode == 0)
        return 1; /* decline */
    if (*mode == 2) {
        plan_strlist_take(conflicts, plan_xasprintf("'%s': key 'x' differs", rel));
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        plan_buf b;
        plan_buf_init(&b);
        assert_int_equal(plan_fs_read_file(files[i], 1024, &b), 0);
        plan_buf_add(out, b.data, b.len);
        plan_buf_release(&b);
    }
    return 0;
}

static void test_structured_merge_hook(void **state)
{
    fixture *f = *state;
    int mode = 0;
    plan_merge_opts o = {.merge_file = concat_hook, .merge_arg = &mode};
    plan_strlist c;
    plan_strlist_init(&c);
    plan_store_merge_abort(begin(f, 2, &o, &c));
    assert_int_equal(c.len, 1); /* declined: an ordinary conflict */
    plan_strlist_release(&c);
    plan_strlist_init(&c);
    mode = 2;
    plan_store_merge_abort(begin(f, 2, &o, &c));
    assert_int_equal(c.len, 1);
    assert_string_equal(c.items[0], "'etc/conf': key 'x' differs");
    plan_strlist_release(&c);
    plan_strlist_init(&c);
    mode = 1;
    plan_merge *m = begin(f, 2, &o, &c);
    assert_int_equal(c.len, 0);
    assert_int_equal(plan_merge_get_stats(m)->merged, 1);
    char *p = finish(f, m, NULL);
    char *conf = read_text(p, "etc/conf");
    assert_string_equal(conf, "port 1\nport 2\n");
    char *file = plan_path_join(p, "etc/conf");
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    free(file);
    free(conf);
    free(p);
    plan_strlist_release(&c);
}

static void test_bad_names_and_inner_paths(void **state)
{
    fixture *f = *state;
    plan_strlist c;
    plan_strlist_init(&c);
    plan_merge_opts o = {.strategy = PLAN_COLLIDE_PREFER_FIRST};
    plan_output_result r;
    assert_int_equal(plan_store_merge_finish(f->store, begin(f, 2, &o, &c), "-x", "1.0.0", &r),
                     PLAN_ERR_INVALID);
    assert_int_equal(plan_store_merge_finish(f->store, begin(f, 2, &o, &c), "ab", "v1", &r),
                     PLAN_ERR_INVALID);
    char *inner = plan_path_join(f->a, "bin");
    plan_farm_plan bad[2] = {f->plans[0], {"a", "1.0.0", inner}};
    plan_merge *m = NULL;
    assert_int_equal(plan_store_merge_begin(f->store, bad, 2, &o, &c, &m), PLAN_ERR_INVALID);
    assert_null(m);
    m = begin(f, 2, &o, &c);
    assert_int_equal(plan_merge_add_file(m, "../escape", "x", 1), PLAN_ERR_INVALID);
    plan_store_merge_abort(m);
    free(inner);
    plan_strlist_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conflicts_listed_path_by_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_union_shares_inodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_inputs_same_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefer_and_directory_winner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_preference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_references_found_in_union, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structured_merge_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names_and_inner_paths, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_merge", tests, NULL, NULL);
}
