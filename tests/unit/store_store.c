/* Unit tests for the store: add, recovery, concurrency, verify, optimise,
 * export/import and repair. */
#include "test_helpers.h"
#include "store/store.h"
#include "recipes/recipes.h"

#include <dirent.h>
#include "store_fixture.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* store_int.h is private to the store: the threshold, repeated here. */
#define ZREAD_MIN_SIZE_FOR_TEST (256 * 1024)

static void make_tree(const char *dir)
{
    th_write_str(dir, "bin/hello", "#!/bin/sh\necho hello\n");
    char *p = plan_path_join(dir, "bin/hello");
    chmod(p, 0755);
    free(p);
    th_write_str(dir, "share/doc/README", "hello, world\n");
    th_write_str(dir, "share/doc/COPY", "hello, world\n"); /* same bytes: optimise */
    th_symlink(dir, "share/latest", "doc/README");
}

static char *add(fixture *f, const char *dir, const char *name, bool *existed)
{
    plan_add_opts o = {.dir = dir, .name = name, .version = "1.0", .scan_all_refs = true};
    plan_add_result r;
    if (plan_store_add(f->store, &o, &r))
        fail_msg("add: %s", plan_ctx_error(f->ctx));
    if (existed)
        *existed = r.existed;
    return r.path;
}

static void add_copies_seals_and_registers(void **state)
{
    fixture *f = *state;
    bool existed;
    char *path = add(f, f->src, "hello", &existed);
    assert_false(existed);
    assert_non_null(strstr(path, "-hello-1.0"));
    struct stat st;
    char *bin = plan_path_join(path, "bin/hello");
    assert_int_equal(stat(bin, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(st.st_mtime, 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(st.st_mtime, 1);
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, path, &info), 0);
    assert_string_equal(info->name, "hello");
    assert_int_equal(info->size, 21 + 13 + 13 + 10);
    assert_int_equal(info->references.len, 0);
    plan_path_info_free(info);
    free(bin);
    free(path);
}

static void adding_again_writes_nothing(void **state)
{
    fixture *f = *state;
    char *first = add(f, f->src, "hello", NULL);
    struct stat before, after;
    assert_int_equal(stat(first, &before), 0);
    char *db = plan_path_join(f->root, "var/db/plan.db");
    struct stat db_before, db_after;
    assert_int_equal(stat(db, &db_before), 0);
    bool existed;
    char *second = add(f, f->src, "hello", &existed);
    assert_true(existed);
    assert_string_equal(first, second);
    assert_int_equal(stat(first, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(stat(db, &db_after), 0);
    assert_int_equal(db_before.st_mtim.tv_nsec, db_after.st_mtim.tv_nsec);
    free(db);
    free(first);
    free(second);
}

static void record_hashing(const plan_event *ev, void *user)
{
    uint64_t *bytes = user;
    if (ev->kind == PLAN_EV_PHASE && !strcmp(ev->phase, "hashing") && *bytes == UINT64_MAX)
        *bytes = ev->total; /* the first hashing phase is the source's */
}

/* Re-adding an unchanged tree reads no file; an edit that keeps size and
 * mtime is still seen, through ctime. */
static void hash_cache_skips_unchanged_files_only(void **state)
{
    fixture *f = *state;
    char *file = plan_path_join(f->src, "share/doc/README");
    struct stat old;
    assert_int_equal(stat(file, &old), 0);
    sleep(3); /* out of the racy window */
    char *first = add(f, f->src, "hello", NULL);
    uint64_t bytes = UINT64_MAX;
    plan_ctx_set_events(f->ctx, record_hashing, &bytes);
    char *second = add(f, f->src, "hello", NULL);
    assert_string_equal(first, second);
    assert_int_equal(bytes, 0);
    /* same size, same mtime, different bytes */
    th_write_str(f->src, "share/doc/README", "HELLO, WORLD\n");
    struct timespec t[2] = {old.st_atim, old.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, file, t, 0), 0);
    bytes = UINT64_MAX;
    char *third = add(f, f->src, "hello", NULL);
    assert_string_not_equal(first, third);
    assert_int_equal(bytes, 13);
    plan_ctx_set_events(f->ctx, NULL, NULL);
    free(first);
    free(second);
    free(third);
    free(file);
}

static void references_are_found_and_closed_over(void **state)
{
    fixture *f = *state;
    char *lib = add(f, f->src, "lib", NULL);
    char *app = th_tmpdir();
    char *text = plan_xasprintf("exec %s/bin/hello\n", lib);
    th_write_str(app, "run", text);
    char *app_path = add(f, app, "app", NULL);
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, app_path, &info), 0);
    assert_int_equal(info->references.len, 1);
    assert_non_null(strstr(lib, info->references.items[0]));
    assert_int_equal(info->closure_size, info->size + 57);
    plan_path_info_free(info);
    plan_strlist roots, closure;
    plan_strlist_init(&roots);
    plan_strlist_init(&closure);
    plan_strlist_add(&roots, strrchr(app_path, '/') + 1);
    assert_int_equal(plan_store_closure(f->store, &roots, &closure), 0);
    assert_int_equal(closure.len, 2);
    plan_strlist_release(&roots);
    plan_strlist_release(&closure);
    free(text);
    free(app_path);
    th_rmtree(app);
    free(lib);
}

static void resolve_accepts_every_form(void **state)
{
    fixture *f = *state;
    char *path = add(f, f->src, "hello", NULL);
    const char *base = strrchr(path, '/') + 1;
    char digest[PLAN_DIGEST_CHARS + 1];
    memcpy(digest, base, PLAN_DIGEST_CHARS);
    digest[PLAN_DIGEST_CHARS] = '\0';
    char *inner = plan_path_join(path, "bin/hello");
    const char *forms[] = {path, base, digest, inner};
    for (size_t i = 0; i < 4; i++) {
        char *b = NULL;
        assert_int_equal(plan_store_resolve(f->store, forms[i], &b), 0);
        assert_string_equal(b, base);
        free(b);
    }
    char *b = NULL;
    assert_int_equal(plan_store_resolve(f->store, "/etc/passwd", &b), PLAN_ERR_NOT_FOUND);
    assert_int_equal(plan_store_resolve(f->store, "nothing-1.0", &b), PLAN_ERR_NOT_FOUND);
    free(inner);
    free(path);
}

static void bad_names_and_sources_fail_cleanly(void **state)
{
    fixture *f = *state;
    plan_add_result r;
    plan_add_opts o = {.dir = f->src, .name = "../evil", .version = "1"};
    assert_int_equal(plan_store_add(f->store, &o, &r), PLAN_ERR_INVALID);
    o.name = "ok";
    o.dir = "/nonexistent/dir";
    assert_int_equal(plan_store_add(f->store, &o, &r), PLAN_ERR_NOT_FOUND);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "/nonexistent/dir"));
    plan_strlist all;
    plan_strlist_init(&all);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    assert_int_equal(all.len, 0);
    plan_strlist_release(&all);
}

/* Simulate crashes at each step and check the next open cleans up. */
static void open_cleans_what_crashes_leave(void **state)
{
    fixture *f = *state;
    /* 1. a work directory nobody holds */
    char *tmp = plan_xasprintf("%s/store/.tmp/abandoned", f->root);
    th_write_str(tmp, "x/file", "half written");
    /* 2. a renamed tree whose transaction never committed */
    const char *orphan = "11111111111111111111111111111111-orphan-1.0";
    char *orphan_path = plan_xasprintf("%s/store/%s", f->root, orphan);
    th_write_str(orphan_path, "file", "never registered");
    char *marker = plan_xasprintf("%s/var/pending/%s", f->root, orphan);
    th_write_str(f->root, "var/pending/11111111111111111111111111111111-orphan-1.0", "");
    /* 3. a registered path with a stale intent file must be kept */
    char *kept = add(f, f->src, "kept", NULL);
    char *kept_marker = plan_xasprintf("var/pending/%s", strrchr(kept, '/') + 1);
    th_write_str(f->root, kept_marker, "");

    plan_store_close(f->store);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    struct stat st;
    assert_int_not_equal(lstat(tmp, &st), 0);
    assert_int_not_equal(lstat(orphan_path, &st), 0);
    assert_int_not_equal(lstat(marker, &st), 0);
    assert_int_equal(lstat(kept, &st), 0);
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    assert_int_equal(rep.checked, 1);
    plan_verify_report_release(&rep);
    free(tmp);
    free(orphan_path);
    free(marker);
    free(kept);
    free(kept_marker);
}

/* A batch's intent file names all its paths: the next open removes the
 * ones that never committed, keeps the registered ones, never follows a
 * line out of the store, and leaves alone an intent its writer still
 * holds locked. */
static void open_resolves_batch_intents(void **state)
{
    fixture *f = *state;
    const char *orphan = "22222222222222222222222222222222-orphan-2.0";
    char *orphan_path = plan_xasprintf("%s/store/%s", f->root, orphan);
    th_write_str(orphan_path, "file", "never registered");
    char *kept = add(f, f->src, "kept", NULL);
    /* Outside the store, named by a line that is not a basename. */
    char *victim = plan_xasprintf("%s/victim", f->root);
    th_write_str(victim, "file", "must stay");
    char *text = plan_xasprintf("%s\n%s\n../victim\n/%s/victim\n", orphan,
                                strrchr(kept, '/') + 1, f->root);
    th_write_str(f->root, "var/pending/batch-0123456789abcdef", text);
    /* One still being written, under its hidden name and locked, and one
     * that lost its writer before it got its name. */
    const char *busy_orphan = "33333333333333333333333333333333-busy-1.0";
    char *busy_path = plan_xasprintf("%s/store/%s", f->root, busy_orphan);
    th_write_str(busy_path, "file", "being registered");
    char *busy_text = plan_xasprintf("%s\n", busy_orphan);
    th_write_str(f->root, "var/pending/batch-fedcba9876543210", busy_text);
    char *busy = plan_xasprintf("%s/var/pending/batch-fedcba9876543210", f->root);
    int busy_fd = open(busy, O_RDONLY);
    assert_true(busy_fd >= 0);
    assert_int_equal(flock(busy_fd, LOCK_EX), 0);
    /* An hour-old hidden one lost its writer; a fresh one may be a writer
     * between creating and locking it. */
    th_write_str(f->root, "var/pending/.batch-aaaaaaaaaaaaaaaa", "");
    th_write_str(f->root, "var/pending/.batch-bbbbbbbbbbbbbbbb", "");
    char *fresh = plan_xasprintf("%s/var/pending/.batch-bbbbbbbbbbbbbbbb", f->root);
    char *hidden = plan_xasprintf("%s/var/pending/.batch-aaaaaaaaaaaaaaaa", f->root);
    struct timespec hour_ago[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    assert_int_equal(utimensat(AT_FDCWD, hidden, hour_ago, 0), 0);

    plan_store_close(f->store);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    struct stat st;
    assert_int_not_equal(lstat(orphan_path, &st), 0);
    assert_int_equal(lstat(kept, &st), 0);
    assert_int_equal(lstat(victim, &st), 0);
    char *done = plan_xasprintf("%s/var/pending/batch-0123456789abcdef", f->root);
    assert_int_not_equal(lstat(done, &st), 0);
    assert_int_not_equal(lstat(hidden, &st), 0);
    assert_int_equal(lstat(fresh, &st), 0);
    /* The locked one is untouched until its writer lets go. */
    assert_int_equal(lstat(busy, &st), 0);
    assert_int_equal(lstat(busy_path, &st), 0);
    close(busy_fd);
    plan_store_close(f->store);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    assert_int_not_equal(lstat(busy, &st), 0);
    assert_int_not_equal(lstat(busy_path, &st), 0);
    free(orphan_path);
    free(kept);
    free(victim);
    free(text);
    free(busy_path);
    free(busy_text);
    free(busy);
    free(done);
    free(hidden);
    free(fresh);
}

/* Two processes adding the same content at once both succeed, one path. */
static void concurrent_adds_agree(void **state)
{
    fixture *f = *state;
    /* A bigger tree so the two adds really overlap. */
    char buf[4096];
    memset(buf, 'z', sizeof(buf));
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof(name), "data/%03d", i);
        buf[0] = (char)i;
        th_write(f->src, name, buf, sizeof(buf), 0644);
    }
    int pipes[2][2];
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pipe(pipes[k]), 0);
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            plan_ctx *ctx = plan_ctx_new();
            plan_store *s;
            plan_add_opts o = {.dir = f->src, .name = "race", .version = "1.0"};
            plan_add_result r;
            if (plan_store_open(ctx, f->root, &s) || plan_store_add(s, &o, &r))
                _exit(1);
            ssize_t w = write(pipes[k][1], r.path, strlen(r.path));
            _exit(w > 0 ? 0 : 1);
        }
        close(pipes[k][1]);
    }
    char got[2][512];
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        ssize_t n = read(pipes[k][0], got[k], sizeof(got[k]) - 1);
        assert_true(n > 0);
        got[k][n] = '\0';
        close(pipes[k][0]);
    }
    assert_string_equal(got[0], got[1]);
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    assert_int_equal(rep.checked, 1);
    plan_verify_report_release(&rep);
}

static bool has_problem(const plan_verify_report *r, plan_problem_kind kind, const char *name)
{
    for (size_t i = 0; i < r->len; i++)
        if (r->items[i].kind == kind && strstr(name, r->items[i].basename))
            return true;
    return false;
}

static void verify_finds_every_kind_of_damage(void **state)
{
    fixture *f = *state;
    char *a = add(f, f->src, "a", NULL);
    char *b = add(f, f->src, "b", NULL);
    /* modify a */
    char *file = plan_path_join(a, "share/doc/README");
    chmod(file, 0644);
    th_write_str(a, "share/doc/README", "tampered\n");
    chmod(file, 0444);
    /* delete b */
    plan_fs_rmtree(b);
    /* an unregistered directory */
    char *stray = plan_xasprintf("%s/store/22222222222222222222222222222222-stray-1", f->root);
    th_write_str(stray, "f", "x");
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, false, &rep), 0);
    assert_true(has_problem(&rep, PLAN_PROBLEM_MISSING, b));
    assert_true(has_problem(&rep, PLAN_PROBLEM_UNREGISTERED, stray));
    assert_false(has_problem(&rep, PLAN_PROBLEM_MODIFIED, a)); /* not without contents */
    plan_verify_report_release(&rep);
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_true(has_problem(&rep, PLAN_PROBLEM_MODIFIED, a));
    plan_verify_report_release(&rep);
    free(file);
    free(stray);
    free(a);
    free(b);
}

static void optimise_links_duplicates_and_verify_still_passes(void **state)
{
    fixture *f = *state;
    char *a = add(f, f->src, "a", NULL);
    char *b = add(f, f->src, "b", NULL);
    plan_optimise_result res;
    assert_int_equal(plan_store_optimise(f->store, &res), 0);
    /* README and COPY inside a are one file; all of b's files join a's. */
    assert_int_equal(res.files_linked, 4);
    assert_true(res.bytes_saved >= 21 + 13 + 13);
    struct stat s1, s2;
    char *fa = plan_path_join(a, "bin/hello"), *fb = plan_path_join(b, "bin/hello");
    assert_int_equal(stat(fa, &s1), 0);
    assert_int_equal(stat(fb, &s2), 0);
    assert_int_equal(s1.st_ino, s2.st_ino);
    assert_int_equal(s1.st_mode & 0777, 0555);
    assert_int_equal(stat(b, &s2), 0);
    assert_int_equal(s2.st_mode & 0777, 0555);
    assert_int_equal(s2.st_mtime, 1);
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
    assert_int_equal(plan_store_optimise(f->store, &res), 0);
    assert_int_equal(res.files_linked, 0); /* idempotent */
    free(fa);
    free(fb);
    free(a);
    free(b);
}

/* The store emptied (its root removed) and opened again. */
static void reopen_empty(fixture *f)
{
    plan_store_close(f->store);
    plan_fs_rmtree(f->root);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
}

/* Import file, which must add n paths and find none present. */
static void import_adding(fixture *f, const char *file, size_t n)
{
    plan_import_result res;
    assert_int_equal(plan_store_import(f->store, file, &res), 0);
    assert_int_equal(res.added.len, n);
    assert_int_equal(res.present.len, 0);
    plan_import_result_release(&res);
}

/* app (referring to one other path) is registered with its reference, and
 * the whole store verifies. */
static void assert_app_imported(fixture *f, const char *app_path)
{
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, app_path, &info), 0);
    assert_int_equal(info->references.len, 1);
    plan_path_info_free(info);
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
}

static void export_is_deterministic_and_imports_back(void **state)
{
    fixture *f = *state;
    char *lib = add(f, f->src, "lib", NULL);
    char *app = th_tmpdir();
    char *text = plan_xasprintf("exec %s/bin/hello\n", lib);
    th_write_str(app, "run", text);
    char *app_path = add(f, app, "app", NULL);
    char *out1 = plan_path_join(f->out, "x1.tar.zst");
    char *out2 = plan_path_join(f->out, "x2.tar.zst");
    const char *paths[] = {app_path};
    assert_int_equal(plan_store_export(f->store, paths, 1, true, out1), 0);
    assert_int_equal(plan_store_export(f->store, paths, 1, true, out2), 0);
    plan_buf b1, b2;
    plan_buf_init(&b1);
    plan_buf_init(&b2);
    assert_int_equal(plan_fs_read_file(out1, 1 << 24, &b1), 0);
    assert_int_equal(plan_fs_read_file(out2, 1 << 24, &b2), 0);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);

    /* Without the closure the reference cannot be satisfied elsewhere. */
    reopen_empty(f);
    import_adding(f, out1, 2);
    plan_import_result res;
    assert_app_imported(f, app_path);
    /* Importing again changes nothing. */
    assert_int_equal(plan_store_import(f->store, out1, &res), 0);
    assert_int_equal(res.added.len, 0);
    assert_int_equal(res.present.len, 2);
    plan_import_result_release(&res);

    unlink(out1);
    unlink(out2);
    plan_buf_release(&b1);
    plan_buf_release(&b2);
    free(out1);
    free(out2);
    free(text);
    free(app_path);
    th_rmtree(app);
    free(lib);
}

/* Three paths exported each on its own into f->out, then the store
 * emptied: lib, app (which refers to lib) and other (which shares
 * nothing).  xa, xl, xo are the archives. */
typedef struct trio {
    char *lib, *app_path, *other_path; /* absolute store paths */
    char *app, *other;                 /* their source folders */
    char *xa, *xl, *xo;
} trio;

static void trio_make(fixture *f, trio *t)
{
    t->lib = add(f, f->src, "lib", NULL);
    t->app = th_tmpdir();
    char *text = plan_xasprintf("exec %s/bin/hello\n", t->lib);
    th_write_str(t->app, "run", text);
    free(text);
    t->app_path = add(f, t->app, "app", NULL);
    t->other = th_tmpdir();
    th_write_str(t->other, "data", "unrelated\n");
    t->other_path = add(f, t->other, "other", NULL);
    t->xa = plan_path_join(f->out, "a.tar.zst");
    t->xl = plan_path_join(f->out, "l.tar.zst");
    t->xo = plan_path_join(f->out, "o.tar.zst");
    const char *pa[] = {t->app_path}, *pl[] = {t->lib}, *po[] = {t->other_path};
    assert_int_equal(plan_store_export(f->store, pa, 1, false, t->xa), 0);
    assert_int_equal(plan_store_export(f->store, pl, 1, false, t->xl), 0);
    assert_int_equal(plan_store_export(f->store, po, 1, false, t->xo), 0);
    reopen_empty(f);
}

static void trio_release(trio *t)
{
    char *xs[] = {t->xa, t->xl, t->xo};
    for (size_t i = 0; i < 3; i++) {
        unlink(xs[i]);
        free(xs[i]);
    }
    free(t->app_path);
    free(t->other_path);
    th_rmtree(t->app);
    th_rmtree(t->other);
    free(t->lib);
}

/* A batch: app's archive comes before the lib it needs, both hold lib, and
 * a third path shares nothing.  One call registers each path once; a batch
 * with one bad file registers nothing. */
static void import_many_takes_any_order_and_shared_paths(void **state)
{
    fixture *f = *state;
    trio t;
    trio_make(f, &t);
    const char *xa = t.xa, *xl = t.xl, *xo = t.xo, *lib = t.lib, *app_path = t.app_path;
    char *xbad = plan_path_join(f->out, "bad.tar.zst");
    th_write_str(f->out, "bad.tar.zst", "not an archive");
    plan_import_result res;
    const char *bad_batch[] = {xo, xbad};
    assert_int_not_equal(plan_store_import_many(f->store, bad_batch, 2, NULL, &res), 0);
    plan_strlist all;
    plan_strlist_init(&all);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    assert_int_equal(all.len, 0);

    /* app alone cannot be imported: lib is neither there nor in the batch */
    const char *app_alone[] = {xa};
    assert_int_not_equal(plan_store_import_many(f->store, app_alone, 1, NULL, &res), 0);
    const char *files[] = {xa, xl, xo, xl};
    plan_strlist contents[4];
    assert_int_equal(plan_store_import_many(f->store, files, 4, contents, &res), 0);
    assert_int_equal(res.added.len, 3);
    assert_int_equal(res.present.len, 0);
    assert_true(plan_strlist_contains(&contents[0], strrchr(app_path, '/') + 1));
    assert_true(plan_strlist_contains(&contents[1], strrchr(lib, '/') + 1));
    assert_int_equal(contents[3].len, 1);
    for (size_t i = 0; i < 4; i++)
        plan_strlist_release(&contents[i]);
    plan_import_result_release(&res);
    assert_app_imported(f, app_path);
    /* again: everything is present, nothing is added */
    assert_int_equal(plan_store_import_many(f->store, files, 4, NULL, &res), 0);
    assert_int_equal(res.added.len, 0);
    assert_int_equal(res.present.len, 3);
    plan_import_result_release(&res);

    plan_strlist_release(&all);
    unlink(xbad);
    free(xbad);
    trio_release(&t);
}

/* The stream: archives handed over one by one, in any order, with the
 * paths they may hold named beforehand.  An archive holding another path
 * is refused; an abandoned stream registers nothing and leaves no work
 * directory. */
static void import_stream_takes_archives_as_they_arrive(void **state)
{
    fixture *f = *state;
    trio t;
    trio_make(f, &t);
    const char *xa = t.xa, *xl = t.xl, *xo = t.xo, *lib = t.lib, *app_path = t.app_path;

    plan_strlist expected, contents[2], all;
    plan_strlist_init(&expected);
    plan_strlist_init(&all);
    plan_strlist_add(&expected, strrchr(app_path, '/') + 1);
    plan_strlist_add(&expected, strrchr(lib, '/') + 1);
    plan_import_stream *st;
    plan_import_result res;
    /* Abandoned halfway: nothing registered, no work directory left. */
    assert_int_equal(plan_store_import_stream_begin(f->store, 2, 0, &expected, &st), 0);
    assert_int_equal(plan_store_import_stream_add(st, 0, xa), 0);
    assert_int_not_equal(plan_store_import_stream_finish(st, true, NULL, &res), 0);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    assert_int_equal(all.len, 0);
    char *tmp = plan_path_join(f->root, "store/.tmp");
    DIR *d = opendir(tmp);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            fail_msg("work directory '%s' left behind", de->d_name);
    closedir(d);
    free(tmp);

    /* The app first, the lib it refers to second. */
    assert_int_equal(plan_store_import_stream_begin(f->store, 2, 0, &expected, &st), 0);
    assert_int_equal(plan_store_import_stream_add(st, 1, xl), 0);
    assert_int_equal(plan_store_import_stream_add(st, 0, xa), 0);
    assert_int_equal(plan_store_import_stream_finish(st, false, contents, &res), 0);
    assert_int_equal(res.added.len, 2);
    assert_true(plan_strlist_contains(&contents[0], strrchr(app_path, '/') + 1));
    assert_true(plan_strlist_contains(&contents[1], strrchr(lib, '/') + 1));
    plan_strlist_release(&contents[0]);
    plan_strlist_release(&contents[1]);
    plan_import_result_release(&res);
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, app_path, &info), 0);
    assert_int_equal(info->references.len, 1);
    plan_path_info_free(info);

    /* An archive holding what was not announced is refused. */
    assert_int_equal(plan_store_import_stream_begin(f->store, 1, 0, &expected, &st), 0);
    assert_int_equal(plan_store_import_stream_add(st, 0, xo), 0);
    assert_int_equal(plan_store_import_stream_finish(st, false, NULL, &res), PLAN_ERR_HOSTILE);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "not a path its index names"));
    plan_ctx_clear_error(f->ctx);
    /* So is a stream that was promised more archives than it got. */
    assert_int_equal(plan_store_import_stream_begin(f->store, 2, 0, &expected, &st), 0);
    assert_int_equal(plan_store_import_stream_add(st, 0, xa), 0);
    assert_int_not_equal(plan_store_import_stream_finish(st, false, NULL, &res), 0);
    plan_ctx_clear_error(f->ctx);
    plan_strlist_release(&all);
    plan_strlist_init(&all);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    assert_int_equal(all.len, 2);

    plan_strlist_release(&all);
    plan_strlist_release(&expected);
    trio_release(&t);
}

/* A batch of many paths (more than the staging arrays start with: they
 * grow while rows point into them) registers each path's own content
 * hash, and the store verifies. */
static void a_batch_of_many_paths_registers_their_content_hashes(void **state)
{
    fixture *f = *state;
    enum { N = 40 };
    char *paths[N], *hashes[N];
    for (int i = 0; i < N; i++) {
        char *dir = th_tmpdir(), name[16], text[32];
        snprintf(name, sizeof(name), "p%02d", i);
        snprintf(text, sizeof(text), "file of %d\n", i);
        th_write_str(dir, "share/file", text);
        paths[i] = add(f, dir, name, NULL);
        plan_path_info *info;
        assert_int_equal(plan_store_path_info(f->store, paths[i], &info), 0);
        hashes[i] = plan_xstrdup(info->content_hash);
        plan_path_info_free(info);
        th_rmtree(dir);
    }
    char *x = plan_path_join(f->out, "many.tar.zst");
    assert_int_equal(plan_store_export(f->store, (const char *const *)paths, N, false, x), 0);
    reopen_empty(f);
    import_adding(f, x, N);
    for (int i = 0; i < N; i++) {
        plan_path_info *info;
        assert_int_equal(plan_store_path_info(f->store, paths[i], &info), 0);
        assert_string_equal(info->content_hash, hashes[i]);
        plan_path_info_free(info);
        free(paths[i]);
        free(hashes[i]);
    }
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
    unlink(x);
    free(x);
}

static void add_file_to_memory(plan_import_stream *st, size_t slot, const char *file)
{
    plan_buf data;
    plan_buf_init(&data);
    assert_int_equal(plan_fs_read_file(file, 1 << 24, &data), 0);
    assert_int_equal(plan_store_import_stream_add_memory(st, slot, file, &data), 0);
    assert_int_equal(data.len, 0); /* taken */
    plan_buf_release(&data);
}

/* Archives handed over in memory are read once (their metadata, then their
 * entries, by one reader): the same results, refusals and clean-ups as
 * from files, and no reader left open when a stream is abandoned. */
static void import_stream_reads_archives_in_memory_once(void **state)
{
    fixture *f = *state;
    trio t;
    trio_make(f, &t);
    plan_strlist expected, contents[2], all;
    plan_strlist_init(&expected);
    plan_strlist_init(&all);
    plan_strlist_add(&expected, strrchr(t.app_path, '/') + 1);
    plan_strlist_add(&expected, strrchr(t.lib, '/') + 1);
    plan_import_stream *st;
    plan_import_result res;
    /* abandoned with one archive read (its reader open, maybe): nothing */
    assert_int_equal(plan_store_import_stream_begin(f->store, 2, 0, &expected, &st), 0);
    add_file_to_memory(st, 1, t.xl);
    assert_int_not_equal(plan_store_import_stream_finish(st, true, NULL, &res), 0);
    plan_ctx_clear_error(f->ctx);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    assert_int_equal(all.len, 0);
    /* an archive holding a path nobody announced */
    assert_int_equal(plan_store_import_stream_begin(f->store, 1, 0, &expected, &st), 0);
    add_file_to_memory(st, 0, t.xo);
    assert_int_equal(plan_store_import_stream_finish(st, false, NULL, &res), PLAN_ERR_HOSTILE);
    plan_ctx_clear_error(f->ctx);
    /* app before the lib it refers to, both from memory */
    assert_int_equal(plan_store_import_stream_begin(f->store, 2, 0, &expected, &st), 0);
    add_file_to_memory(st, 0, t.xa);
    add_file_to_memory(st, 1, t.xl);
    assert_int_equal(plan_store_import_stream_finish(st, false, contents, &res), 0);
    assert_int_equal(res.added.len, 2);
    assert_true(plan_strlist_contains(&contents[0], strrchr(t.app_path, '/') + 1));
    assert_true(plan_strlist_contains(&contents[1], strrchr(t.lib, '/') + 1));
    plan_strlist_release(&contents[0]);
    plan_strlist_release(&contents[1]);
    plan_import_result_release(&res);
    assert_app_imported(f, t.app_path);
    plan_strlist_release(&all);
    plan_strlist_release(&expected);
    trio_release(&t);
}

/* An archive past ZREAD_MIN_SIZE is decompressed on a thread of its own:
 * the same result as the small ones, and a truncated one still fails. */
static void a_large_archive_imports_through_the_decompressing_thread(void **state)
{
    fixture *f = *state;
    char *big = th_tmpdir();
    size_t n = 3 * 256 * 1024;
    char *noise = plan_xmalloc(n + 1);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (char)('a' + (x >> 16) % 26);
    }
    noise[n] = 0;
    th_write_str(big, "data", noise);
    char *path = add(f, big, "big", NULL);
    char *xf = plan_path_join(f->out, "big.tar.zst");
    const char *one[] = {path};
    assert_int_equal(plan_store_export(f->store, one, 1, false, xf), 0);
    struct stat st;
    assert_int_equal(stat(xf, &st), 0);
    assert_true(st.st_size >= ZREAD_MIN_SIZE_FOR_TEST);
    char *cut = plan_path_join(f->out, "cut.tar.zst");
    plan_buf whole;
    plan_buf_init(&whole);
    assert_int_equal(plan_fs_read_file(xf, 1 << 24, &whole), 0);
    assert_int_equal(plan_fs_write_atomic(cut, whole.data, whole.len - 1000, 0644), 0);
    plan_buf_release(&whole);
    plan_store_close(f->store);
    plan_fs_rmtree(f->root);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    plan_import_result res;
    assert_int_not_equal(plan_store_import(f->store, cut, &res), 0);
    plan_ctx_clear_error(f->ctx);
    plan_strlist all;
    plan_strlist_init(&all);
    assert_int_equal(plan_store_list(f->store, &all), 0);
    assert_int_equal(all.len, 0);
    plan_strlist_release(&all);
    unlink(cut);
    free(cut);
    assert_int_equal(plan_store_import(f->store, xf, &res), 0);
    assert_int_equal(res.added.len, 1);
    plan_import_result_release(&res);
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
    unlink(xf);
    free(xf);
    free(path);
    free(noise);
    th_rmtree(big);
}

static void repair_restores_a_damaged_path(void **state)
{
    fixture *f = *state;
    char *path = add(f, f->src, "hello", NULL);
    char *out = plan_path_join(f->out, "repair.tar.zst");
    const char *paths[] = {path};
    assert_int_equal(plan_store_export(f->store, paths, 1, false, out), 0);
    char *file = plan_path_join(path, "bin/hello");
    chmod(file, 0755);
    th_write_str(path, "bin/hello", "#!/bin/sh\nrm -rf /\n");
    plan_verify_report rep = {0};
    assert_int_equal(plan_store_verify(f->store, paths, 1, true, &rep), 0);
    assert_int_equal(rep.len, 1);
    plan_verify_report_release(&rep);
    assert_int_equal(plan_store_repair(f->store, path, out), 0);
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
    /* Also when the path is gone entirely. */
    plan_fs_rmtree(path);
    assert_int_equal(plan_store_repair(f->store, path, out), 0);
    assert_int_equal(plan_store_verify(f->store, NULL, 0, true, &rep), 0);
    assert_int_equal(rep.len, 0);
    plan_verify_report_release(&rep);
    unlink(out);
    free(out);
    free(file);
    free(path);
}

static void reopening_keeps_the_schema(void **state)
{
    fixture *f = *state;
    char *path = add(f, f->src, "hello", NULL);
    plan_store_close(f->store);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    plan_path_info *info;
    assert_int_equal(plan_store_path_info(f->store, path, &info), 0);
    plan_path_info_free(info);
    free(path);
}

/* Every test starts from the small tree make_tree writes. */
/* Every entry below dir as "path type [target]" lines, sorted. */
static void farm_listing(const char *dir, const char *rel, plan_strlist *out)
{
    char *path = *rel ? plan_path_join(dir, rel) : plan_xstrdup(dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *sub = *rel ? plan_xasprintf("%s/%s", rel, de->d_name) : plan_xstrdup(de->d_name);
        char *full = plan_path_join(dir, sub);
        struct stat st;
        assert_int_equal(lstat(full, &st), 0);
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlink(full, target, sizeof(target) - 1);
            assert_true(n > 0);
            target[n] = '\0';
            plan_strlist_take(out, plan_xasprintf("%s l %s", sub, target));
        } else if (S_ISDIR(st.st_mode)) {
            plan_strlist_take(out, plan_xasprintf("%s d", sub));
            farm_listing(dir, sub, out);
        } else {
            plan_strlist_take(out, plan_xasprintf("%s f", sub));
        }
        free(full);
        free(sub);
    }
    closedir(d);
    free(path);
}

static void assert_same_listing(const char *a, const char *b)
{
    plan_strlist la, lb;
    plan_strlist_init(&la);
    plan_strlist_init(&lb);
    farm_listing(a, "", &la);
    farm_listing(b, "", &lb);
    plan_strlist_sort(&la);
    plan_strlist_sort(&lb);
    assert_int_equal(la.len, lb.len);
    for (size_t i = 0; i < la.len; i++)
        assert_string_equal(la.items[i], lb.items[i]);
    plan_strlist_release(&la);
    plan_strlist_release(&lb);
}

static void farm_of_imported_paths_is_listed_from_the_import(void **state)
{
    fixture *f = *state;
    /* two plans sharing bin/ and share/doc/, one with a link to a
     * directory at its top (a link is asked of the disk: is it a dir?) */
    char *t2 = th_tmpdir();
    th_write_str(t2, "bin/other", "#!/bin/sh\n");
    th_write_str(t2, "share/doc/other/README", "other\n");
    th_write_str(t2, "share/doc/other/deep/er/file", "x\n");
    th_symlink(t2, "docs", "share/doc");
    static const char manifest[] = "{\"env\": [{\"name\": \"OTHER\", \"op\": \"set\", "
                                   "\"value\": \"x\"}]}\n";
    th_write_str(t2, ".plan/manifest.json", manifest);
    /* docs/ is hello's own directory and other's link to share/doc: merged,
     * other's part read through its link */
    th_write_str(f->src, "docs/readme-hello", "hello\n");
    char *p1 = add(f, f->src, "hello", NULL), *p2 = add(f, t2, "other", NULL);
    const char *paths[] = {p1, p2};
    char *x = plan_path_join(f->out, "both.tar.zst");
    assert_int_equal(plan_store_export(f->store, paths, 2, false, x), 0);
    reopen_empty(f);
    import_adding(f, x, 2);

    plan_farm_plan plans[] = {{"hello", "1.0", p1}, {"other", "1.0", p2}};
    char *listed = plan_path_join(f->out, "listed"), *read = plan_path_join(f->out, "read");
    plan_farm_opts with = {.store = f->store}, without = {0};
    assert_int_equal(plan_farm_build(f->ctx, plans, 2, listed, &with, NULL), 0);
    assert_int_equal(plan_farm_build(f->ctx, plans, 2, read, &without, NULL), 0);
    assert_same_listing(listed, read);
    assert_true(th_exists(listed, "docs/readme-hello"));
    assert_true(th_exists(listed, "docs/other/README"));
    /* the manifest the import wrote is kept, byte for byte; compose reads it */
    size_t len = 0;
    const char *kept = plan_store_written_manifest(f->store, p2, &len);
    assert_non_null(kept);
    assert_int_equal(len, strlen(manifest));
    assert_memory_equal(kept, manifest, len);
    assert_null(plan_store_written_manifest(f->store, p1, &len));
    const char *both[] = {p1, p2};
    plan_env_plan from_store, from_disk;
    assert_int_equal(plan_env_compose(f->ctx, f->store, both, 2, listed, &from_store), 0);
    assert_int_equal(plan_env_compose(f->ctx, NULL, both, 2, listed, &from_disk), 0);
    assert_int_equal(from_store.n, from_disk.n);
    for (size_t i = 0; i < from_store.n; i++) {
        assert_string_equal(from_store.items[i].name, from_disk.items[i].name);
        assert_string_equal(from_store.items[i].value, from_disk.items[i].value);
    }
    assert_true(from_store.n >= 2); /* PATH for bin, and OTHER */
    plan_env_plan_release(&from_store);
    plan_env_plan_release(&from_disk);

    /* Only to tell the two sources apart: a file added to the path behind
     * the store's back is seen by the farm that reads the disk alone. */
    char *bin = plan_path_join(p2, "bin");
    assert_int_equal(chmod(bin, 0755), 0);
    th_write_str(p2, "bin/added", "x\n");
    char *listed2 = plan_path_join(f->out, "listed2"), *read2 = plan_path_join(f->out, "read2");
    assert_int_equal(plan_farm_build(f->ctx, plans, 2, listed2, &with, NULL), 0);
    assert_int_equal(plan_farm_build(f->ctx, plans, 2, read2, &without, NULL), 0);
    assert_false(th_exists(listed2, "bin/added"));
    assert_true(th_exists(read2, "bin/added"));
    /* a handle that imported nothing reads the disk */
    plan_store_close(f->store);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    char *reopened = plan_path_join(f->out, "reopened");
    plan_farm_opts fresh = {.store = f->store};
    assert_int_equal(plan_farm_build(f->ctx, plans, 2, reopened, &fresh, NULL), 0);
    assert_true(th_exists(reopened, "bin/added"));
    assert_null(plan_store_written_manifest(f->store, p2, &len));
    char *added = plan_path_join(p2, "bin/added");
    unlink(added);
    free(added);
    free(reopened);
    free(listed2);
    free(read2);
    free(bin);
    free(listed);
    free(read);
    free(x);
    free(p1);
    free(p2);
    th_rmtree(t2);
}

static int setup(void **state)
{
    store_fixture_setup(state);
    make_tree(((fixture *)*state)->src);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, store_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(add_copies_seals_and_registers),
        T(adding_again_writes_nothing),
        T(hash_cache_skips_unchanged_files_only),
        T(references_are_found_and_closed_over),
        T(resolve_accepts_every_form),
        T(bad_names_and_sources_fail_cleanly),
        T(open_cleans_what_crashes_leave),
        T(open_resolves_batch_intents),
        T(concurrent_adds_agree),
        T(verify_finds_every_kind_of_damage),
        T(optimise_links_duplicates_and_verify_still_passes),
        T(export_is_deterministic_and_imports_back),
        T(import_many_takes_any_order_and_shared_paths),
        T(import_stream_takes_archives_as_they_arrive),
        T(import_stream_reads_archives_in_memory_once),
        T(a_batch_of_many_paths_registers_their_content_hashes),
        T(a_large_archive_imports_through_the_decompressing_thread),
        T(repair_restores_a_damaged_path),
        T(reopening_keeps_the_schema),
        T(farm_of_imported_paths_is_listed_from_the_import),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
