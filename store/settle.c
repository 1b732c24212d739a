/* Durability: what DEFERRED registrations leave unsettled, how it settles,
 * and how the first open after a reboot checks it
 * (docs/formats/store-path.md, "Durability").
 *
 * A DEFERRED registration does not wait for the disk.  Its rows get a
 * companion row in 'unsettled_paths' (same transaction, so a row that
 * survives a power cut always has it), naming the boot it happened in.  A
 * generation of a profile gets a file in var/unsettled, created before
 * anything of the generation is written, so that on a journaled file
 * system the marker is on disk whenever any part of the generation is.
 *
 * A record settles when a flush (syncfs) that started after it finishes:
 * IMMEDIATE registrations flush anyway, plan_store_settle flushes on
 * demand ('plan gc'), and a DEFERRED registration first settles records
 * older than the kernel's write-back window (whose flush then finds almost
 * nothing left to write).  Records of another boot are checked at open:
 * the machine may have stopped before they reached the disk. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The kernel writes dirty pages back once they are 30 s old
 * (vm.dirty_expire_centisecs), checking every 5 s: a record older than
 * this has most likely been written already, and its flush is cheap. */
#define SETTLE_AFTER_SECONDS 60

#define GENERATION_MARK_PREFIX "generation."

void settle_read_boot_id(char *out)
{
    out[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[48];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    /* A UUID: anything else is not trusted to tell boots apart. */
    if (strlen(buf) != 36 || strspn(buf, "0123456789abcdef-") != 36)
        return;
    memcpy(out, buf, 37);
}

/* ---------- paths: rows in unsettled_paths ---------- */

static const char sql_mark[] =
    "INSERT OR REPLACE INTO unsettled_paths (basename, boot, registered) VALUES (?1, ?2, ?3)";
static const char sql_settle[] =
    "DELETE FROM unsettled_paths WHERE boot = ?1 AND registered < ?2";
static const char sql_oldest[] = "SELECT min(registered) FROM unsettled_paths WHERE boot = ?1";
static const char sql_other_boot[] = "SELECT 1 FROM unsettled_paths WHERE boot <> ?1 LIMIT 1";
static const char sql_count[] = "SELECT count(*) FROM unsettled_paths";
static const char sql_checked[] = "DELETE FROM unsettled_paths WHERE basename = ?1 AND boot <> ?2";
static const char sql_other_paths[] =
    "SELECT u.basename, p.digest, p.content_hash FROM unsettled_paths u"
    " LEFT JOIN paths p ON p.basename = u.basename WHERE u.boot <> ?1 ORDER BY u.basename";

/* Settle this boot's rows registered before time before. */
static int settle_rows(plan_store *s, int64_t before)
{
    sqlite3_stmt *st = db_prepare(s, sql_settle, "settling registered paths");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, s->boot_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before);
    int rc = sqlite3_step(st);
    db_release(s, st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "settling registered paths");
}

int settle_mark_paths(plan_store *s, const db_path_row *rows, size_t n)
{
    if (store_flushes(s))
        return s->flushed_before ? settle_rows(s, s->flushed_before) : 0;
    sqlite3_stmt *st = db_prepare(s, sql_mark, "recording unsettled paths");
    if (!st)
        return PLAN_ERR_DB;
    int64_t now = (int64_t)time(NULL);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        sqlite3_bind_text(st, 1, rows[i].basename, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(s, "recording unsettled paths");
        sqlite3_reset(st);
    }
    db_release(s, st);
    return rc;
}

/* ---------- generations: files in var/unsettled ---------- */

static char *generation_mark(const plan_store *s, const char *profile, unsigned number)
{
    return plan_xasprintf("%s/" GENERATION_MARK_PREFIX "%u.%s", s->unsettled_dir, number,
                          profile);
}

int settle_mark_generation(plan_store *s, const char *profile, unsigned number)
{
    if (store_flushes(s))
        return 0;
    /* Written aside (under a name no walk takes for a marker) and renamed:
     * an open that reads it meanwhile must never see it empty, which
     * would say "another boot". */
    char *file = generation_mark(s, profile, number);
    char *aside = plan_xasprintf("%s/.new-%ld", s->unsettled_dir, (long)getpid());
    int fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? -errno : plan_fs_write_all(fd, s->boot_id, strlen(s->boot_id));
    if (fd >= 0 && close(fd) != 0 && !e)
        e = -errno;
    if (!e && rename(aside, file) != 0)
        e = -errno;
    if (e)
        unlink(aside);
    int rc = e ? plan_fail_errno(s->ctx, PLAN_ERR_IO, -e, "cannot write '%s'", file) : 0;
    free(aside);
    free(file);
    return rc;
}

void settle_forget_generation(plan_store *s, const char *profile, unsigned number)
{
    char *file = generation_mark(s, profile, number);
    unlink(file);
    free(file);
}

/* "generation.<N>.<profile>" -> N and profile (borrowed); false if the
 * name has another shape (a marker being written is ".new-<pid>"). */
static bool parse_generation_mark(const char *name, unsigned *number, const char **profile)
{
    size_t k = strlen(GENERATION_MARK_PREFIX);
    if (strncmp(name, GENERATION_MARK_PREFIX, k) != 0)
        return false;
    char *end;
    unsigned long v = strtoul(name + k, &end, 10);
    if (name[k] < '1' || name[k] > '9' || v > 1000000000UL || *end != '.' ||
        plan_profile_check_name(end + 1) != 0)
        return false;
    *number = (unsigned)v;
    *profile = end + 1;
    return true;
}

/* The boot a generation marker was written in ("" when its content did not
 * survive: then it is another boot's). */
static void marker_boot(int dirfd, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

/* Is someone changing the profile now (its writers' lock is taken)? */
static bool profile_busy(const plan_store *s, const char *profile)
{
    char *lock = plan_xasprintf("%s/profiles/%s/.lock", s->root, profile);
    int fd = open(lock, O_RDONLY | O_CLOEXEC);
    free(lock);
    if (fd < 0)
        return false;
    bool busy = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return busy;
}

typedef enum marks_pass {
    MARKS_COUNT,       /* count every marker */
    MARKS_COUNT_OTHER, /* count the markers of other boots */
    MARKS_OLDEST,      /* lower *when to the oldest of this boot's */
    MARKS_SETTLE,      /* remove this boot's markers older than *when */
    MARKS_RECOVER,     /* check other boots' generations, then remove their markers */
} marks_pass;

/* One walk over the generation markers; returns what it counted. */
static uint64_t walk_marks(plan_store *s, marks_pass pass, int64_t *when)
{
    DIR *d = opendir(s->unsettled_dir);
    if (!d)
        return 0;
    uint64_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned number;
        const char *profile;
        if (!parse_generation_mark(de->d_name, &number, &profile))
            continue;
        if (pass == MARKS_COUNT) {
            count++;
            continue;
        }
        char boot[48];
        marker_boot(dirfd(d), de->d_name, boot, sizeof(boot));
        bool ours = s->boot_id[0] && !strcmp(boot, s->boot_id);
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        if (pass == MARKS_COUNT_OTHER) {
            count += !ours;
        } else if (pass == MARKS_OLDEST && ours && (int64_t)st.st_mtime < *when) {
            *when = (int64_t)st.st_mtime;
        } else if (pass == MARKS_SETTLE && ours && (int64_t)st.st_mtime < *when &&
                   !profile_busy(s, profile)) {
            /* A commit still running may write after the flush: its marker
             * stays until a later one. */
            unlinkat(dirfd(d), de->d_name, 0);
        } else if (pass == MARKS_RECOVER && !ours) {
            profile_recover_generation(s, profile, number);
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    closedir(d);
    return count;
}

/* ---------- settling ---------- */

int plan_store_settle(plan_store *s)
{
    int64_t started;
    int rc = store_syncfs(s, s->store_dir, &started);
    if (rc || !s->boot_id[0])
        return rc;
    rc = settle_rows(s, started);
    walk_marks(s, MARKS_SETTLE, &started);
    return rc;
}

void settle_due(plan_store *s)
{
    sqlite3_stmt *st = db_prepare(s, sql_oldest, "looking for unsettled paths");
    if (!st) {
        plan_ctx_clear_error(s->ctx);
        return;
    }
    sqlite3_bind_text(st, 1, s->boot_id, -1, SQLITE_STATIC);
    int64_t now = (int64_t)time(NULL), oldest = now;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        oldest = sqlite3_column_int64(st, 0);
    db_release(s, st);
    walk_marks(s, MARKS_OLDEST, &oldest);
    /* A failed flush only leaves the records for a later one. */
    if (now - oldest > SETTLE_AFTER_SECONDS && plan_store_settle(s))
        plan_ctx_clear_error(s->ctx);
}

int plan_store_unsettled(plan_store *s, uint64_t *paths, uint64_t *generations)
{
    sqlite3_stmt *st = db_prepare(s, sql_count, "counting unsettled paths");
    if (!st)
        return PLAN_ERR_DB;
    int step = sqlite3_step(st);
    *paths = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    db_release(s, st);
    if (step != SQLITE_ROW)
        return db_fail(s, "counting unsettled paths");
    *generations = walk_marks(s, MARKS_COUNT, NULL);
    return 0;
}

/* ---------- after a reboot ---------- */

typedef struct unsettled_path {
    char *basename, *digest, *content_hash; /* digest NULL: no longer registered */
} unsettled_path;

static int other_boot_paths(plan_store *s, unsettled_path **out, size_t *n_out)
{
    sqlite3_stmt *st = db_prepare(s, sql_other_paths, "listing unsettled paths");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, s->boot_id, -1, SQLITE_STATIC);
    unsettled_path *list = NULL;
    size_t n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            list = plan_xrealloc(list, cap * sizeof(*list));
        }
        const char *d = (const char *)sqlite3_column_text(st, 1);
        const char *h = (const char *)sqlite3_column_text(st, 2);
        list[n++] = (unsettled_path){plan_xstrdup((const char *)sqlite3_column_text(st, 0)),
                                     d ? plan_xstrdup(d) : NULL, h ? plan_xstrdup(h) : NULL};
    }
    db_release(s, st);
    *out = list;
    *n_out = n;
    return step == SQLITE_DONE ? 0 : db_fail(s, "listing unsettled paths");
}

typedef enum verdict { WHOLE, DAMAGED, UNKNOWN } verdict;

/* Does the tree at basename hash to what was registered?  UNKNOWN when it
 * could not be read to the end (out of descriptors, no permission...):
 * that says nothing about what reached the disk. */
static verdict path_verdict(plan_store *s, const unsettled_path *u)
{
    char *path = store_path_of(s, u->basename);
    struct stat st;
    int e = lstat(path, &st) == 0 ? 0 : errno;
    verdict v = DAMAGED; /* missing, or not a directory */
    if (!e && S_ISDIR(st.st_mode)) {
        plan_hash h;
        char text[PLAN_HASH_TEXT_LEN + 1];
        if (plan_store_hash_tree(s->ctx, path, u->digest, s->threads, &h, NULL) == 0) {
            plan_hash_format(&h, text);
            v = strcmp(text, u->content_hash) ? DAMAGED : WHOLE;
        } else {
            plan_warn(s->ctx, "cannot check '%s', registered shortly before the machine "
                              "stopped: %s; it is checked again at the next start",
                      path, plan_ctx_error(s->ctx));
            v = UNKNOWN;
        }
    } else if (e && e != ENOENT && e != ENOTDIR) {
        v = UNKNOWN;
    }
    plan_ctx_clear_error(s->ctx);
    free(path);
    return v;
}

/* A damaged path leaves the store; its row stays, as for any registered
 * path that is missing, so that install, env and 'plan store repair'
 * fetch it again.  false when it could not be moved out. */
static bool drop_damaged(plan_store *s, const unsettled_path *u)
{
    char *path = store_path_of(s, u->basename);
    char *aside = plan_xasprintf("%s/%s.unsettled", s->tmp_dir, u->digest);
    struct stat st;
    plan_fs_rmtree(aside);
    bool exists = lstat(path, &st) == 0;
    bool gone = !exists || rename(path, aside) == 0;
    if (exists && gone)
        plan_fs_rmtree(aside);
    if (gone)
        plan_warn(s->ctx, "'%s' was registered shortly before the machine stopped and did "
                          "not reach the disk whole: %s; 'plan install', 'plan env' or 'plan "
                          "store repair' fetch it again",
                  path, exists ? "removed from the store" : "it is missing");
    else
        plan_warn(s->ctx, "'%s' was registered shortly before the machine stopped and did "
                          "not reach the disk whole, and cannot be moved out of the store "
                          "(%s): remove it, then 'plan store repair' fetches it again",
                  path, strerror(errno));
    free(aside);
    free(path);
    return gone;
}

/* Forget the record of a path checked (or no longer registered). */
static void forget_checked(plan_store *s, const char *basename)
{
    sqlite3_stmt *st = db_prepare(s, sql_checked, "settling a checked path");
    if (!st) {
        plan_ctx_clear_error(s->ctx);
        return;
    }
    sqlite3_bind_text(st, 1, basename, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->boot_id, -1, SQLITE_STATIC);
    sqlite3_step(st);
    db_release(s, st);
}

/* Check every path an earlier boot left unsettled; the basenames whose
 * check came to an end go to done (the others keep their records). */
static void recover_paths(plan_store *s, plan_strlist *done)
{
    unsettled_path *list = NULL;
    size_t n = 0;
    if (other_boot_paths(s, &list, &n)) {
        plan_ctx_clear_error(s->ctx);
        return;
    }
    const char *phase = "checking paths written before the last shutdown";
    if (n)
        plan_emit_phase(s->ctx, phase, n, false);
    for (size_t i = 0; i < n; i++) {
        unsettled_path *u = &list[i];
        int lock = -1;
        if (!u->digest) {
            plan_strlist_add(done, u->basename); /* collected since */
        } else if (digest_lock(s, u->digest, &lock) == 0) {
            verdict v = path_verdict(s, u);
            if (v == WHOLE || (v == DAMAGED && drop_damaged(s, u)))
                plan_strlist_add(done, u->basename);
            digest_unlock(lock);
        }
        plan_ctx_clear_error(s->ctx);
        plan_emit_progress(s->ctx, phase, i + 1, n, false);
        free(u->basename);
        free(u->digest);
        free(u->content_hash);
    }
    if (n)
        plan_emit_done(s->ctx, phase);
    free(list);
}

static bool other_boot_rows(plan_store *s)
{
    sqlite3_stmt *st = db_prepare(s, sql_other_boot, "looking for unsettled paths");
    if (!st) {
        plan_ctx_clear_error(s->ctx);
        return false;
    }
    sqlite3_bind_text(st, 1, s->boot_id, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    db_release(s, st);
    return found;
}

static bool left_by_another_boot(plan_store *s)
{
    return other_boot_rows(s) || walk_marks(s, MARKS_COUNT_OTHER, NULL) > 0;
}

void settle_recover(plan_store *s)
{
    if (!left_by_another_boot(s))
        return;
    /* One process checks; the others wait for it, so that nobody uses a
     * path before it is known to be whole. */
    char *lock_path = plan_path_join(s->locks_dir, "settle.lock");
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lock_path);
    while (lock >= 0 && flock(lock, LOCK_EX) != 0 && errno == EINTR)
        ;
    /* Another process may have checked it all while this one waited. */
    if (left_by_another_boot(s)) {
        plan_strlist done;
        plan_strlist_init(&done);
        recover_paths(s, &done);
        walk_marks(s, MARKS_RECOVER, NULL);
        /* The removals reach the disk before the records of what was
         * checked go: a second power cut must not leave damage unchecked.
         * Without that flush, the records stay for the next start. */
        if (store_syncfs(s, s->store_dir, NULL) == 0)
            for (size_t i = 0; i < done.len; i++)
                forget_checked(s, done.items[i]);
        plan_ctx_clear_error(s->ctx);
        plan_strlist_release(&done);
    }
    if (lock >= 0)
        close(lock);
}
