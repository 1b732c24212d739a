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
    char *file = generation_mark(s, profile, number);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? -errno : plan_fs_write_all(fd, s->boot_id, strlen(s->boot_id));
    if (fd >= 0 && close(fd) != 0 && !e)
        e = -errno;
    int rc = e ? plan_fail_errno(s->ctx, PLAN_ERR_IO, -e, "cannot write '%s'", file) : 0;
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
 * name has another shape. */
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

typedef enum marks_pass { MARKS_SETTLE, MARKS_RECOVER, MARKS_OLDEST } marks_pass;

/* One walk over the generation markers.  MARKS_SETTLE removes this boot's
 * markers last changed before *when; MARKS_RECOVER checks other boots'
 * generations and removes their markers; MARKS_OLDEST lowers *when to the
 * oldest of this boot's. */
static void walk_marks(plan_store *s, marks_pass pass, int64_t *when)
{
    DIR *d = opendir(s->unsettled_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned number;
        const char *profile;
        if (!parse_generation_mark(de->d_name, &number, &profile))
            continue;
        char boot[48];
        marker_boot(dirfd(d), de->d_name, boot, sizeof(boot));
        bool ours = s->boot_id[0] && !strcmp(boot, s->boot_id);
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        if (pass == MARKS_OLDEST && ours && (int64_t)st.st_mtime < *when) {
            *when = (int64_t)st.st_mtime;
        } else if (pass == MARKS_SETTLE && ours && (int64_t)st.st_mtime < *when) {
            unlinkat(dirfd(d), de->d_name, 0);
        } else if (pass == MARKS_RECOVER && !ours) {
            profile_recover_generation(s, profile, number);
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    closedir(d);
}

/* ---------- settling ---------- */

static int flush_store(plan_store *s, int64_t *started)
{
    int fd = open(s->store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", s->store_dir);
    *started = (int64_t)time(NULL);
    int rc = syncfs(fd) == 0 ? 0 : plan_fail_errno(s->ctx, PLAN_ERR_IO, errno,
                                                   "cannot flush '%s' to disk", s->store_dir);
    close(fd);
    return rc;
}

int plan_store_settle(plan_store *s)
{
    int64_t started;
    int rc = flush_store(s, &started);
    if (rc)
        return rc;
    if (started > s->flushed_before)
        s->flushed_before = started;
    if (!s->boot_id[0])
        return 0;
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
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM unsettled_paths", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, "counting unsettled paths");
    int step = sqlite3_step(st);
    *paths = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (step != SQLITE_ROW)
        return db_fail(s, "counting unsettled paths");
    *generations = 0;
    DIR *d = opendir(s->unsettled_dir);
    struct dirent *de;
    unsigned number;
    const char *profile;
    while (d && (de = readdir(d)) != NULL)
        if (parse_generation_mark(de->d_name, &number, &profile))
            (*generations)++;
    if (d)
        closedir(d);
    return 0;
}

/* ---------- after a reboot ---------- */

typedef struct unsettled_path {
    char *basename, *digest, *content_hash; /* digest NULL: no longer registered */
} unsettled_path;

static int other_boot_paths(plan_store *s, unsettled_path **out, size_t *n_out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT u.basename, p.digest, p.content_hash FROM unsettled_paths u"
                           " LEFT JOIN paths p ON p.basename = u.basename WHERE u.boot <> ?1"
                           " ORDER BY u.basename",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "listing unsettled paths");
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
    sqlite3_finalize(st);
    *out = list;
    *n_out = n;
    return step == SQLITE_DONE ? 0 : db_fail(s, "listing unsettled paths");
}

/* Does the tree at basename hash to what was registered? */
static bool path_whole(plan_store *s, const unsettled_path *u)
{
    char *path = store_path_of(s, u->basename);
    struct stat st;
    bool whole = false;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        plan_hash h;
        char text[PLAN_HASH_TEXT_LEN + 1];
        if (plan_store_hash_tree(s->ctx, path, u->digest, s->threads, &h, NULL) == 0) {
            plan_hash_format(&h, text);
            whole = !strcmp(text, u->content_hash);
        }
        plan_ctx_clear_error(s->ctx);
    }
    free(path);
    return whole;
}

/* A damaged path leaves the store; its row stays, as for any registered
 * path that is missing, so that install, env and 'plan store repair'
 * fetch it again. */
static void drop_damaged(plan_store *s, const unsettled_path *u)
{
    char *path = store_path_of(s, u->basename);
    char *aside = plan_xasprintf("%s/%s.unsettled", s->tmp_dir, u->digest);
    struct stat st;
    plan_fs_rmtree(aside);
    bool exists = lstat(path, &st) == 0;
    if (exists && rename(path, aside) == 0)
        plan_fs_rmtree(aside);
    plan_warn(s->ctx, "'%s' was registered shortly before the machine stopped and did not "
                      "reach the disk whole: %s; 'plan install', 'plan env' or 'plan store "
                      "repair' fetch it again",
              path, exists ? "removed from the store" : "it is missing");
    free(aside);
    free(path);
}

static void recover_paths(plan_store *s)
{
    unsettled_path *list = NULL;
    size_t n = 0;
    if (other_boot_paths(s, &list, &n)) {
        plan_ctx_clear_error(s->ctx);
        return;
    }
    if (n)
        plan_emit_phase(s->ctx, "checking paths written before the last shutdown", n, false);
    for (size_t i = 0; i < n; i++) {
        unsettled_path *u = &list[i];
        int lock = -1;
        if (u->digest && digest_lock(s, u->digest, &lock) == 0) {
            if (!path_whole(s, u))
                drop_damaged(s, u);
            digest_unlock(lock);
        }
        plan_ctx_clear_error(s->ctx);
        plan_emit_progress(s->ctx, "checking paths written before the last shutdown", i + 1,
                           n, false);
        free(u->basename);
        free(u->digest);
        free(u->content_hash);
    }
    if (n)
        plan_emit_done(s->ctx, "checking paths written before the last shutdown");
    free(list);
}

static bool other_boot_marks(plan_store *s)
{
    DIR *d = opendir(s->unsettled_dir);
    if (!d)
        return false;
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d)) != NULL) {
        unsigned number;
        const char *profile;
        if (!parse_generation_mark(de->d_name, &number, &profile))
            continue;
        char boot[48];
        marker_boot(dirfd(d), de->d_name, boot, sizeof(boot));
        found = !s->boot_id[0] || strcmp(boot, s->boot_id) != 0;
    }
    closedir(d);
    return found;
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

void settle_recover(plan_store *s)
{
    if (!other_boot_rows(s) && !other_boot_marks(s))
        return;
    /* One process checks; the others wait for it, so that nobody uses a
     * path before it is known to be whole. */
    char *lock_path = plan_path_join(s->locks_dir, "settle.lock");
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lock_path);
    while (lock >= 0 && flock(lock, LOCK_EX) != 0 && errno == EINTR)
        ;
    /* Another process may have checked it all while this one waited. */
    if (!other_boot_rows(s) && !other_boot_marks(s)) {
        if (lock >= 0)
            close(lock);
        return;
    }
    recover_paths(s);
    int64_t unused = 0;
    walk_marks(s, MARKS_RECOVER, &unused);
    /* The removals reach the disk before the records of what was checked
     * go: a second power cut must not leave damage unchecked. */
    int fd = open(s->store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)syncfs(fd);
        close(fd);
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM unsettled_paths WHERE boot <> ?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, s->boot_id, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (lock >= 0)
        close(lock);
}
