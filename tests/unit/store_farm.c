/* Unit tests for the symlink farm: folding, merging, relative targets,
 * identical files, collisions and their settlement.  Plans are plain
 * directories in a temporary directory: the farm works on any tree. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>

typedef struct fx {
    char *tmp;
    char *pa, *pb, *pc;   /* the plans' trees */
    char *dest;           /* tmp/farm */
} fx;

static fx *fx_new(void)
{
    fx *f = plan_xcalloc(1, sizeof(*f));
    f->tmp = th_tmpdir();
    f->pa = plan_path_join(f->tmp, "a");
    f->pb = plan_path_join(f->tmp, "b");
    f->pc = plan_path_join(f->tmp, "c");
    f->dest = plan_path_join(f->tmp, "farm");
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
    free(f->dest);
    th_rmtree(f->tmp);
    free(f);
}

static char *link_target(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    char buf[PATH_MAX];
    ssize_t n = readlink(p, buf, sizeof(buf) - 1);
    free(p);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return plan_xstrdup(buf);
}

static bool is_real_dir(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    struct stat st;
    bool ok = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return ok;
}

static bool exists(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    struct stat st;
    bool ok = lstat(p, &st) == 0;
    free(p);
    return ok;
}

/* The file at rel in the farm is, once every link is followed, the very
 * file at rel in plan dir. */
static void assert_resolves_to(const char *dest, const char *rel, const char *plan_dir)
{
    char *in_farm = plan_path_join(dest, rel);
    char *in_plan = plan_path_join(plan_dir, rel);
    struct stat a, b;
    if (stat(in_farm, &a) != 0)
        fail_msg("'%s' does not resolve: %s", in_farm, strerror(errno));
    assert_int_equal(stat(in_plan, &b), 0);
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        fail_msg("'%s' does not resolve to '%s'", in_farm, in_plan);
    free(in_farm);
    free(in_plan);
}

static unsigned depth_of(const char *rel)
{
    unsigned d = 0;
    for (const char *c = rel; *c; c++)
        d += *c == '/';
    return d;
}

/* Every symlink below dir (except dest/.plan) has a relative target of the
 * form ("../" * depth) ".plan/<i>/<rel>", and resolves. */
static void check_links(const char *dest, const char *rel, unsigned *count)
{
    char *dir = *rel ? plan_path_join(dest, rel) : plan_xstrdup(dest);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (!*rel && !strcmp(de->d_name, ".plan"))
            continue;
        char *sub = *rel ? plan_xasprintf("%s/%s", rel, de->d_name) : plan_xstrdup(de->d_name);
        char *full = plan_path_join(dest, sub);
        struct stat st;
        assert_int_equal(lstat(full, &st), 0);
        if (S_ISLNK(st.st_mode)) {
            char *t = link_target(dest, sub);
            plan_buf want;
            plan_buf_init(&want);
            for (unsigned k = 0; k < depth_of(sub); k++)
                plan_buf_adds(&want, "../");
            plan_buf_adds(&want, ".plan/");
            if (strncmp(t, want.data, want.len) != 0)
                fail_msg("link '%s' -> '%s' does not start with '%s'", sub, t, want.data);
            const char *slash = strchr(t + want.len, '/');
            assert_non_null(slash);
            assert_string_equal(slash + 1, sub);
            struct stat rs;
            if (stat(full, &rs) != 0)
                fail_msg("link '%s' -> '%s' does not resolve", sub, t);
            (*count)++;
            plan_buf_release(&want);
            free(t);
        } else {
            assert_true(S_ISDIR(st.st_mode));
            check_links(dest, sub, count);
        }
        free(full);
        free(sub);
    }
    closedir(d);
    free(dir);
}

static int build(fx *f, size_t n, const plan_farm_opts *o, plan_farm_stats *st)
{
    plan_farm_plan plans[3] = {
        {"alpha", "1.0", f->pa},
        {"beta", "2.0", f->pb},
        {"gamma", "3.0", f->pc},
    };
    return plan_farm_build(ctx, plans, n, f->dest, o, st);
}

static void one_plan_folds_into_top_level_links(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/tool", "tool\n");
    th_write_str(f->pa, "share/doc/README", "doc\n");
    th_write_str(f->pa, "LICENSE", "mit\n");
    th_write_str(f->pa, ".plan/manifest.json", "{}");
    plan_farm_stats st;
    assert_int_equal(build(f, 1, NULL, &st), 0);
    char *t = link_target(f->dest, "bin");
    assert_non_null(t);
    assert_string_equal(t, ".plan/0/bin");
    free(t);
    t = link_target(f->dest, "share");
    assert_string_equal(t, ".plan/0/share");
    free(t);
    t = link_target(f->dest, "LICENSE");
    assert_string_equal(t, ".plan/0/LICENSE");
    free(t);
    /* dest/.plan/0 names the plan itself */
    t = link_target(f->dest, ".plan/0");
    assert_string_equal(t, f->pa);
    free(t);
    assert_int_equal(st.links, 3);
    assert_int_equal(st.dirs, 0);
    assert_resolves_to(f->dest, "bin/tool", f->pa);
    assert_resolves_to(f->dest, "share/doc/README", f->pa);
    fx_free(f);
}

static void shared_dirs_are_merged_with_relative_links(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/a", "a\n");
    th_write_str(f->pa, "share/man/man1/a.1", "a\n");
    th_write_str(f->pa, "lib/liba.so", "a\n");
    th_write_str(f->pb, "bin/b", "b\n");
    th_write_str(f->pb, "share/man/man1/b.1", "b\n");
    th_write_str(f->pb, "include/b.h", "b\n");
    plan_farm_stats st;
    assert_int_equal(build(f, 2, NULL, &st), 0);
    assert_true(is_real_dir(f->dest, "bin"));
    assert_true(is_real_dir(f->dest, "share"));
    assert_true(is_real_dir(f->dest, "share/man"));
    assert_true(is_real_dir(f->dest, "share/man/man1"));
    char *t = link_target(f->dest, "bin/a");
    assert_string_equal(t, "../.plan/0/bin/a");
    free(t);
    t = link_target(f->dest, "bin/b");
    assert_string_equal(t, "../.plan/1/bin/b");
    free(t);
    t = link_target(f->dest, "share/man/man1/b.1");
    assert_string_equal(t, "../../../.plan/1/share/man/man1/b.1");
    free(t);
    /* only one plan provides these: folded */
    t = link_target(f->dest, "lib");
    assert_string_equal(t, ".plan/0/lib");
    free(t);
    t = link_target(f->dest, "include");
    assert_string_equal(t, ".plan/1/include");
    free(t);
    assert_int_equal(st.dirs, 4);
    assert_int_equal(st.links, 6);
    assert_int_equal(st.identical, 0);
    assert_int_equal(st.chosen, 0);
    unsigned count = 0;
    check_links(f->dest, "", &count);
    assert_int_equal(count, 6);
    assert_resolves_to(f->dest, "bin/a", f->pa);
    assert_resolves_to(f->dest, "bin/b", f->pb);
    assert_resolves_to(f->dest, "share/man/man1/a.1", f->pa);
    assert_resolves_to(f->dest, "share/man/man1/b.1", f->pb);
    assert_resolves_to(f->dest, "lib/liba.so", f->pa);
    assert_resolves_to(f->dest, "include/b.h", f->pb);
    fx_free(f);
}

static void identical_files_do_not_collide(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "share/licenses/MIT", "the same text\n");
    th_write_str(f->pb, "share/licenses/MIT", "the same text\n");
    th_write_str(f->pa, "share/a", "a\n");
    th_write_str(f->pb, "share/b", "b\n");
    /* identical symlinks too */
    th_symlink(f->pa, "share/latest", "licenses/MIT");
    th_symlink(f->pb, "share/latest", "licenses/MIT");
    plan_farm_stats st;
    if (build(f, 2, NULL, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_int_equal(st.identical, 1 + 1);
    assert_int_equal(st.chosen, 0);
    /* licenses is in both: merged, MIT linked once */
    assert_true(is_real_dir(f->dest, "share/licenses"));
    char *t = link_target(f->dest, "share/licenses/MIT");
    assert_string_equal(t, "../../.plan/0/share/licenses/MIT");
    free(t);
    assert_resolves_to(f->dest, "share/latest", f->pa);
    fx_free(f);
}

static void same_bytes_but_different_mode_collide(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write(f->pa, "bin/tool", "#!/bin/sh\n", 10, 0755);
    th_write(f->pb, "bin/tool", "#!/bin/sh\n", 10, 0644);
    assert_int_equal(build(f, 2, NULL, NULL), PLAN_ERR_FAILED);
    assert_false(exists(f->tmp, "farm"));
    fx_free(f);
}

static void different_content_fails_and_removes_dest(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/tool", "one\n");
    th_write_str(f->pb, "bin/tool", "two\n");
    th_write_str(f->pa, "bin/a", "a\n");
    th_write_str(f->pb, "bin/b", "b\n");
    assert_int_equal(build(f, 2, NULL, NULL), PLAN_ERR_FAILED);
    const char *msg = plan_ctx_error(ctx);
    assert_non_null(strstr(msg, "bin/tool"));
    assert_non_null(strstr(msg, "alpha 1.0"));
    assert_non_null(strstr(msg, "beta 2.0"));
    assert_false(exists(f->tmp, "farm"));
    plan_ctx_clear_error(ctx);
    fx_free(f);
}

static void dest_must_not_exist(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "bin/a", "a\n");
    assert_int_equal(mkdir(f->dest, 0755), 0);
    th_write_str(f->dest, "keep", "mine\n");
    assert_int_not_equal(build(f, 1, NULL, NULL), 0);
    /* a dest that was there before is not the farm's to remove */
    assert_true(exists(f->dest, "keep"));
    plan_ctx_clear_error(ctx);
    fx_free(f);
}

static void collide_three(fx *f)
{
    th_write_str(f->pa, "bin/tool", "one\n");
    th_write_str(f->pb, "bin/tool", "two\n");
    th_write_str(f->pc, "bin/tool", "three\n");
    th_write_str(f->pa, "bin/a", "a\n");
}

static void strategies_settle_collisions(void **state)
{
    (void)state;
    const struct {
        plan_collide strategy;
        const char *winner;   /* the plan's directory letter */
        unsigned index;
    } cases[] = {
        {PLAN_COLLIDE_PREFER_FIRST, "a", 0},
        {PLAN_COLLIDE_PREFER_LAST, "c", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx *f = fx_new();
        collide_three(f);
        plan_farm_opts o = {.strategy = cases[i].strategy};
        plan_farm_stats st;
        if (build(f, 3, &o, &st))
            fail_msg("%s: %s", plan_collide_name(cases[i].strategy), plan_ctx_error(ctx));
        assert_int_equal(st.chosen, 1);
        char *want = plan_xasprintf("../.plan/%u/bin/tool", cases[i].index);
        char *t = link_target(f->dest, "bin/tool");
        assert_string_equal(t, want);
        char *dir = plan_path_join(f->tmp, cases[i].winner);
        assert_resolves_to(f->dest, "bin/tool", dir);
        free(dir);
        free(t);
        free(want);
        fx_free(f);
    }
}

static void prefer_list_and_per_path_choices(void **state)
{
    (void)state;
    /* --prefer gamma beta: gamma wins where it provides, else beta */
    fx *f = fx_new();
    collide_three(f);
    th_write_str(f->pa, "bin/other", "1\n");
    th_write_str(f->pb, "bin/other", "2\n");
    const char *prefer[] = {"gamma", "beta"};
    plan_farm_opts o = {.prefer = prefer, .n_prefer = 2};
    plan_farm_stats st;
    if (build(f, 3, &o, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_resolves_to(f->dest, "bin/tool", f->pc);
    assert_resolves_to(f->dest, "bin/other", f->pb);
    assert_int_equal(st.chosen, 2);
    fx_free(f);

    /* a per-path choice beats the prefer list and the strategy */
    f = fx_new();
    collide_three(f);
    const char *paths[] = {"bin/tool"};
    const char *names[] = {"beta"};
    plan_farm_opts o2 = {.strategy = PLAN_COLLIDE_PREFER_LAST, .prefer = prefer, .n_prefer = 1,
                         .choose_paths = paths, .choose_names = names, .n_choose = 1};
    if (build(f, 3, &o2, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_resolves_to(f->dest, "bin/tool", f->pb);
    fx_free(f);

    /* a prefer name that is no plan of the farm is refused */
    f = fx_new();
    collide_three(f);
    const char *bad[] = {"delta"};
    plan_farm_opts o3 = {.prefer = bad, .n_prefer = 1};
    assert_int_equal(build(f, 3, &o3, NULL), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "delta"));
    assert_false(exists(f->tmp, "farm"));
    plan_ctx_clear_error(ctx);
    fx_free(f);
}

static void directory_against_file(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "share/thing/inner", "dir\n");
    th_write_str(f->pb, "share/thing", "file\n");
    th_write_str(f->pa, "share/a", "a\n");
    th_write_str(f->pb, "share/b", "b\n");
    assert_int_equal(build(f, 2, NULL, NULL), PLAN_ERR_FAILED);
    assert_non_null(strstr(plan_ctx_error(ctx), "share/thing"));
    assert_non_null(strstr(plan_ctx_error(ctx), "directory"));
    assert_false(exists(f->tmp, "farm"));
    plan_ctx_clear_error(ctx);

    /* the directory wins */
    plan_farm_opts o = {.strategy = PLAN_COLLIDE_PREFER_FIRST};
    plan_farm_stats st;
    if (build(f, 2, &o, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_resolves_to(f->dest, "share/thing/inner", f->pa);
    assert_int_equal(st.chosen, 1);
    plan_fs_rmtree(f->dest);

    /* the file wins */
    plan_farm_opts o2 = {.strategy = PLAN_COLLIDE_PREFER_LAST};
    if (build(f, 2, &o2, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_resolves_to(f->dest, "share/thing", f->pb);
    struct stat sb;
    char *p = plan_path_join(f->dest, "share/thing");
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    free(p);
    fx_free(f);
}

static void plans_own_metadata_is_not_merged(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, ".plan/manifest.json", "{\"a\":1}");
    th_write_str(f->pb, ".plan/manifest.json", "{\"b\":2}"); /* would collide */
    th_write_str(f->pa, "bin/a", "a\n");
    th_write_str(f->pb, "bin/b", "b\n");
    /* below the top level, .plan is an ordinary name */
    th_write_str(f->pa, "share/.plan/x", "x\n");
    if (build(f, 2, NULL, NULL))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_false(exists(f->dest, ".plan/manifest.json"));
    char *t = link_target(f->dest, ".plan/0");
    assert_string_equal(t, f->pa);
    free(t);
    t = link_target(f->dest, ".plan/1");
    assert_string_equal(t, f->pb);
    free(t);
    assert_resolves_to(f->dest, "share/.plan/x", f->pa);
    fx_free(f);
}

static void symlinked_dir_merges_with_a_real_dir(void **state)
{
    (void)state;
    fx *f = fx_new();
    /* a: lib -> lib64 (a real dir); b: a real lib */
    th_write_str(f->pa, "lib64/liba.so", "a\n");
    th_symlink(f->pa, "lib", "lib64");
    th_write_str(f->pb, "lib/libb.so", "b\n");
    plan_farm_stats st;
    if (build(f, 2, NULL, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_true(is_real_dir(f->dest, "lib"));
    char *t = link_target(f->dest, "lib/liba.so");
    assert_string_equal(t, "../.plan/0/lib/liba.so");
    free(t);
    /* lib/liba.so resolves through a's lib -> lib64 */
    char *in_a = plan_path_join(f->pa, "lib64/liba.so");
    char *in_farm = plan_path_join(f->dest, "lib/liba.so");
    struct stat x, y;
    assert_int_equal(stat(in_a, &x), 0);
    assert_int_equal(stat(in_farm, &y), 0);
    assert_int_equal(x.st_ino, y.st_ino);
    free(in_a);
    free(in_farm);
    assert_resolves_to(f->dest, "lib/libb.so", f->pb);
    assert_resolves_to(f->dest, "lib64/liba.so", f->pa);
    unsigned count = 0;
    check_links(f->dest, "", &count);
    assert_int_equal(count, 3);
    fx_free(f);
}

/* Two plans with the same symlink to a directory above it (a loop, as
 * some packages ship: share/foo/self -> .) are identical, not two
 * directories to merge without end. */
static void identical_links_to_directories_are_not_descended(void **state)
{
    (void)state;
    fx *f = fx_new();
    th_write_str(f->pa, "share/x/a", "a\n");
    th_write_str(f->pb, "share/x/b", "b\n");
    th_symlink(f->pa, "share/x/self", ".");
    th_symlink(f->pb, "share/x/self", ".");
    plan_farm_stats st;
    int rc = build(f, 2, NULL, &st);
    char *p = plan_path_join(f->dest, "share/x/self/a");
    struct stat sb;
    bool resolves = rc == 0 && stat(p, &sb) == 0;
    free(p);
    fx_free(f);
    if (rc)
        fail_msg("%s", plan_ctx_error(ctx));
    assert_true(resolves);
    assert_int_equal(st.identical, 1);
}

/* Empty directories several plans provide merge into an empty directory;
 * plans with nothing but metadata make an empty farm. */
static void empty_directories_merge(void **state)
{
    (void)state;
    fx *f = fx_new();
    char *e1 = plan_path_join(f->pa, "share/empty");
    char *e2 = plan_path_join(f->pb, "share/empty");
    assert_int_equal(plan_fs_mkdirs(e1, 0755), 0);
    assert_int_equal(plan_fs_mkdirs(e2, 0755), 0);
    free(e1);
    free(e2);
    plan_farm_stats st;
    if (build(f, 2, NULL, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_true(is_real_dir(f->dest, "share/empty"));
    plan_fs_rmtree(f->dest);
    fx_free(f);

    f = fx_new();
    th_write_str(f->pa, ".plan/manifest.json", "{}");
    if (build(f, 3, NULL, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    assert_int_equal(st.links, 0);
    assert_true(exists(f->dest, ".plan/2"));
    fx_free(f);
}

/* Every entry of a wide merge is linked, and every link resolves into the
 * plan that provides it. */
static void every_link_resolves_into_its_plan(void **state)
{
    (void)state;
    fx *f = fx_new();
    char *dirs[3] = {f->pa, f->pb, f->pc};
    for (unsigned p = 0; p < 3; p++)
        for (unsigned i = 0; i < 40; i++) {
            char rel[64], text[32];
            snprintf(rel, sizeof(rel), "share/d%u/f%u-%u", i % 5, p, i);
            snprintf(text, sizeof(text), "%u %u\n", p, i);
            th_write_str(dirs[p], rel, text);
        }
    plan_farm_stats st;
    if (build(f, 3, NULL, &st))
        fail_msg("%s", plan_ctx_error(ctx));
    unsigned count = 0;
    check_links(f->dest, "", &count);
    assert_int_equal(count, 120);
    assert_int_equal(st.links, 120);
    for (unsigned p = 0; p < 3; p++)
        for (unsigned i = 0; i < 40; i++) {
            char rel[64];
            snprintf(rel, sizeof(rel), "share/d%u/f%u-%u", i % 5, p, i);
            assert_resolves_to(f->dest, rel, dirs[p]);
        }
    fx_free(f);
}

static void collide_names_parse(void **state)
{
    (void)state;
    plan_collide c;
    const plan_collide all[] = {PLAN_COLLIDE_ERROR, PLAN_COLLIDE_PREFER_FIRST,
                                PLAN_COLLIDE_PREFER_LAST};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(plan_collide_parse(plan_collide_name(all[i]), &c), 0);
        assert_int_equal(c, all[i]);
    }
    assert_int_equal(plan_collide_parse("prefer", &c), -1);
    assert_int_equal(plan_collide_parse("", &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_plan_folds_into_top_level_links),
        cmocka_unit_test(shared_dirs_are_merged_with_relative_links),
        cmocka_unit_test(identical_files_do_not_collide),
        cmocka_unit_test(same_bytes_but_different_mode_collide),
        cmocka_unit_test(different_content_fails_and_removes_dest),
        cmocka_unit_test(dest_must_not_exist),
        cmocka_unit_test(strategies_settle_collisions),
        cmocka_unit_test(prefer_list_and_per_path_choices),
        cmocka_unit_test(directory_against_file),
        cmocka_unit_test(plans_own_metadata_is_not_merged),
        cmocka_unit_test(symlinked_dir_merges_with_a_real_dir),
        cmocka_unit_test(identical_links_to_directories_are_not_descended),
        cmocka_unit_test(empty_directories_merge),
        cmocka_unit_test(every_link_resolves_into_its_plan),
        cmocka_unit_test(collide_names_parse),
    };
    return cmocka_run_group_tests_name("farm", tests, setup, teardown);
}
