/* Unit tests for the garbage collector and its roots: unrooted paths go,
 * references keep what they refer to, sessions of other handles hold,
 * named, link and profile roots, dry runs, max_freed, an interrupted
 * deletion and stale sessions with their run roots. */
#include "test_helpers.h"
#include "store/store.h"
#include "store_fixture.h"

#include <limits.h>
#include <sys/file.h>
#include <sys/wait.h>

static plan_store *open_other(fixture *f)
{
    plan_store *s;
    if (plan_store_open(f->ctx, f->root, &s))
        fail_msg("open: %s", plan_ctx_error(f->ctx));
    return s;
}

/* Add a one-file tree through store s (which then holds it); text may
 * name other paths, listed in refs as candidate references.  Returns the
 * basename. */
static char *add_in(fixture *f, plan_store *s, const char *name, const char *text,
                    const char *const *refs, size_t n_refs)
{
    char *dir = plan_path_join(f->src, name);
    th_write_str(dir, "share/data", text);
    plan_add_opts o = {.dir = dir, .name = name, .version = "1.0", .ref_candidates = refs,
                       .n_ref_candidates = n_refs};
    plan_add_result r;
    if (plan_store_add(s, &o, &r))
        fail_msg("add: %s", plan_ctx_error(f->ctx));
    char *base = plan_xstrdup(strrchr(r.path, '/') + 1);
    free(r.path);
    free(dir);
    return base;
}

/* Add through a short-lived handle, so that nothing holds the path. */
static char *add_loose(fixture *f, const char *name, const char *text, const char *const *refs,
                       size_t n_refs)
{
    plan_store *s = open_other(f);
    char *base = add_in(f, s, name, text, refs, n_refs);
    plan_store_close(s);
    return base;
}

static bool on_disk(fixture *f, const char *basename)
{
    char *p = plan_xasprintf("%s/store/%s", f->root, basename);
    struct stat st;
    bool there = lstat(p, &st) == 0;
    free(p);
    return there;
}

static bool registered(fixture *f, const char *basename)
{
    plan_path_info *info = NULL;
    int rc = plan_store_path_info(f->store, basename, &info);
    plan_path_info_free(info);
    plan_ctx_clear_error(f->ctx);
    return rc == 0;
}

static bool alive(fixture *f, const char *basename)
{
    bool r = registered(f, basename), d = on_disk(f, basename);
    if (r != d)
        fail_msg("'%s' is %sregistered but %son disk", basename, r ? "" : "not ",
                 d ? "" : "not ");
    return r;
}

static void gc(fixture *f, const plan_gc_opts *o, plan_gc_result *r)
{
    if (plan_store_gc(f->store, o, r))
        fail_msg("gc: %s", plan_ctx_error(f->ctx));
}

static ssize_t index_in(const plan_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->len; i++)
        if (!strcmp(l->items[i], s))
            return (ssize_t)i;
    return -1;
}

/* No registered path refers to one that is gone, and no registered path is
 * missing from disk. */
static void assert_closed(fixture *f)
{
    plan_strlist all;
    plan_strlist_init(&all);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    for (size_t i = 0; i < all.len; i++) {
        plan_path_info *info;
        assert_int_equal(plan_store_path_info(f->store, all.items[i], &info), 0);
        for (size_t k = 0; k < info->references.len; k++)
            if (!alive(f, info->references.items[k]))
                fail_msg("'%s' refers to '%s', which is gone", all.items[i],
                         info->references.items[k]);
        plan_path_info_free(info);
    }
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, false, &rep), 0);
    for (size_t i = 0; i < rep.len; i++)
        fail_msg("verify: %s %s", plan_problem_kind_name(rep.items[i].kind),
                 rep.items[i].basename);
    plan_verify_report_release(&rep);
    plan_strlist_release(&all);
}

static void empty_store(void **state)
{
    fixture *f = *state;
    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 0);
    assert_int_equal(r.freed, 0);
    assert_int_equal(r.live, 0);
    plan_gc_result_release(&r);
    plan_gc_root *roots;
    size_t n;
    assert_int_equal(plan_store_gc_roots(f->store, &roots, &n), 0);
    assert_int_equal(n, 0);
    plan_gc_roots_free(roots, n);
}

static void unrooted_paths_are_deleted(void **state)
{
    fixture *f = *state;
    char *a = add_loose(f, "aaa", "a\n", NULL, 0);
    char *b = add_loose(f, "bbb", "b\n", NULL, 0);
    assert_true(alive(f, a));
    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 2);
    assert_true(index_in(&r.deleted, a) >= 0);
    assert_true(index_in(&r.deleted, b) >= 0);
    assert_int_equal(r.freed, 4);
    assert_int_equal(r.live, 0);
    plan_gc_result_release(&r);
    assert_false(alive(f, a));
    assert_false(alive(f, b));
    char *intent = plan_path_join(f->root, "var/gc/deleting");
    struct stat st;
    assert_int_not_equal(lstat(intent, &st), 0);
    free(intent);
    /* again: nothing to do */
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 0);
    plan_gc_result_release(&r);
    assert_closed(f);
    free(a);
    free(b);
}

static void references_keep_their_targets(void **state)
{
    fixture *f = *state;
    char *lib = add_loose(f, "lib", "library\n", NULL, 0);
    char *text = plan_xasprintf("uses %s/%s/share/data\n", plan_store_dir(f->store), lib);
    const char *cands[] = {lib};
    char *app = add_loose(f, "app", text, cands, 1);
    char *junk = add_loose(f, "junk", "junk\n", NULL, 0);
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, app, &info), 0);
    assert_int_equal(info->references.len, 1);
    plan_path_info_free(info);

    assert_int_equal(plan_store_add_root(f->store, "myapp", app), 0);
    /* the handle that added the root holds app itself: use another one */
    plan_store_close(f->store);
    f->store = open_other(f);

    plan_gc_root *roots;
    size_t n;
    assert_int_equal(plan_store_gc_roots(f->store, &roots, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(roots[0].kind, "root");
    assert_string_equal(roots[0].source, "myapp");
    assert_string_equal(roots[0].basename, app);
    plan_gc_roots_free(roots, n);

    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 1);
    assert_string_equal(r.deleted.items[0], junk);
    assert_int_equal(r.live, 2);
    plan_gc_result_release(&r);
    assert_true(alive(f, app));
    assert_true(alive(f, lib));

    assert_int_equal(plan_store_remove_root(f->store, "myapp"), 0);
    assert_int_equal(plan_store_remove_root(f->store, "myapp"), PLAN_ERR_NOT_FOUND);
    assert_int_equal(plan_store_add_root(f->store, "../x", lib), PLAN_ERR_INVALID);
    assert_int_equal(plan_store_add_root(f->store, ".hidden", lib), PLAN_ERR_INVALID);
    plan_ctx_clear_error(f->ctx);
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 2);
    /* the referrer goes first */
    assert_int_equal(index_in(&r.deleted, app), 0);
    assert_int_equal(index_in(&r.deleted, lib), 1);
    plan_gc_result_release(&r);
    assert_false(alive(f, app));
    assert_false(alive(f, lib));
    assert_closed(f);
    free(text);
    free(lib);
    free(app);
    free(junk);
}

static void another_handles_session_holds_until_closed(void **state)
{
    fixture *f = *state;
    char *a = add_loose(f, "held", "held\n", NULL, 0);
    char *text = plan_xasprintf("%s\n", a);
    const char *cands[] = {a};
    char *top = add_loose(f, "top", text, cands, 1);
    char *b = add_loose(f, "free", "free\n", NULL, 0);

    plan_store *other = open_other(f);
    assert_int_equal(plan_store_session_fd(other), -1);
    assert_int_equal(plan_store_hold(other, top), 0);
    assert_true(plan_store_session_fd(other) >= 0);
    assert_int_equal(plan_store_hold(other, "00000000000000000000000000000000-x-1.0"),
                     PLAN_ERR_NOT_FOUND);
    plan_ctx_clear_error(f->ctx);
    assert_int_equal(plan_store_session_note(other, "command", "plan env\n-- make"), 0);

    plan_session *list;
    size_t n;
    assert_int_equal(plan_store_sessions(f->store, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_true(list[0].live);
    assert_int_equal(list[0].pid, (long)getpid());
    assert_int_equal(list[0].roots.len, 1);
    assert_string_equal(list[0].roots.items[0], top);
    assert_string_equal(list[0].command, "plan env\n-- make");
    plan_sessions_free(list, n);

    plan_gc_root *roots;
    assert_int_equal(plan_store_gc_roots(f->store, &roots, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(roots[0].kind, "session");
    assert_string_equal(roots[0].basename, top);
    plan_gc_roots_free(roots, n);

    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 1);
    assert_string_equal(r.deleted.items[0], b);
    assert_int_equal(r.stale_sessions, 0);
    plan_gc_result_release(&r);
    assert_true(alive(f, a));
    assert_true(alive(f, top));

    plan_store_close(other);
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 2);
    assert_int_equal(r.stale_sessions, 0); /* a closed session leaves no file */
    plan_gc_result_release(&r);
    assert_false(alive(f, a));
    assert_false(alive(f, top));
    assert_closed(f);
    free(a);
    free(b);
    free(top);
    free(text);
}

static void own_session_holds_what_it_added(void **state)
{
    fixture *f = *state;
    char *mine = add_in(f, f->store, "mine", "mine\n", NULL, 0);
    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 0);
    assert_int_equal(r.live, 1);
    plan_gc_result_release(&r);
    assert_true(alive(f, mine));
    free(mine);
}

static void dry_run_deletes_nothing(void **state)
{
    fixture *f = *state;
    char *a = add_loose(f, "aaa", "a\n", NULL, 0);
    char *b = add_loose(f, "bbb", "bb\n", NULL, 0);
    plan_gc_opts o = {.dry_run = true};
    plan_gc_result r;
    gc(f, &o, &r);
    assert_int_equal(r.deleted.len, 2);
    assert_int_equal(r.freed, 5);
    plan_gc_result_release(&r);
    assert_true(alive(f, a));
    assert_true(alive(f, b));
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 2);
    plan_gc_result_release(&r);
    free(a);
    free(b);
}

static void max_freed_stops_early_and_stays_closed(void **state)
{
    fixture *f = *state;
    /* a chain c3 -> c2 -> c1 and two loose paths, all dead */
    char *c1 = add_loose(f, "c1", "one\n", NULL, 0);
    char *t2 = plan_xasprintf("%s\n", c1);
    const char *r2[] = {c1};
    char *c2 = add_loose(f, "c2", t2, r2, 1);
    char *t3 = plan_xasprintf("%s\n", c2);
    const char *r3[] = {c2};
    char *c3 = add_loose(f, "c3", t3, r3, 1);
    char *x = add_loose(f, "x", "x\n", NULL, 0);
    char *y = add_loose(f, "y", "y\n", NULL, 0);

    size_t total = 5, gone = 0;
    for (int round = 0; round < 10 && gone < total; round++) {
        plan_gc_opts o = {.max_freed = 1};
        plan_gc_result r;
        gc(f, &o, &r);
        assert_int_equal(r.deleted.len, 1); /* one path is already >= 1 byte */
        gone += r.deleted.len;
        plan_gc_result_release(&r);
        assert_closed(f);
        /* never something a remaining path refers to */
        if (!alive(f, c1))
            assert_false(alive(f, c2));
        if (!alive(f, c2))
            assert_false(alive(f, c3));
    }
    assert_int_equal(gone, total);
    free(t2);
    free(t3);
    free(c1);
    free(c2);
    free(c3);
    free(x);
    free(y);
}

static void interrupted_deletion_is_finished_at_open(void **state)
{
    fixture *f = *state;
    char *dead = add_loose(f, "dead", "dead\n", NULL, 0);
    char *keep = add_loose(f, "keep", "keep\n", NULL, 0);
    assert_int_equal(plan_store_add_root(f->store, "keep", keep), 0);
    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 1);
    plan_gc_result_release(&r);
    assert_false(alive(f, dead));

    /* as if the collector had died after the rows went, before the
     * directories: the directory is back, the intent names it, and also a
     * path that is registered and names that are not basenames */
    char *dir = plan_xasprintf("%s/store/%s", f->root, dead);
    th_write_str(dir, "share/data", "dead\n");
    char *outside = plan_path_join(f->root, "victim-0123456789abcdefghjkmnpqrstvw");
    th_write_str(outside, "file", "x\n");
    char *text = plan_xasprintf("%s\n%s\n../%s\n.tmp\n", dead, keep,
                                strrchr(outside, '/') + 1);
    char *gcdir = plan_path_join(f->root, "var/gc");
    th_write_str(gcdir, "deleting", text);
    plan_store_close(f->store);
    f->store = open_other(f);
    struct stat st;
    assert_int_not_equal(lstat(dir, &st), 0);
    assert_true(alive(f, keep));
    assert_int_equal(lstat(outside, &st), 0);
    char *intent = plan_path_join(gcdir, "deleting");
    assert_int_not_equal(lstat(intent, &st), 0);
    assert_closed(f);
    free(intent);
    free(gcdir);
    free(text);
    free(outside);
    free(dir);
    free(dead);
    free(keep);
}

static void write_session(fixture *f, const char *id, const char *body)
{
    char *dir = plan_path_join(f->root, "var/gc/sessions");
    char *rel = plan_xstrdup(id);
    char *text = plan_xasprintf("plan-session-v1\npid 999999\nstarted 1\n%s", body);
    th_write_str(dir, rel, text);
    free(text);
    free(rel);
    free(dir);
}

static bool dir_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void stale_sessions_go_with_their_run_roots(void **state)
{
    fixture *f = *state;
    char *a = add_loose(f, "aaa", "a\n", NULL, 0);
    char *rr = plan_path_join(f->run, "plan-0123456789abcdef");
    th_write_str(rr, "bin/thing", "x\n");
    char *bad = plan_path_join(f->run, "notplan");
    th_write_str(bad, "precious", "x\n");
    /* a name plan makes, reached through '..' */
    char *sub = plan_path_join(f->run, "sub");
    th_write_str(sub, "x", "x\n");
    char *dotdot = plan_path_join(f->run, "plan-aaaaaaaaaaaaaaaa");
    th_write_str(dotdot, "precious", "x\n");
    char *b1 = plan_xasprintf("root %s\nrunroot %s\n", a, rr);
    char *b2 = plan_xasprintf("runroot %s\n", bad);
    char *b3 = plan_xasprintf("runroot %s/sub/../plan-aaaaaaaaaaaaaaaa\n", f->run);
    write_session(f, "00000000000000aa", b1);
    write_session(f, "00000000000000bb", b2);
    write_session(f, "00000000000000cc", b3);
    write_session(f, "00000000000000dd", "runroot relative/plan-bbbbbbbbbbbbbbbb\n");

    plan_session *list;
    size_t n;
    assert_int_equal(plan_store_sessions(f->store, &list, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_false(list[i].live);
        if (!strcmp(list[i].id, "00000000000000aa")) {
            assert_string_equal(list[i].runroot, rr);
            assert_int_equal(list[i].roots.len, 1);
        }
        if (!strcmp(list[i].id, "00000000000000dd"))
            assert_null(list[i].runroot);
    }
    plan_sessions_free(list, n);
    /* a stale session is no root */
    plan_gc_root *roots;
    assert_int_equal(plan_store_gc_roots(f->store, &roots, &n), 0);
    assert_int_equal(n, 0);
    plan_gc_roots_free(roots, n);

    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.stale_sessions, 4);
    assert_int_equal(r.deleted.len, 1);
    plan_gc_result_release(&r);
    assert_false(alive(f, a));
    assert_false(dir_exists(rr));
    assert_true(dir_exists(bad));
    assert_true(dir_exists(dotdot));
    char *sessions = plan_path_join(f->root, "var/gc/sessions/00000000000000aa");
    assert_false(dir_exists(sessions));
    free(sessions);
    assert_int_equal(plan_store_sessions(f->store, &list, &n), 0);
    assert_int_equal(n, 0);
    plan_sessions_free(list, n);
    free(b1);
    free(b2);
    free(b3);
    free(rr);
    free(bad);
    free(sub);
    free(dotdot);
    free(a);
}

static void live_run_root_is_kept(void **state)
{
    fixture *f = *state;
    plan_store *other = open_other(f);
    plan_runroot *rr;
    assert_int_equal(plan_store_runroot_new(other, f->run, &rr), 0);
    const char *path = plan_runroot_path(rr);
    const char *base = strrchr(path, '/') + 1;
    assert_int_equal(strncmp(base, "plan-", 5), 0);
    assert_int_equal(strlen(base), 5 + 16);
    assert_true(dir_exists(path));
    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.stale_sessions, 0);
    plan_gc_result_release(&r);
    assert_true(dir_exists(path));
    unsigned reaped = 99;
    assert_int_equal(plan_store_reap_sessions(f->store, &reaped), 0);
    assert_int_equal(reaped, 0);
    assert_true(dir_exists(path));
    char *copy = plan_xstrdup(path);
    plan_store_runroot_remove(rr);
    assert_false(dir_exists(copy));
    free(copy);
    plan_store_close(other);
}

/* A process that dies with its run roots: every one of them goes. */
static void crashed_process_leaves_no_run_root(void **state)
{
    fixture *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        plan_ctx *c = plan_ctx_new();
        plan_store *s;
        plan_runroot *r1, *r2;
        if (plan_store_open(c, f->root, &s) || plan_store_runroot_new(s, f->run, &r1) ||
            plan_store_runroot_new(s, f->run, &r2))
            _exit(1);
        dprintf(fds[1], "%s\n%s\n", plan_runroot_path(r1), plan_runroot_path(r2));
        _exit(0); /* no cleanup: a crash */
    }
    close(fds[1]);
    char buf[2 * PATH_MAX];
    ssize_t got = 0, k;
    while ((k = read(fds[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += k;
    close(fds[0]);
    buf[got] = '\0';
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    *nl = '\0';
    char *first = buf, *second = nl + 1;
    nl = strchr(second, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_true(dir_exists(first));
    assert_true(dir_exists(second));
    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.stale_sessions, 1);
    plan_gc_result_release(&r);
    assert_false(dir_exists(second));
    if (dir_exists(first))
        fail_msg("the first run root of a dead session is left: '%s'", first);
}

static void profiles_and_links_are_roots(void **state)
{
    fixture *f = *state;
    plan_store *other = open_other(f);
    char *p1 = add_in(f, other, "pone", "p1\n", NULL, 0);
    char *p2 = add_in(f, other, "ptwo", "p2\n", NULL, 0);
    char *linked = add_in(f, other, "linked", "l\n", NULL, 0);
    plan_profile *p;
    assert_int_equal(plan_profile_open(other, "default", true, &p), 0);
    const char *bases[] = {p1, p2};
    const char *names[] = {"pone", "ptwo"};
    for (int i = 0; i < 2; i++) {
        plan_generation g;
        plan_generation_init(&g);
        plan_strlist_add(&g.pkg_names, names[i]);
        plan_strlist_add(&g.pkg_versions, "1.0");
        plan_strlist_add(&g.pkg_paths, bases[i]);
        if (plan_profile_commit(p, &g, NULL, NULL, NULL, NULL, NULL))
            fail_msg("commit: %s", plan_ctx_error(f->ctx));
        plan_generation_release(&g);
    }
    char *user_link = plan_path_join(f->src, "result");
    char *target = plan_xasprintf("%s/%s", plan_store_dir(other), linked);
    assert_int_equal(symlink(target, user_link), 0);
    assert_int_equal(plan_store_add_link_root(other, user_link), 0);

    plan_gc_result r;
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 0);
    assert_int_equal(r.live, 3);
    plan_gc_result_release(&r);

    /* generation 1 goes: p1 is collectable; the link goes: linked too
     * (once the session of 'other', which holds them too, has ended; a
     * profile is closed before its store) */
    assert_int_equal(plan_profile_delete_generation(p, 1), 0);
    plan_profile_close(p);
    plan_store_close(other);
    assert_int_equal(unlink(user_link), 0);
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 2);
    assert_true(index_in(&r.deleted, p1) >= 0);
    assert_true(index_in(&r.deleted, linked) >= 0);
    plan_gc_result_release(&r);
    assert_true(alive(f, p2));
    assert_closed(f);
    free(user_link);
    free(target);
    free(p1);
    free(p2);
    free(linked);
}

/* var/gc/roots/<name> may name a path in any form plan_store_resolve
 * takes (store.h): a root written by hand as a full path still holds. */
static void named_root_in_any_form(void **state)
{
    fixture *f = *state;
    char *a = add_loose(f, "byhand", "a\n", NULL, 0);
    char *dir = plan_path_join(f->root, "var/gc/roots");
    char *text = plan_xasprintf("%s/%s\n", plan_store_dir(f->store), a);
    th_write_str(dir, "by-hand", text);
    plan_gc_result r;
    gc(f, NULL, &r);
    size_t deleted = r.deleted.len;
    plan_gc_result_release(&r);
    free(text);
    free(dir);
    free(a);
    if (deleted)
        fail_msg("a root naming a path by its full path did not hold it");
}

static void one_collector_at_a_time(void **state)
{
    fixture *f = *state;
    char *a = add_loose(f, "aaa", "a\n", NULL, 0);
    char *lock = plan_path_join(f->root, "var/gc/run.lock");
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    plan_gc_result r;
    assert_int_equal(plan_store_gc(f->store, NULL, &r), PLAN_ERR_BUSY);
    plan_gc_result_release(&r);
    plan_ctx_clear_error(f->ctx);
    assert_true(alive(f, a));
    close(fd);
    gc(f, NULL, &r);
    assert_int_equal(r.deleted.len, 1);
    plan_gc_result_release(&r);
    free(lock);
    free(a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fixture_setup, store_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(empty_store),
        T(unrooted_paths_are_deleted),
        T(references_keep_their_targets),
        T(another_handles_session_holds_until_closed),
        T(own_session_holds_what_it_added),
        T(dry_run_deletes_nothing),
        T(max_freed_stops_early_and_stays_closed),
        T(interrupted_deletion_is_finished_at_open),
        T(stale_sessions_go_with_their_run_roots),
        T(live_run_root_is_kept),
        T(crashed_process_leaves_no_run_root),
        T(profiles_and_links_are_roots),
        T(named_root_in_any_form),
        T(one_collector_at_a_time),
    };
    return cmocka_run_group_tests_name("gc", tests, NULL, NULL);
}
