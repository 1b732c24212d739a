/* Unit tests for durability (store/settle.c): what DEFERRED records as
 * unsettled, how it settles, and what the first open after a reboot does
 * with paths and generations that did not reach the disk whole.  A reboot
 * is played by opening the store with another boot id; a power cut's
 * damage by truncating a file behind the store's back. */
#include "test_helpers.h"
#include "store/store.h"

#include <sqlite3.h>

#define BOOT_A "0b2c5f3e-1111-4a4a-8b8b-000000000001"
#define BOOT_B "0b2c5f3e-2222-4a4a-8b8b-000000000002"

typedef struct fixture {
    plan_ctx *ctx;
    char *root, *src;
    plan_store *store;
    plan_strlist warnings;
} fixture;

static void keep_warnings(const plan_event *ev, void *user)
{
    fixture *f = user;
    if (ev->kind == PLAN_EV_WARN)
        plan_strlist_add(&f->warnings, ev->message);
}

static void open_store(fixture *f, plan_durability d, const char *boot)
{
    plan_store_options o = {.durability = d, .boot_id = boot};
    if (plan_store_open_with(f->ctx, f->root, &o, &f->store))
        fail_msg("open: %s", plan_ctx_error(f->ctx));
}

static void reopen(fixture *f, plan_durability d, const char *boot)
{
    plan_store_close(f->store);
    open_store(f, d, boot);
}

static int setup(void **state)
{
    fixture *f = plan_xcalloc(1, sizeof(*f));
    f->ctx = plan_ctx_new();
    plan_strlist_init(&f->warnings);
    plan_ctx_set_events(f->ctx, keep_warnings, f);
    f->root = th_tmpdir();
    f->src = th_tmpdir();
    open_store(f, PLAN_DURABILITY_DEFERRED, BOOT_A);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    plan_store_close(f->store);
    plan_ctx_free(f->ctx);
    plan_strlist_release(&f->warnings);
    th_rmtree(f->root);
    th_rmtree(f->src);
    free(f);
    return 0;
}

/* Add a one-file tree; the absolute store path (caller frees). */
static char *add(fixture *f, const char *name, const char *text)
{
    char *dir = plan_xasprintf("%s/%s", f->src, name);
    th_write_str(dir, "bin/tool", text);
    plan_add_opts o = {.dir = dir, .name = name, .version = "1.0"};
    plan_add_result r;
    if (plan_store_add(f->store, &o, &r))
        fail_msg("add: %s", plan_ctx_error(f->ctx));
    free(dir);
    return r.path;
}

static uint64_t unsettled_paths(fixture *f)
{
    uint64_t paths = 0, gens = 0;
    assert_int_equal(plan_store_unsettled(f->store, &paths, &gens), 0);
    return paths;
}

static uint64_t unsettled_generations(fixture *f)
{
    uint64_t paths = 0, gens = 0;
    assert_int_equal(plan_store_unsettled(f->store, &paths, &gens), 0);
    return gens;
}

/* What a power cut does to a file whose bytes were still in the page
 * cache: the name is there, the bytes are not. */
static void truncate_in(const char *path, const char *rel)
{
    char *file = plan_path_join(path, rel);
    char *dir = plan_xstrdup(file);
    *strrchr(dir, '/') = '\0';
    chmod(dir, 0755);
    chmod(file, 0644);
    assert_int_equal(truncate(file, 0), 0);
    free(file);
    free(dir);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Move the registration times of the unsettled rows back by seconds, as
 * if they had been registered that long ago. */
static void age_rows(fixture *f, int seconds)
{
    char *db = plan_path_join(f->root, "var/db/plan.db");
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *sql = plan_xasprintf("UPDATE unsettled_paths SET registered = registered - %d",
                               seconds);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    free(sql);
    free(db);
}

static void deferred_records_immediate_does_not(void **state)
{
    fixture *f = *state;
    char *a = add(f, "a", "a\n");
    assert_int_equal(unsettled_paths(f), 1);
    /* Adding it again writes nothing and records nothing more. */
    char *again = add(f, "a", "a\n");
    assert_string_equal(a, again);
    assert_int_equal(unsettled_paths(f), 1);
    reopen(f, PLAN_DURABILITY_IMMEDIATE, BOOT_A);
    age_rows(f, 2); /* rows of the flush's own second are kept */
    char *b = add(f, "b", "b\n");
    /* An immediate registration flushes, and so settles what came before. */
    assert_int_equal(unsettled_paths(f), 0);
    free(a);
    free(again);
    free(b);
}

static void settle_flushes_and_forgets(void **state)
{
    fixture *f = *state;
    char *a = add(f, "a", "a\n");
    char *b = add(f, "b", "b\n");
    assert_int_equal(unsettled_paths(f), 2);
    /* Rows of the current second are kept: the flush may have started
     * before they were written. */
    age_rows(f, 2);
    assert_int_equal(plan_store_settle(f->store), 0);
    assert_int_equal(unsettled_paths(f), 0);
    /* A reboot now finds nothing to check, even with damage. */
    truncate_in(a, "bin/tool");
    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    assert_int_equal(f->warnings.len, 0);
    assert_true(exists(a));
    free(a);
    free(b);
}

static void old_records_settle_at_the_next_registration(void **state)
{
    fixture *f = *state;
    char *a = add(f, "a", "a\n");
    age_rows(f, 30);
    char *b = add(f, "b", "b\n");
    /* Younger than the write-back window: nothing flushed yet. */
    assert_int_equal(unsettled_paths(f), 2);
    age_rows(f, 100);
    char *c = add(f, "c", "c\n");
    /* a and b were flushed first; c is new. */
    assert_int_equal(unsettled_paths(f), 1);
    free(a);
    free(b);
    free(c);
}

static void reboot_removes_damaged_paths_and_keeps_whole_ones(void **state)
{
    fixture *f = *state;
    char *good = add(f, "good", "good\n");
    char *bad = add(f, "bad", "bad\n");
    truncate_in(bad, "bin/tool");
    /* The same boot: nothing is checked (the page cache has it all). */
    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_A);
    assert_true(exists(bad));
    assert_int_equal(unsettled_paths(f), 2);

    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    assert_true(exists(good));
    assert_false(exists(bad));
    assert_int_equal(unsettled_paths(f), 0);
    assert_int_equal(f->warnings.len, 1);
    assert_non_null(strstr(f->warnings.items[0], strrchr(bad, '/') + 1));
    assert_non_null(strstr(f->warnings.items[0], "did not reach the disk whole"));
    /* Its row stays: the path is registered but missing, which verify
     * reports and repair, install and env mend. */
    plan_verify_report r = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &r), 0);
    assert_int_equal(r.len, 1);
    assert_int_equal(r.items[0].kind, PLAN_PROBLEM_MISSING);
    plan_verify_report_release(&r);
    /* Adding the same tree again brings it back, whole. */
    char *dir = plan_path_join(f->src, "bad");
    plan_add_opts o = {.dir = dir, .name = "bad", .version = "1.0"};
    plan_add_result res;
    assert_int_equal(plan_store_add(f->store, &o, &res), 0);
    assert_string_equal(res.path, bad);
    assert_true(exists(bad));
    free(res.path);
    free(dir);
    free(good);
    free(bad);
}

static void reboot_checks_a_path_that_vanished(void **state)
{
    fixture *f = *state;
    char *a = add(f, "a", "a\n");
    chmod(a, 0755);
    char *bin = plan_path_join(a, "bin");
    chmod(bin, 0755);
    free(bin);
    assert_int_equal(plan_fs_rmtree(a), 0);
    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    assert_int_equal(f->warnings.len, 1);
    assert_non_null(strstr(f->warnings.items[0], "missing"));
    assert_int_equal(unsettled_paths(f), 0);
    free(a);
}

/* A profile of one generation per tool given, all DEFERRED. */
/* A generation of the store paths given (named tool, tool1, ...). */
static unsigned commit_all(fixture *f, plan_profile *p, const char *const *paths, size_t np)
{
    plan_generation g;
    plan_generation_init(&g);
    for (size_t i = 0; i < np; i++) {
        char name[24];
        snprintf(name, sizeof(name), i ? "tool%zu" : "tool", i);
        plan_strlist_add(&g.pkg_names, name);
        plan_strlist_add(&g.pkg_versions, "1.0");
        plan_strlist_add(&g.pkg_paths, strrchr(paths[i], '/') + 1);
    }
    unsigned n = 0;
    if (plan_profile_commit(p, &g, NULL, "export A=1\n", "set -x A 1\n", NULL, &n))
        fail_msg("commit: %s", plan_ctx_error(f->ctx));
    plan_generation_release(&g);
    return n;
}

static unsigned commit(fixture *f, plan_profile *p, const char *path)
{
    return commit_all(f, p, &path, 1);
}

static unsigned current_of(fixture *f)
{
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", false, &p), 0);
    unsigned cur = plan_profile_current(p);
    plan_profile_close(p);
    return cur;
}

static void reboot_rolls_back_a_damaged_generation(void **state)
{
    fixture *f = *state;
    char *one = add(f, "one", "1\n"), *two = add(f, "two", "2\n");
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    assert_int_equal(commit(f, p, one), 1);
    assert_int_equal(commit(f, p, two), 2);
    assert_int_equal(unsettled_generations(f), 2);
    char *gen_dir = plan_xasprintf("%s/generations", plan_profile_dir(p));
    plan_profile_close(p);
    /* Generation 2's record lost its bytes. */
    char *record = plan_path_join(gen_dir, "2.json");
    assert_int_equal(truncate(record, 0), 0);

    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    assert_int_equal(current_of(f), 1);
    assert_false(exists(record));
    char *tree2 = plan_path_join(gen_dir, "2");
    assert_false(exists(tree2));
    assert_int_equal(unsettled_generations(f), 0);
    bool said = false;
    for (size_t i = 0; i < f->warnings.len; i++)
        said |= strstr(f->warnings.items[i], "generation 2 of profile 'default'") &&
                strstr(f->warnings.items[i], "back at generation 1");
    assert_true(said);
    /* The profile works on: the collector reads every record. */
    plan_gc_result res;
    assert_int_equal(plan_store_gc(f->store, NULL, &res), 0);
    plan_gc_result_release(&res);
    assert_true(exists(one));
    free(tree2);
    free(record);
    free(gen_dir);
    free(one);
    free(two);
}

static void reboot_drops_a_generation_whose_plan_was_damaged(void **state)
{
    fixture *f = *state;
    char *one = add(f, "one", "1\n");
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    assert_int_equal(commit(f, p, one), 1);
    plan_profile_close(p);
    truncate_in(one, "bin/tool");
    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    /* The plan went, so its only generation went, and 'current' with it. */
    assert_false(exists(one));
    assert_int_equal(current_of(f), 0);
    char *cur = plan_xasprintf("%s/profiles/default/current", f->root);
    assert_false(exists(cur));
    free(cur);
    free(one);
}

/* A plan's own symlink may point at nothing: the farm links to it, and
 * that is no damage. */
static void reboot_keeps_a_generation_whose_plan_has_a_dangling_link(void **state)
{
    fixture *f = *state;
    char *dir = plan_xasprintf("%s/dangling", f->src);
    th_write_str(dir, "bin/dltool", "t\n");
    th_symlink(dir, "bin/helper", "missing-tool");
    plan_add_opts o = {.dir = dir, .name = "dangling", .version = "1.0"};
    plan_add_result r;
    assert_int_equal(plan_store_add(f->store, &o, &r), 0);
    char *other = add(f, "other", "o\n"); /* so that bin is merged, not folded */
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    const char *both[] = {r.path, other};
    commit_all(f, p, both, 2);
    plan_profile_close(p);
    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    assert_int_equal(current_of(f), 1);
    assert_int_equal(f->warnings.len, 0);
    free(r.path);
    free(other);
    free(dir);
}

/* A generation being committed (its profile locked) keeps its record
 * through a flush: what it writes after the flush is not on disk. */
static void a_commit_in_progress_keeps_its_record(void **state)
{
    fixture *f = *state;
    char *one = add(f, "one", "1\n");
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    assert_int_equal(commit(f, p, one), 1);
    char *marker = plan_xasprintf("%s/var/unsettled/generation.1.default", f->root);
    struct timespec old[2] = {{1, 0}, {1, 0}};
    assert_int_equal(utimensat(AT_FDCWD, marker, old, 0), 0);
    /* The profile is still open (locked): its marker stays. */
    assert_int_equal(plan_store_settle(f->store), 0);
    assert_true(exists(marker));
    plan_profile_close(p);
    assert_int_equal(plan_store_settle(f->store), 0);
    assert_false(exists(marker));
    free(marker);
    free(one);
}

static void reboot_keeps_whole_generations(void **state)
{
    fixture *f = *state;
    char *one = add(f, "one", "1\n");
    plan_profile *p;
    assert_int_equal(plan_profile_open(f->store, "default", true, &p), 0);
    assert_int_equal(commit(f, p, one), 1);
    plan_profile_close(p);
    reopen(f, PLAN_DURABILITY_DEFERRED, BOOT_B);
    assert_int_equal(current_of(f), 1);
    assert_int_equal(f->warnings.len, 0);
    assert_int_equal(unsettled_generations(f), 0);
    assert_int_equal(unsettled_paths(f), 0);
    free(one);
}

static void gc_removes_unregistered_trees_and_settles(void **state)
{
    fixture *f = *state;
    char *a = add(f, "a", "a\n");
    /* A tree at a store path's name that no row knows, as a power cut
     * between rename and commit leaves it. */
    char *orphan = plan_xasprintf("%s/store/%s-orphan-1.0", f->root,
                                  "0123456789abcdfghjklmnpqrsvwxyz0");
    th_write_str(orphan, "bin/x", "x\n");
    /* And what looks the same but is a build in the making: its intent
     * file is there. */
    char *building = plan_xasprintf("%s/store/%s-busy-1.0", f->root,
                                    "1123456789abcdfghjklmnpqrsvwxyz0");
    th_write_str(building, "bin/x", "x\n");
    char *intent = plan_xasprintf("%s/var/pending/%s", f->root, strrchr(building, '/') + 1);
    int fd = open(intent, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    age_rows(f, 2);

    plan_gc_opts dry = {.dry_run = true};
    plan_gc_result res;
    assert_int_equal(plan_store_gc(f->store, &dry, &res), 0);
    assert_int_equal(res.unregistered.len, 1);
    assert_true(exists(orphan));
    plan_gc_result_release(&res);

    assert_int_equal(plan_store_gc(f->store, NULL, &res), 0);
    assert_int_equal(res.unregistered.len, 1);
    assert_string_equal(res.unregistered.items[0], strrchr(orphan, '/') + 1);
    plan_gc_result_release(&res);
    assert_false(exists(orphan));
    assert_true(exists(building));
    assert_int_equal(unsettled_paths(f), 0);
    unlink(intent);
    free(intent);
    free(building);
    free(orphan);
    free(a);
}

static void without_a_boot_id_nothing_is_deferred(void **state)
{
    fixture *f = *state;
    reopen(f, PLAN_DURABILITY_DEFERRED, "");
    char *a = add(f, "a", "a\n");
    assert_int_equal(unsettled_paths(f), 0);
    free(a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(deferred_records_immediate_does_not),
        T(settle_flushes_and_forgets),
        T(old_records_settle_at_the_next_registration),
        T(reboot_removes_damaged_paths_and_keeps_whole_ones),
        T(reboot_checks_a_path_that_vanished),
        T(reboot_rolls_back_a_damaged_generation),
        T(reboot_drops_a_generation_whose_plan_was_damaged),
        T(reboot_keeps_whole_generations),
        T(reboot_keeps_a_generation_whose_plan_has_a_dangling_link),
        T(a_commit_in_progress_keeps_its_record),
        T(gc_removes_unregistered_trees_and_settles),
        T(without_a_boot_id_nothing_is_deferred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
