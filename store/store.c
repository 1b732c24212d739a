/* Opening the store, locks, crash recovery, and adding trees.
 *
 * Registration protocol (docs/formats/store-path.md, "Atomicity"):
 *   1. the tree is written into a locked work directory in <store>/.tmp,
 *      sealed (read-only, mtime 1) and flushed with syncfs;
 *   2. under the per-digest locks, one intent file <var/pending>/batch-<id>
 *      naming every path is made durable (a build's output has its own,
 *      <var/pending>/<basename>);
 *   3. in one sqlite transaction the row is inserted, the tree renamed to
 *      its final name, the store directory fsynced, and the transaction
 *      committed;
 *   4. the intent file is removed.
 * A crash before 3 leaves only a work directory, which nobody holds locked
 * and which the next open removes.  A crash inside 3 leaves an intent file:
 * the next open removes the final path if the row did not commit.  So a
 * store path is either complete and registered, or absent. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *store_path_of(const plan_store *s, const char *basename)
{
    return plan_path_join(s->store_dir, basename);
}

char *make_basename(const char *digest, const char *name, const char *version)
{
    return plan_xasprintf("%s-%s-%s", digest, name, version);
}

const char *plan_store_dir(const plan_store *s) { return s->store_dir; }
const char *plan_store_root(const plan_store *s) { return s->root; }
plan_ctx *plan_store_ctx(const plan_store *s) { return s->ctx; }
void plan_store_set_threads(plan_store *s, unsigned threads) { s->threads = threads; }

/* ---------- locks ---------- */

/* Digest locks are striped over 1024 files named by the digest's first two
 * characters: unrelated paths rarely share a stripe, and the lock
 * directory never grows with the store. */
int digest_lock(plan_store *s, const char *digest, int *fd_out)
{
    char name[8];
    snprintf(name, sizeof(name), "%.2s.lock", digest);
    char *path = plan_path_join(s->locks_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot open lock '%s'", path);
        free(path);
        return rc;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot lock '%s'", path);
            close(fd);
            free(path);
            return rc;
        }
    }
    free(path);
    *fd_out = fd;
    return 0;
}

int digest_trylock(plan_store *s, const char *digest)
{
    char name[8];
    snprintf(name, sizeof(name), "%.2s.lock", digest);
    char *path = plan_path_join(s->locks_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void digest_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the last descriptor releases the flock */
}

/* ---------- work directories ---------- */

static int work_dir_create_unguarded(plan_store *s, work_dir *w);

/* Can a directory made 0555 in dirfd take new entries?  (Its hidden name
 * can clash with no store path's.) */
static bool sealed_dirs_writable(int dirfd)
{
    if (mkdirat(dirfd, ".probe", 0555) != 0)
        return false;
    bool ok = mkdirat(dirfd, ".probe/entry", 0700) == 0;
    if (ok)
        unlinkat(dirfd, ".probe/entry", AT_REMOVEDIR);
    unlinkat(dirfd, ".probe", AT_REMOVEDIR);
    return ok;
}

/* Work directories are created and locked under a shared hold of
 * var/locks/tmp.lock, and the cleanup scans under an exclusive one, so the
 * cleanup of another process never sees a directory that exists but is
 * not locked yet. */
static int tmp_guard(plan_store *s, int how)
{
    char *path = plan_path_join(s->locks_dir, "tmp.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0)
        return -1;
    while (flock(fd, how) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

int work_dir_create(plan_store *s, work_dir *w)
{
    int guard = tmp_guard(s, LOCK_SH);
    int rc = work_dir_create_unguarded(s, w);
    if (guard >= 0)
        close(guard);
    return rc;
}

static int work_dir_create_unguarded(plan_store *s, work_dir *w)
{
    unsigned char rnd[10];
    char suffix[17];
    randombytes_buf(rnd, sizeof(rnd));
    plan_base32_encode(rnd, sizeof(rnd), suffix);
    w->path = plan_path_join(s->tmp_dir, suffix);
    if (mkdir(w->path, 0700) != 0) {
        int rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno,
                                 "cannot create a work directory '%s'", w->path);
        free(w->path);
        w->path = NULL;
        return rc;
    }
    w->lock_fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->lock_fd < 0 || flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot lock '%s'", w->path);
        if (w->lock_fd >= 0)
            close(w->lock_fd);
        rmdir(w->path);
        free(w->path);
        w->path = NULL;
        return rc;
    }
    w->sealed_dirs_writable = sealed_dirs_writable(w->lock_fd);
    return 0;
}

void work_dir_remove(work_dir *w)
{
    if (!w->path)
        return;
    plan_fs_rmtree(w->path);
    close(w->lock_fd);
    free(w->path);
    w->path = NULL;
}

/* ---------- crash recovery ---------- */

/* Remove work directories that no live process holds. */
static void clean_work_dirs(plan_store *s)
{
    int guard = tmp_guard(s, LOCK_EX);
    DIR *dir = opendir(s->tmp_dir);
    if (!dir) {
        if (guard >= 0)
            close(guard);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        int fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            unlinkat(dirfd(dir), de->d_name, 0);
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            plan_info(s->ctx, "removing '%s/%s', left over by an interrupted operation",
                      s->tmp_dir, de->d_name);
            plan_fs_rmtree_at(dirfd(dir), de->d_name);
        }
        close(fd);
    }
    closedir(dir);
    if (guard >= 0)
        close(guard);
}

/* A registration's intent file: "batch-" and a random id (no basename
 * has a '-' where this has its first). */
#define BATCH_INTENT_PREFIX "batch-"

bool intent_line_ok(const char *line)
{
    size_t n = strlen(line);
    return n > PLAN_DIGEST_CHARS + 1 && n < 256 && line[0] != '.' &&
           line[PLAN_DIGEST_CHARS] == '-' && !strchr(line, '/');
}

/* The paths of an interrupted registration that did not commit are
 * removed; false when one of them is being registered right now. */
static bool resolve_one(plan_store *s, const char *base)
{
    int fd = digest_trylock(s, base);
    if (fd < 0)
        return false; /* another process is registering it right now */
    int known = db_has_path(s, base);
    if (known < 0) { /* cannot tell: keep the intent for a later open */
        digest_unlock(fd);
        return false;
    }
    if (known == 0) {
        char *path = store_path_of(s, base);
        plan_info(s->ctx, "removing '%s': its registration was interrupted", path);
        plan_fs_rmtree(path);
        free(path);
    }
    digest_unlock(fd);
    return true;
}

/* A batch's intent file lists its basenames, one a line; its writer holds
 * a lock on it until it is done. */
static bool resolve_batch(plan_store *s, int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        close(fd);
        return false; /* its registration is still running */
    }
    plan_buf text;
    plan_buf_init(&text);
    bool all = plan_fs_read_fd(fd, 256u << 20, &text) == 0;
    close(fd);
    plan_buf_addc(&text, '\0');
    for (char *line = text.data, *next; all && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (intent_line_ok(line))
            all = resolve_one(s, line);
    }
    plan_buf_release(&text);
    return all;
}

/* Finish registrations that a crash interrupted: keep what committed,
 * remove what did not. */
static void resolve_pending(plan_store *s)
{
    DIR *dir = opendir(s->pending_dir);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *base = de->d_name;
        if (!strncmp(base, BATCH_INTENT_PREFIX, strlen(BATCH_INTENT_PREFIX))) {
            if (resolve_batch(s, dirfd(dir), base))
                unlinkat(dirfd(dir), base, 0);
            continue;
        }
        if (base[0] == '.' && strcmp(base, ".") != 0 && strcmp(base, "..") != 0) {
            /* An intent (a batch's or a build's) that never got its name:
             * nothing was renamed or made yet.  Its writer locks it just
             * after creating it, so a fresh one may be unlocked for an
             * instant: only old ones go. */
            struct stat st;
            int fd = openat(dirfd(dir), base, O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && fstat(fd, &st) == 0 && time(NULL) - st.st_mtime > 600 &&
                flock(fd, LOCK_EX | LOCK_NB) == 0)
                unlinkat(dirfd(dir), base, 0);
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (strlen(base) < PLAN_DIGEST_CHARS)
            continue;
        /* A build holds a lock on its own intent file while it runs. */
        int mine = openat(dirfd(dir), base, O_RDONLY | O_CLOEXEC);
        if (mine < 0)
            continue;
        if (flock(mine, LOCK_EX | LOCK_NB) != 0) {
            close(mine);
            continue;
        }
        if (resolve_one(s, base))
            unlinkat(dirfd(dir), base, 0);
        close(mine);
    }
    closedir(dir);
}

/* ---------- open / close ---------- */

int plan_store_open(plan_ctx *ctx, const char *root, plan_store **out)
{
    return plan_store_open_with(ctx, root, NULL, out);
}

int plan_store_open_with(plan_ctx *ctx, const char *root, const plan_store_options *opts,
                         plan_store **out)
{
    if (sodium_init() < 0)
        return plan_fail(ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    plan_store *s = plan_xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    s->root = plan_path_absolute(root);
    if (!s->root) {
        free(s);
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot resolve root '%s'", root);
    }
    s->store_dir = plan_path_join(s->root, "store");
    s->tmp_dir = plan_path_join(s->store_dir, ".tmp");
    s->links_dir = plan_path_join(s->store_dir, ".links");
    s->locks_dir = plan_path_join(s->root, "var/locks");
    s->pending_dir = plan_path_join(s->root, "var/pending");
    s->gc_dir = plan_path_join(s->root, "var/gc");
    s->unsettled_dir = plan_path_join(s->root, "var/unsettled");
    s->gc_fd = s->session_fd = -1;
    if (opts && opts->boot_id)
        snprintf(s->boot_id, sizeof(s->boot_id), "%s", opts->boot_id);
    else
        settle_read_boot_id(s->boot_id);
    /* Without a boot id a reboot cannot be told: nothing is deferred. */
    s->durability = opts && opts->durability == PLAN_DURABILITY_DEFERRED && s->boot_id[0]
                        ? PLAN_DURABILITY_DEFERRED
                        : PLAN_DURABILITY_IMMEDIATE;
    char *db_dir = plan_path_join(s->root, "var/db");
    const char *dirs[] = {s->store_dir, s->tmp_dir,         s->locks_dir, s->pending_dir,
                          s->gc_dir,    s->unsettled_dir, db_dir};
    int rc = 0;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !rc; i++) {
        int r = plan_fs_mkdirs(dirs[i], 0755);
        if (r)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, -r,
                                 "cannot create '%s' (is --root '%s' writable?)", dirs[i],
                                 s->root);
    }
    /* The store directory is part of every digest, so it must have one
     * spelling: the real path, whatever symlinks lead to the root. */
    char *real = rc ? NULL : realpath(s->root, NULL);
    if (real && strcmp(real, s->root) != 0) {
        free(s->root);
        free(s->store_dir);
        free(s->tmp_dir);
        free(s->links_dir);
        s->root = real;
        s->store_dir = plan_path_join(s->root, "store");
        s->tmp_dir = plan_path_join(s->store_dir, ".tmp");
        s->links_dir = plan_path_join(s->store_dir, ".links");
    } else {
        free(real);
    }
    if (!rc) {
        char *db_path = plan_path_join(db_dir, "plan.db");
        rc = db_open(s, db_path);
        free(db_path);
    }
    free(db_dir);
    if (rc) {
        plan_store_close(s);
        return rc;
    }
    resolve_pending(s);
    gc_resume(s);
    clean_work_dirs(s);
    settle_recover(s);
    *out = s;
    return 0;
}

void plan_store_close(plan_store *s)
{
    if (!s)
        return;
    session_close(s);
    if (s->gc_fd >= 0)
        close(s->gc_fd);
    db_close(s);
    for (size_t i = 0; i < s->n_listings; i++) {
        plan_strlist_release(&s->listings[i].paths);
        free(s->listings[i].types);
        plan_buf_release(&s->listings[i].manifest);
    }
    free(s->listings);
    plan_strmap_release(&s->listing_at);
    free(s->gc_dir);
    free(s->unsettled_dir);
    free(s->root);
    free(s->store_dir);
    free(s->tmp_dir);
    free(s->links_dir);
    free(s->locks_dir);
    free(s->pending_dir);
    free(s);
}

/* ---------- listings of what this process registered ---------- */

/* Entries kept at most: a few MiB, plenty for the farm of one install. */
#define LISTED_ENTRIES_MAX 200000

void store_listing_keep(plan_store *s, const char *basename, const tree *t,
                        plan_buf *manifest)
{
    if (s->listed_entries + t->len > LISTED_ENTRIES_MAX ||
        plan_strmap_get(&s->listing_at, basename) >= 0)
        return;
    if (s->n_listings == s->cap_listings) {
        s->cap_listings = s->cap_listings ? 2 * s->cap_listings : 64;
        s->listings = plan_xrealloc(s->listings, s->cap_listings * sizeof(*s->listings));
    }
    store_listing *l = &s->listings[s->n_listings];
    plan_strlist_init(&l->paths);
    l->manifest = *manifest;
    plan_buf_init(manifest);
    l->types = plan_xmalloc(t->len ? t->len : 1);
    for (size_t i = 0; i < t->len; i++) {
        plan_strlist_add(&l->paths, t->items[i].path);
        l->types[i] = t->items[i].type == TREE_DIR    ? 'd'
                      : t->items[i].type == TREE_FILE ? 'f'
                                                      : 'l';
    }
    plan_strmap_put(&s->listing_at, basename, s->n_listings++);
    s->listed_entries += t->len;
}

const store_listing *store_listing_of(const plan_store *s, const char *path)
{
    size_t n = strlen(s->store_dir);
    if (!s->n_listings || strncmp(path, s->store_dir, n) != 0 || path[n] != '/')
        return NULL;
    ssize_t i = plan_strmap_get(&s->listing_at, path + n + 1);
    return i >= 0 ? &s->listings[i] : NULL;
}

const char *plan_store_written_manifest(const plan_store *s, const char *path, size_t *len)
{
    const store_listing *l = store_listing_of(s, path);
    if (!l || !l->manifest.len)
        return NULL;
    *len = l->manifest.len;
    return l->manifest.data;
}

/* ---------- resolving user arguments ---------- */

static int lookup_basename(plan_store *s, const char *sql, const char *key, char **out)
{
    sqlite3_stmt *st = db_prepare(s, sql, "looking up a path");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = plan_xstrdup((const char *)sqlite3_column_text(st, 0));
    db_release(s, st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return PLAN_ERR_NOT_FOUND;
    return db_fail(s, "looking up a path");
}

static bool is_digest(const char *s)
{
    if (strlen(s) != PLAN_DIGEST_CHARS)
        return false;
    for (const char *p = s; *p; p++)
        if (!plan_base32_valid_char(*p))
            return false;
    return true;
}

int plan_store_resolve(plan_store *s, const char *arg, char **basename)
{
    char *candidate = NULL;
    if (strchr(arg, '/')) {
        /* A path: follow symlinks (a result link points into the store),
         * then take the first component below the store directory. */
        char *abs = realpath(arg, NULL);
        if (!abs)
            abs = plan_path_absolute(arg);
        size_t n = strlen(s->store_dir);
        if (abs && strncmp(abs, s->store_dir, n) == 0 && abs[n] == '/') {
            const char *rest = abs + n + 1;
            const char *slash = strchr(rest, '/');
            candidate = slash ? plan_xstrndup(rest, (size_t)(slash - rest)) : plan_xstrdup(rest);
        }
        free(abs);
        if (!candidate)
            return plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                             "'%s' is not inside the store '%s': give a store path, its "
                             "basename or its digest",
                             arg, s->store_dir);
    } else {
        candidate = plan_xstrdup(arg);
    }
    int rc;
    if (is_digest(candidate))
        rc = lookup_basename(s, "SELECT basename FROM paths WHERE digest = ?1", candidate,
                             basename);
    else
        rc = lookup_basename(s, "SELECT basename FROM paths WHERE basename = ?1", candidate,
                             basename);
    if (rc == PLAN_ERR_NOT_FOUND)
        plan_fail(s->ctx, rc,
                  "'%s' is not a registered store path (see 'plan store verify' for paths "
                  "the database does not know)",
                  arg);
    free(candidate);
    return rc;
}

/* ---------- writing trees ---------- */

typedef struct copy_arg {
    const char *src, *dst;
    int src_fd, dst_fd;
    bool seal;           /* read-only, mtime 1: a store path in the making */
    bool writeback;      /* start writing files back early: a flush follows */
} copy_arg;

int copy_fd_data(int in, int out, uint64_t size, uint8_t *scratch, uint64_t *copied)
{
    *copied = 0;
    bool use_cfr = true;
    while (*copied < size || !use_cfr) {
        ssize_t n;
        if (use_cfr) {
            n = copy_file_range(in, NULL, out, NULL, (size_t)(size - *copied), 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP)) {
                use_cfr = false;
                continue;
            }
        } else {
            n = read(in, scratch, TREE_SCRATCH_BYTES);
            if (n > 0) {
                ssize_t off = 0;
                while (off < n) {
                    ssize_t w = write(out, scratch + off, (size_t)(n - off));
                    if (w < 0) {
                        if (errno == EINTR)
                            continue;
                        return -errno;
                    }
                    off += w;
                }
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        *copied += (uint64_t)n;
    }
    return 0;
}

static int copy_fd_hashing(int in, int out, uint8_t *scratch, uint64_t *copied,
                           plan_hash *digest)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PLAN_HASH_BYTES);
    *copied = 0;
    for (;;) {
        ssize_t n = read(in, scratch, TREE_SCRATCH_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        crypto_generichash_update(&st, scratch, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, scratch + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            off += w;
        }
        *copied += (uint64_t)n;
    }
    crypto_generichash_final(&st, digest->bytes, PLAN_HASH_BYTES);
    return 0;
}

static int copy_one_file(void *p, tree_entry *e, uint8_t *scratch, char **msg)
{
    copy_arg *a = p;
    int in = openat(a->src_fd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) {
        *msg = plan_xasprintf("cannot open '%s/%s': %s", a->src, e->path, strerror(errno));
        return PLAN_ERR_IO;
    }
    int out = openat(a->dst_fd, e->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                     0600);
    if (out < 0) {
        *msg = plan_xasprintf("cannot create '%s/%s': %s", a->dst, e->path, strerror(errno));
        close(in);
        return PLAN_ERR_IO;
    }
    uint64_t copied;
    plan_hash written;
    /* A store path in the making is hashed as it is written (one read of
     * the source, no second pass over the copy); build trees just copy. */
    int rc = a->seal ? copy_fd_hashing(in, out, scratch, &copied, &written)
                     : copy_fd_data(in, out, e->size, scratch, &copied);
    close(in);
    if (rc) {
        *msg = plan_xasprintf("cannot copy '%s/%s': %s", a->src, e->path, strerror(-rc));
        close(out);
        return PLAN_ERR_IO;
    }
    if (copied != e->size ||
        (a->seal && memcmp(written.bytes, e->digest.bytes, PLAN_HASH_BYTES) != 0)) {
        *msg = plan_xasprintf("'%s/%s' changed while it was being copied: stop whatever is "
                              "writing to it and try again",
                              a->src, e->path);
        close(out);
        return PLAN_ERR_FAILED;
    }
    /* Seal the file here, on the worker, while its descriptor is open. */
    struct timespec times[2] = {{1, 0}, {1, 0}};
    mode_t mode = a->seal ? (e->exec ? 0555 : 0444) : (e->exec ? 0755 : 0644);
    if (fchmod(out, mode) != 0 || (a->seal && futimens(out, times) != 0)) {
        *msg = plan_xasprintf("cannot seal '%s/%s': %s", a->dst, e->path, strerror(errno));
        close(out);
        return PLAN_ERR_IO;
    }
    if (a->seal && a->writeback)
        start_writeback(out, copied);
    close(out);
    return 0;
}

/* Recreate t (read from src) at dst, which must not exist yet. */
static int copy_tree(plan_store *s, const char *src, const char *dst, tree *t, bool seal)
{
    plan_ctx *ctx = s->ctx;
    if (mkdir(dst, seal ? 0700 : 0755) != 0)
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dst);
    copy_arg a = {.src = src, .dst = dst, .seal = seal, .writeback = store_flushes(s)};
    a.src_fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    a.dst_fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (a.src_fd < 0 || a.dst_fd < 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'",
                             a.src_fd < 0 ? src : dst);
    /* Directories and symlinks first, in sorted order (parents first). */
    for (size_t i = 0; i < t->len && !rc; i++) {
        tree_entry *e = &t->items[i];
        if (e->type == TREE_DIR && mkdirat(a.dst_fd, e->path, seal ? 0700 : 0755) != 0)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s/%s'", dst, e->path);
        else if (e->type == TREE_SYMLINK && symlinkat(e->target, a.dst_fd, e->path) != 0)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s/%s'", dst, e->path);
    }
    if (!rc)
        rc = tree_for_each_file(ctx, t, s->threads, "copying", copy_one_file, &a);
    if (a.src_fd >= 0)
        close(a.src_fd);
    if (a.dst_fd >= 0)
        close(a.dst_fd);
    return rc;
}

int tree_seal(plan_store *s, const char *dir, const tree *t, bool files_sealed)
{
    int rc = tree_normalise(s->ctx, dir, t, files_sealed ? SEALED_FILES : 0);
    return rc ? rc : store_flush(s, dir);
}

bool store_flushes(const plan_store *s)
{
    return s->durability == PLAN_DURABILITY_IMMEDIATE;
}

void start_writeback(int fd, uint64_t size)
{
    if (size >= 64 * 1024)
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int store_syncfs(plan_store *s, const char *dir, int64_t *started)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", dir);
    int64_t t = (int64_t)time(NULL);
    int rc = 0;
    if (syncfs(fd) != 0)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot flush '%s' to disk", dir);
    else if (t > s->flushed_before)
        s->flushed_before = t;
    close(fd);
    if (started)
        *started = t;
    return rc;
}

int store_flush(plan_store *s, const char *dir)
{
    /* One syncfs flushes every file written, far cheaper than an fsync per
     * file, and it happens before the rename that publishes the tree. */
    return store_flushes(s) ? store_syncfs(s, dir, NULL) : 0;
}

int tree_normalise(plan_ctx *ctx, const char *dir, const tree *t, unsigned born_sealed)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'", dir);
    struct timespec times[2] = {{1, 0}, {1, 0}};
    int rc = 0;
    /* Children before parents: touching an entry changes its parent's
     * mtime, so parents are normalised last. */
    for (size_t i = t->len; i-- > 0 && !rc;) {
        const tree_entry *e = &t->items[i];
        if (e->type == TREE_FILE && (born_sealed & SEALED_FILES))
            continue;
        int failed = 0;
        if (e->type == TREE_FILE)
            failed = fchmodat(fd, e->path, e->exec ? 0555 : 0444, 0);
        else if (e->type == TREE_DIR && !(born_sealed & SEALED_DIRS))
            failed = fchmodat(fd, e->path, 0555, 0);
        if (!failed)
            failed = utimensat(fd, e->path, times, AT_SYMLINK_NOFOLLOW);
        if (failed)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot seal '%s/%s'", dir, e->path);
    }
    if (!rc && ((!(born_sealed & SEALED_DIRS) && fchmod(fd, 0555) != 0) ||
                futimens(fd, times) != 0))
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot seal '%s'", dir);
    close(fd);
    return rc;
}

/* Step 2 of the protocol: one durable intent file names every path of the
 * registration, so a crash before the commit can be undone.  It is written
 * under a hidden name, locked, and then renamed, so recovery never sees it
 * incomplete; *fd keeps the lock until the caller unlinks *path. */
static int write_intent(plan_store *s, const db_path_row *rows, size_t n, char **path,
                        int *fd_out)
{
    uint8_t rnd[8];
    char id[17];
    randombytes_buf(rnd, sizeof(rnd));
    plan_hex_encode(rnd, sizeof(rnd), id);
    char *hidden = plan_xasprintf("%s/.%s%s", s->pending_dir, BATCH_INTENT_PREFIX, id);
    *path = plan_xasprintf("%s/%s%s", s->pending_dir, BATCH_INTENT_PREFIX, id);
    plan_buf text;
    plan_buf_init(&text);
    for (size_t i = 0; i < n; i++)
        plan_buf_printf(&text, "%s\n", rows[i].basename);
    int fd = open(hidden, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int e = fd < 0 || flock(fd, LOCK_EX) != 0 ? -errno
                                              : plan_fs_write_all(fd, text.data, text.len);
    /* DEFERRED: a process that dies still leaves the file (the page cache
     * has it); a power cut may not, and then leaves unregistered trees,
     * which nothing uses and 'plan gc' removes. */
    if (!e && store_flushes(s) && fdatasync(fd) != 0)
        e = -errno;
    bool named = !e && rename(hidden, *path) == 0;
    if (!e && !named)
        e = -errno;
    /* The trees are renamed only once the intent is surely on disk. */
    if (!e && store_flushes(s))
        e = plan_fs_fsync_dir(s->pending_dir);
    plan_buf_release(&text);
    int rc = 0;
    if (e) {
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, -e, "cannot write the intent file '%s'",
                             *path);
        if (fd >= 0) {
            unlink(named ? *path : hidden);
            close(fd);
        }
        free(*path);
        *path = NULL;
    } else {
        *fd_out = fd;
    }
    free(hidden);
    return rc;
}

/* Move a sealed tree to another directory.  Moving a directory to a new
 * parent rewrites its "..", for which the kernel wants write permission on
 * it: a sealed root (0555) gives that only to a process that may ignore
 * modes (root).  Anyone else unseals the root for the move and seals it
 * again at its new name, before the registration that publishes it
 * commits.  -1 with errno on failure. */
static int move_tree(const char *from, const char *to)
{
    if (rename(from, to) == 0)
        return 0;
    if (errno != EACCES)
        return -1;
    if (chmod(from, 0755) != 0) {
        errno = EACCES; /* the rename's reason, not the chmod's */
        return -1;
    }
    int e = 0;
    if (rename(from, to) != 0) {
        e = errno;
    } else {
        struct timespec times[2] = {{1, 0}, {1, 0}};
        if (chmod(to, 0555) == 0 && utimensat(AT_FDCWD, to, times, AT_SYMLINK_NOFOLLOW) == 0)
            return 0;
        /* Not sealed at its final name: back where it came from, so the
         * caller's clean-up (of what it moved) and recovery find it. */
        e = errno;
        rename(to, from);
    }
    chmod(from, 0555);
    errno = e;
    return -1;
}

int register_trees(plan_store *s, size_t n, char *const *tmp_paths, const db_path_row *rows,
                   const plan_strlist *refs)
{
    plan_ctx *ctx = s->ctx;
    int rc = 0;
    size_t renamed = 0;
    bool gc_locked = false;
    char *marker = NULL;
    int marker_fd = -1;
    char **finals = plan_xcalloc(n, sizeof(char *));
    bool *was_registered = plan_xcalloc(n, sizeof(bool));

    for (size_t i = 0; i < n; i++)
        finals[i] = store_path_of(s, rows[i].basename);
    if (!store_flushes(s))
        settle_due(s);
    if ((rc = write_intent(s, rows, n, &marker, &marker_fd)))
        goto out;
    /* Shared gc lock from before the rows exist until they are roots of
     * this session: the collector never sees them unprotected. */
    if ((rc = gc_lock(s, LOCK_SH)))
        goto out;
    gc_locked = true;
    /* References found by a scan before the lock may have been collected
     * since (nobody held them): say so rather than fail in the database. */
    for (size_t i = 0; i < n && !rc && refs; i++)
        for (size_t k = 0; k < refs[i].len && !rc; k++) {
            bool in_batch = false;
            for (size_t j = 0; j < n && !in_batch; j++)
                in_batch = !strcmp(rows[j].basename, refs[i].items[k]);
            if (!in_batch && path_present(s, refs[i].items[k]) != 1)
                rc = plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                               "'%s' refers to '%s', which is no longer in the store (a "
                               "'plan gc' ran meanwhile?): try again",
                               rows[i].basename, refs[i].items[k]);
        }
    if (rc)
        goto out;
    if ((rc = db_begin(s)))
        goto out;
    /* Rows first, then references, so that paths of one import may refer to
     * each other in any order. */
    for (size_t i = 0; i < n && !rc; i++) {
        int known = db_has_path(s, rows[i].basename);
        if (known < 0)
            rc = known;
        was_registered[i] = known == 1;
        if (!rc && !known)
            rc = db_insert_path(s, &rows[i], NULL);
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (!was_registered[i] && refs)
            rc = db_insert_refs(s, rows[i].basename, &refs[i]);
    for (size_t i = 0; i < n && !rc; i++)
        if (rows[i].realisation)
            rc = db_set_realisation(s, rows[i].realisation, rows[i].basename);
    if (!rc)
        rc = settle_mark_paths(s, rows, n);
    /* A directory already at a final name is either a leftover that was
     * never registered or, when the row exists, a damaged copy being
     * replaced; the caller holds the digest lock, so nobody else uses it. */
    for (size_t i = 0; i < n && !rc; i++) {
        struct stat st;
        if (lstat(finals[i], &st) == 0) {
            char *old = plan_xasprintf("%s/%s.old", s->tmp_dir, rows[i].digest);
            plan_fs_rmtree(old);
            if (move_tree(finals[i], old) != 0)
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot move '%s' aside",
                                     finals[i]);
            plan_fs_rmtree(old);
            free(old);
        }
        if (!rc && move_tree(tmp_paths[i], finals[i]) != 0)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot move '%s' to '%s'",
                                 tmp_paths[i], finals[i]);
        if (!rc)
            renamed++;
    }
    if (!rc && store_flushes(s))
        plan_fs_fsync_dir(s->store_dir);
    if (!rc)
        rc = db_commit(s);
    if (rc) {
        db_rollback(s);
        bool removed = true;
        for (size_t i = 0; i < renamed; i++)
            if (!was_registered[i] && plan_fs_rmtree(finals[i]) != 0)
                removed = false;
        /* What could not be removed is left to recovery, by its intent. */
        if (!removed && marker) {
            free(marker);
            marker = NULL;
        }
    }
    if (!rc) {
        const char **names = plan_xcalloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            names[i] = rows[i].basename;
        rc = session_hold_locked(s, names, n);
        free(names);
    }
out:
    if (gc_locked)
        gc_unlock(s);
    if (marker)
        unlink(marker);
    if (marker_fd >= 0)
        close(marker_fd);
    free(marker);
    for (size_t i = 0; i < n; i++)
        free(finals[i]);
    free(finals);
    free(was_registered);
    return rc;
}

int register_tree(plan_store *s, const char *tmp_path, const db_path_row *row,
                  const plan_strlist *refs)
{
    char *paths[1] = {(char *)tmp_path};
    return register_trees(s, 1, paths, row, refs);
}

/* ---------- references ---------- */

int find_references(plan_store *s, const char *dir, const plan_strlist *cand_digests,
                    const plan_strlist *cand_basenames, const char *self_digest,
                    plan_strlist *refs)
{
    if (!cand_digests->len)
        return 0;
    bool *found = plan_xcalloc(cand_digests->len, sizeof(bool));
    int rc = plan_store_scan_refs(s->ctx, dir, (const char *const *)cand_digests->items,
                                  cand_digests->len, found);
    atomic_uchar *hits = plan_xcalloc(cand_digests->len, sizeof(atomic_uchar));
    for (size_t i = 0; i < cand_digests->len; i++)
        atomic_store(&hits[i], found[i]);
    if (!rc)
        refs_from_found(cand_digests, cand_basenames, hits, self_digest, refs);
    free(hits);
    free(found);
    return rc;
}

void refs_from_found(const plan_strlist *cand_digests, const plan_strlist *cand_basenames,
                     const atomic_uchar *found, const char *self_digest, plan_strlist *refs)
{
    for (size_t i = 0; i < cand_digests->len; i++) {
        if (!atomic_load(&found[i]))
            continue;
        if (self_digest && strcmp(cand_digests->items[i], self_digest) == 0)
            continue;
        if (!plan_strlist_contains(refs, cand_basenames->items[i]))
            plan_strlist_add(refs, cand_basenames->items[i]);
    }
    plan_strlist_sort(refs);
}

/* Turn the caller's candidates (digests or basenames) and, if asked, every
 * registered path into parallel lists of digests and basenames. */
static int collect_candidates(plan_store *s, const plan_add_opts *o, plan_strlist *digests,
                              plan_strlist *basenames)
{
    for (size_t i = 0; i < o->n_ref_candidates; i++) {
        char *base = NULL;
        int rc = plan_store_resolve(s, o->ref_candidates[i], &base);
        if (rc)
            return plan_fail_wrap(s->ctx, rc, "reference candidate '%s'", o->ref_candidates[i]);
        plan_strlist_take(digests, plan_xstrndup(base, PLAN_DIGEST_CHARS));
        plan_strlist_take(basenames, base);
    }
    return o->scan_all_refs ? registered_candidates(s, digests, basenames) : 0;
}

int registered_candidates(plan_store *s, plan_strlist *digests, plan_strlist *basenames)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT digest, basename FROM paths", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, "listing paths");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        plan_strlist_add(digests, (const char *)sqlite3_column_text(st, 0));
        plan_strlist_add(basenames, (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "listing paths");
}

/* ---------- add ---------- */

int path_present(plan_store *s, const char *basename)
{
    int known = db_has_path(s, basename);
    if (known != 1)
        return known;
    char *path = store_path_of(s, basename);
    struct stat st;
    int there = lstat(path, &st) == 0;
    free(path);
    return there;
}

int plan_store_add(plan_store *s, const plan_add_opts *o, plan_add_result *out)
{
    plan_ctx *ctx = s->ctx;
    const char *why;
    memset(out, 0, sizeof(*out));
    if ((why = plan_store_check_name(o->name)))
        return plan_fail(ctx, PLAN_ERR_INVALID, "invalid name '%s': %s", o->name, why);
    if ((why = plan_store_check_version(o->version)))
        return plan_fail(ctx, PLAN_ERR_INVALID, "invalid version '%s': %s", o->version, why);

    tree src = {0};
    plan_strlist cand_d, cand_b, refs;
    plan_strlist_init(&cand_d);
    plan_strlist_init(&cand_b);
    plan_strlist_init(&refs);
    work_dir w = {0};
    char *basename = NULL, *final = NULL, *tmp_tree = NULL;
    int lock_fd = -1;
    plan_hash h1, h2;
    char digest[PLAN_DIGEST_CHARS + 1], text[PLAN_HASH_TEXT_LEN + 1];

    /* Hash the source first, reading only: content already in the store is
     * then recognised without writing a byte. */
    char *source = realpath(o->dir, NULL);
    int rc = tree_walk(ctx, o->dir, &src);
    if (!rc && source)
        hashcache_apply(s, source, &src);
    if (!rc)
        rc = tree_hash_files(ctx, o->dir, &src, NULL, s->threads);
    if (!rc && source)
        hashcache_save(s, source, &src);
    free(source);
    if (rc)
        goto out;
    tree_hash(&src, NULL, &h1);
    plan_store_digest(s->store_dir, o->name, o->version, &h1, digest);
    basename = make_basename(digest, o->name, o->version);
    final = store_path_of(s, basename);

    int present = hold_if_present(s, basename);
    if (present < 0) {
        rc = present;
        goto out;
    }
    if (present) {
        out->existed = true;
        goto done;
    }
    if ((rc = digest_lock(s, digest, &lock_fd)))
        goto out;
    present = hold_if_present(s, basename); /* someone may have finished meanwhile */
    if (present < 0) {
        rc = present;
        goto out;
    }
    if (present) {
        out->existed = true;
        goto done;
    }

    if ((rc = work_dir_create(s, &w)))
        goto out;
    tmp_tree = plan_path_join(w.path, basename);
    /* What is registered is what was written: every file is hashed as it
     * is copied and must match the first read, and the copy's structure is
     * the walked list by construction (each entry was made from it). */
    if ((rc = copy_tree(s, o->dir, tmp_tree, &src, true)))
        goto out;
    h2 = h1;
    const char *entry = NULL;
    why = NULL;
    if (links_confined(s, tmp_tree, &src, &why, &entry) != 0) {
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "'%s/%s' %s; a store path must be self-contained (links inside it, or "
                       "into the store): copy what it points to into the tree, or drop the link",
                       o->dir, entry, why);
        goto out;
    }
    if ((rc = collect_candidates(s, o, &cand_d, &cand_b)) ||
        (rc = find_references(s, tmp_tree, &cand_d, &cand_b, digest, &refs)))
        goto out;
    if ((rc = tree_seal(s, tmp_tree, &src, true)))
        goto out;
    plan_tree_stats stats;
    tree_stats(&src, &stats);
    plan_hash_format(&h2, text);
    db_path_row row = {.basename = basename, .digest = digest, .name = o->name,
                       .version = o->version, .content_hash = text, .size = stats.bytes};
    if ((rc = register_tree(s, tmp_tree, &row, &refs)))
        goto out;
done:
    out->path = final;
    final = NULL;
out:
    work_dir_remove(&w);
    digest_unlock(lock_fd);
    tree_release(&src);
    plan_strlist_release(&cand_d);
    plan_strlist_release(&cand_b);
    plan_strlist_release(&refs);
    free(basename);
    free(final);
    free(tmp_tree);
    return rc;
}

int plan_store_copy_tree(plan_store *s, const char *from, const char *to)
{
    tree t = {0};
    int rc = tree_walk(s->ctx, from, &t);
    if (!rc)
        rc = copy_tree(s, from, to, &t, false);
    tree_release(&t);
    return rc;
}
