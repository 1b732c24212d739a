/* Roots of the garbage collector that live processes hold: sessions (temp
 * roots), run roots, and the explicit roots users create.
 *
 * The protocol (docs/gc.md):
 * - var/gc/gc.lock: the collector holds it exclusively from the moment it
 *   reads the roots until it has deleted what it decided to delete.  A
 *   process takes it shared around "make a path a root": registering a new
 *   path, or holding one that is already there.  So a path is either a root
 *   before the collector looks, or the holder finds it gone afterwards.
 * - var/gc/sessions/<id>: one file per plan_store handle that held a path,
 *   locked (flock, exclusive) for the life of the handle and of any child
 *   that inherits the descriptor (plan env passes it to the command it
 *   runs).  Lines: "root <basename>", "runroot <dir>" and a few notes.  A
 *   session whose lock can be taken is stale: its process is gone.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SESSION_MAGIC "plan-session-v1\n"

static int open_gc_lock(plan_store *s)
{
    if (s->gc_fd >= 0)
        return 0;
    char *path = plan_path_join(s->gc_dir, "gc.lock");
    s->gc_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = s->gc_fd < 0 ? plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", path)
                          : 0;
    free(path);
    return rc;
}

int gc_lock(plan_store *s, int how)
{
    int rc = open_gc_lock(s);
    if (rc)
        return rc;
    while (flock(s->gc_fd, how) != 0) {
        if (errno == EWOULDBLOCK)
            return plan_fail(s->ctx, PLAN_ERR_BUSY,
                             "another 'plan gc' is running on '%s': wait for it to finish",
                             s->root);
        if (errno != EINTR)
            return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot lock '%s/gc.lock'",
                                   s->gc_dir);
    }
    return 0;
}

void gc_unlock(plan_store *s)
{
    if (s->gc_fd >= 0)
        flock(s->gc_fd, LOCK_UN);
}

/* ---------- sessions ---------- */

static int session_write_text(plan_store *s, const char *text, size_t len)
{
    int e = plan_fs_write_all(s->session_fd, text, len);
    return e ? plan_fail_errno(s->ctx, PLAN_ERR_IO, -e, "cannot write '%s'", s->session_path)
             : 0;
}

static int session_write(plan_store *s, const char *key, const char *value)
{
    char *line = plan_xasprintf("%s %s\n", key, value);
    int rc = session_write_text(s, line, strlen(line));
    free(line);
    return rc;
}

/* Create this handle's session file, locked, if it has none yet.  Called
 * with the gc lock held shared, so the collector never sees it half made. */
static int session_ensure(plan_store *s)
{
    if (s->session_fd >= 0)
        return 0;
    char *dir = plan_path_join(s->gc_dir, "sessions");
    int r = plan_fs_mkdirs(dir, 0755);
    if (r) {
        int rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, -r, "cannot create '%s'", dir);
        free(dir);
        return rc;
    }
    for (int attempt = 0; attempt < 16; attempt++) {
        uint8_t rnd[8];
        randombytes_buf(rnd, sizeof(rnd));
        char hex[17];
        plan_hex_encode(rnd, sizeof(rnd), hex);
        /* Made under a hidden name, locked and given its header, then
         * renamed: a session that scanners can see is always locked. */
        char *path = plan_path_join(dir, hex);
        char *tmp = plan_xasprintf("%s/.new-%s", dir, hex);
        struct stat st;
        if (lstat(path, &st) == 0) {
            free(path);
            free(tmp);
            continue;
        }
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST) {
            free(path);
            free(tmp);
            continue;
        }
        int rc = 0;
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
            rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create session '%s'", tmp);
        s->session_fd = fd;
        s->session_path = path;
        char num[32];
        snprintf(num, sizeof(num), "%ld", (long)getpid());
        if (!rc && write(fd, SESSION_MAGIC, strlen(SESSION_MAGIC)) < 0)
            rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot write '%s'", tmp);
        if (!rc)
            rc = session_write(s, "pid", num);
        snprintf(num, sizeof(num), "%lld", (long long)time(NULL));
        if (!rc)
            rc = session_write(s, "started", num);
        if (!rc && rename(tmp, path) != 0)
            rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create session '%s'", path);
        if (rc) {
            if (fd >= 0)
                close(fd);
            unlink(tmp);
            s->session_fd = -1;
            s->session_path = NULL;
            free(path);
        } else {
            s->session_id = plan_xstrdup(hex);
        }
        free(tmp);
        free(dir);
        return rc;
    }
    free(dir);
    return plan_fail(s->ctx, PLAN_ERR_IO, "cannot create a session file in '%s/sessions'",
                     s->gc_dir);
}

void session_close(plan_store *s)
{
    if (s->session_fd < 0)
        return;
    /* Unlink while still locked: the collector never finds it unlocked. */
    unlink(s->session_path);
    close(s->session_fd);
    s->session_fd = -1;
    free(s->session_path);
    free(s->session_id);
    s->session_path = s->session_id = NULL;
    plan_strlist_release(&s->held);
    plan_strmap_release(&s->held_at);
}

/* Record basenames as roots of this session.  The caller holds the gc lock
 * (shared). */
int session_hold_locked(plan_store *s, const char *const *basenames, size_t n)
{
    int rc = session_ensure(s);
    /* One write for all the new lines: a batch of 200 paths is one
     * system call, not 200. */
    plan_buf lines;
    plan_buf_init(&lines);
    size_t first_new = s->held.len;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!plan_strmap_put(&s->held_at, basenames[i], 1))
            continue;
        plan_buf_printf(&lines, "root %s\n", basenames[i]);
        plan_strlist_add(&s->held, basenames[i]);
    }
    if (!rc && lines.len)
        rc = session_write_text(s, lines.data, lines.len);
    if (rc) /* not written: not held */
        while (s->held.len > first_new) {
            plan_strmap_put(&s->held_at, s->held.items[--s->held.len], (size_t)-1);
            free(s->held.items[s->held.len]);
        }
    plan_buf_release(&lines);
    return rc;
}

int plan_store_hold_present(plan_store *s, const char *const *basenames, size_t n,
                            bool *present)
{
    /* What this session holds cannot be collected: it is there. */
    const char **todo = plan_xcalloc(n ? n : 1, sizeof(char *));
    size_t *where = plan_xcalloc(n ? n : 1, sizeof(size_t));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        present[i] = plan_strmap_get(&s->held_at, basenames[i]) >= 0;
        if (!present[i]) {
            where[m] = i;
            todo[m++] = basenames[i];
        }
    }
    int rc = m ? gc_lock(s, LOCK_SH) : 0;
    if (m && !rc) {
        bool txn = db_read_begin(s);
        size_t k = 0;
        for (size_t j = 0; j < m && !rc; j++) {
            int there = path_present(s, todo[j]);
            if (there < 0)
                rc = there;
            present[where[j]] = there == 1;
            if (there == 1)
                todo[k++] = todo[j];
        }
        db_read_end(s, txn);
        if (!rc)
            rc = session_hold_locked(s, todo, k);
        gc_unlock(s);
    }
    free(todo);
    free(where);
    return rc;
}

int plan_store_hold_many(plan_store *s, const char *const *basenames, size_t n)
{
    bool *present = plan_xcalloc(n ? n : 1, sizeof(bool));
    int rc = plan_store_hold_present(s, basenames, n, present);
    for (size_t i = 0; i < n && !rc; i++)
        if (!present[i])
            rc = plan_fail(s->ctx, PLAN_ERR_NOT_FOUND, "'%s' is not in the store",
                           basenames[i]);
    free(present);
    return rc;
}

int plan_store_hold(plan_store *s, const char *basename)
{
    return plan_store_hold_many(s, &basename, 1);
}

int plan_store_session_note(plan_store *s, const char *key, const char *value)
{
    int rc = gc_lock(s, LOCK_SH);
    if (rc)
        return rc;
    rc = session_ensure(s);
    if (!rc) {
        /* One line per note: newlines in a command are escaped. */
        json_t *j = json_string(value);
        char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        rc = session_write(s, key, text ? text : "\"\"");
        free(text);
        json_decref(j);
    }
    gc_unlock(s);
    return rc;
}

int plan_store_session_fd(const plan_store *s) { return s->session_fd; }

static char *note_value(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    char *out = json_is_string(j) ? plan_xstrdup(json_string_value(j)) : NULL;
    json_decref(j);
    return out;
}

/* Parse a session file.  Unknown lines are skipped: a newer plan may add
 * some. */
static void session_parse(const char *text, plan_session *out)
{
    const char *p = text;
    if (strncmp(p, SESSION_MAGIC, strlen(SESSION_MAGIC)) != 0)
        return;
    p += strlen(SESSION_MAGIC);
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break; /* a line being written */
        char *line = plan_xstrndup(p, (size_t)(nl - p));
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            const char *v = sp + 1;
            if (!strcmp(line, "root"))
                plan_strlist_add(&out->roots, v);
            else if (!strcmp(line, "pid"))
                out->pid = atol(v);
            else if (!strcmp(line, "started"))
                out->started = atoll(v);
            else if (!strcmp(line, "runroot") && v[0] == '/') {
                free(out->runroot);
                out->runroot = plan_xstrdup(v);
                plan_strlist_add(&out->runroots, v);
            } else if (!strcmp(line, "command")) {
                free(out->command);
                out->command = note_value(v);
            } else if (!strcmp(line, "plan")) {
                char *name = note_value(v);
                if (name)
                    plan_strlist_take(&out->plans, name);
            } else if (!strcmp(line, "run")) {
                free(out->run);
                out->run = note_value(v);
            }
        }
        free(line);
        p = nl + 1;
    }
}

static void session_release(plan_session *x)
{
    free(x->id);
    free(x->runroot);
    free(x->command);
    free(x->run);
    plan_strlist_release(&x->roots);
    plan_strlist_release(&x->plans);
    plan_strlist_release(&x->runroots);
}

void plan_sessions_free(plan_session *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        session_release(&list[i]);
    free(list);
}

/* A run root must be a directory plan made: named plan-<hex> and not the
 * store or anything above it.  The check stops a tampered session file from
 * turning gc into "rm -rf" of something else. */
static bool runroot_name_ok(const char *path)
{
    const char *base = strrchr(path, '/');
    if (!base || strncmp(base + 1, "plan-", 5) != 0 || strlen(base + 6) != 16)
        return false;
    for (const char *c = base + 6; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return !strstr(path, "/../") && !strstr(path, "/./");
}

static void remove_runroot(plan_store *s, const char *dir)
{
    if (!runroot_name_ok(dir)) {
        plan_warn(s->ctx, "not removing '%s': a session names it as a run root, but plan "
                          "never makes a directory of that name", dir);
        return;
    }
    struct stat st;
    if (lstat(dir, &st) == 0) {
        plan_info(s->ctx, "removing the stale run root '%s'", dir);
        plan_fs_rmtree(dir);
    }
}

/* Read every session; stale ones (their lock is free) are removed, with
 * their run roots, when reap is set.  With the gc lock held exclusively the
 * list is complete; without it, sessions may come and go meanwhile. */
int sessions_scan(plan_store *s, bool reap, plan_session **out, size_t *n_out,
                  unsigned *reaped)
{
    char *dir = plan_path_join(s->gc_dir, "sessions");
    DIR *d = opendir(dir);
    plan_session *list = NULL;
    size_t n = 0, cap = 0;
    if (reaped)
        *reaped = 0;
    if (!d) {
        int rc = errno == ENOENT ? 0
                                 : plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot read '%s'",
                                                   dir);
        free(dir);
        *out = NULL;
        *n_out = 0;
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            /* A session being made, or one whose maker died before the
             * rename: the latter is removed once its lock is free. */
            int tfd = reap && !strncmp(de->d_name, ".new-", 5)
                          ? openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                          : -1;
            /* Only an old one: a young one may be between its creation and
             * its lock. */
            struct stat tst;
            if (tfd >= 0 && fstat(tfd, &tst) == 0 && time(NULL) - tst.st_mtime > 60 &&
                flock(tfd, LOCK_EX | LOCK_NB) == 0)
                unlinkat(dirfd(d), de->d_name, 0);
            if (tfd >= 0)
                close(tfd);
            continue;
        }
        if (s->session_id && !strcmp(de->d_name, s->session_id))
            continue; /* our own: its roots are in s->held */
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        bool live = flock(fd, LOCK_EX | LOCK_NB) != 0;
        plan_buf text;
        plan_buf_init(&text);
        char buf[8192];
        ssize_t r;
        while ((r = read(fd, buf, sizeof(buf))) > 0 && text.len < (64u << 20))
            plan_buf_add(&text, buf, (size_t)r);
        plan_session x = {0};
        x.id = plan_xstrdup(de->d_name);
        x.live = live;
        session_parse(text.data, &x);
        plan_buf_release(&text);
        if (!live && reap) {
            for (size_t k = 0; k < x.runroots.len; k++)
                remove_runroot(s, x.runroots.items[k]);
            unlinkat(dirfd(d), de->d_name, 0);
            if (reaped)
                (*reaped)++;
            close(fd);
            session_release(&x);
            continue;
        }
        close(fd);
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            list = plan_xrealloc(list, cap * sizeof(*list));
        }
        list[n++] = x;
    }
    closedir(d);
    free(dir);
    *out = list;
    *n_out = n;
    return 0;
}

int plan_store_sessions(plan_store *s, plan_session **out, size_t *n)
{
    return sessions_scan(s, false, out, n, NULL);
}

int plan_store_reap_sessions(plan_store *s, unsigned *removed)
{
    plan_session *list = NULL;
    size_t n = 0;
    int rc = sessions_scan(s, true, &list, &n, removed);
    plan_sessions_free(list, n);
    return rc;
}

/* ---------- run roots ---------- */

struct plan_runroot {
    plan_store *store;
    char *path;
};

int plan_store_runroot_new(plan_store *s, const char *parent, plan_runroot **out)
{
    int r = plan_fs_mkdirs(parent, 0700);
    if (r)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, -r,
                               "cannot create the run-root folder '%s' (set PLAN_RUN_DIR to a "
                               "writable folder)", parent);
    int rc = gc_lock(s, LOCK_SH);
    if (rc)
        return rc;
    rc = session_ensure(s);
    char *path = NULL;
    for (int attempt = 0; !rc && attempt < 16; attempt++) {
        uint8_t rnd[8];
        char hex[17];
        randombytes_buf(rnd, sizeof(rnd));
        plan_hex_encode(rnd, sizeof(rnd), hex);
        /* The first run root of a session carries its id, so 'plan ps'
         * and the folder name agree. */
        if (attempt == 0 && s->session_id)
            memcpy(hex, s->session_id, sizeof(hex));
        path = plan_xasprintf("%s/plan-%s", parent, hex);
        /* Recorded before it exists: a crash never leaves a run root that
         * no session names. */
        rc = session_write(s, "runroot", path);
        if (!rc && mkdir(path, 0700) == 0)
            break;
        if (!rc && errno != EEXIST)
            rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create the run root '%s'",
                                 path);
        free(path);
        path = NULL;
    }
    gc_unlock(s);
    if (!rc && !path)
        rc = plan_fail(s->ctx, PLAN_ERR_IO, "cannot create a run root in '%s'", parent);
    if (rc) {
        free(path);
        return rc;
    }
    plan_runroot *rr = plan_xcalloc(1, sizeof(*rr));
    rr->store = s;
    rr->path = path;
    *out = rr;
    return 0;
}

const char *plan_runroot_path(const plan_runroot *r) { return r->path; }

void plan_runroot_forget(plan_runroot *r)
{
    if (!r)
        return;
    free(r->path);
    free(r);
}

void plan_store_runroot_remove(plan_runroot *r)
{
    if (!r)
        return;
    plan_fs_rmtree(r->path);
    free(r->path);
    free(r);
}

/* ---------- explicit roots ---------- */

static bool root_name_ok(const char *name)
{
    if (!*name || strlen(name) > 200 || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.' || *c == '@' || *c == '+'))
            return false;
    return true;
}

int plan_store_add_root(plan_store *s, const char *name, const char *arg)
{
    if (!root_name_ok(name))
        return plan_fail(s->ctx, PLAN_ERR_INVALID,
                         "invalid root name '%s': use letters, digits and '-_.@+'", name);
    char *base = NULL;
    int rc = plan_store_resolve(s, arg, &base);
    if (rc)
        return rc;
    /* Held first, so the collector cannot take it between resolving and
     * writing the root. */
    rc = plan_store_hold(s, base);
    char *dir = plan_path_join(s->gc_dir, "roots");
    char *file = plan_path_join(dir, name);
    char *text = plan_xasprintf("%s\n", base);
    int r = rc ? 0 : plan_fs_mkdirs(dir, 0755);
    if (!rc && !r)
        r = plan_fs_write_atomic(file, text, strlen(text), 0644);
    if (!rc && r)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, -r, "cannot write the root '%s'", file);
    free(text);
    free(file);
    free(dir);
    free(base);
    return rc;
}

int plan_store_remove_root(plan_store *s, const char *name)
{
    if (!root_name_ok(name))
        return plan_fail(s->ctx, PLAN_ERR_INVALID, "invalid root name '%s'", name);
    char *file = plan_xasprintf("%s/roots/%s", s->gc_dir, name);
    int rc = 0;
    if (unlink(file) != 0)
        rc = errno == ENOENT ? plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                                         "there is no root named '%s' (see 'plan gc roots')",
                                         name)
                             : plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot remove '%s'",
                                               file);
    free(file);
    return rc;
}

int plan_store_add_link_root(plan_store *s, const char *link)
{
    char *abs = plan_path_absolute(link);
    char *dir = plan_path_join(s->gc_dir, "links");
    uint8_t h[16];
    crypto_generichash(h, sizeof(h), (const uint8_t *)abs, strlen(abs), NULL, 0);
    char hex[33];
    plan_hex_encode(h, sizeof(h), hex);
    char *entry = plan_path_join(dir, hex);
    int rc = 0;
    int r = plan_fs_mkdirs(dir, 0755);
    if (!r) {
        unlink(entry);
        r = symlink(abs, entry) == 0 ? 0 : -errno;
    }
    if (r)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, -r, "cannot record '%s' as a root in '%s'",
                             link, dir);
    free(entry);
    free(dir);
    free(abs);
    return rc;
}

int hold_if_present(plan_store *s, const char *basename)
{
    int rc = gc_lock(s, LOCK_SH);
    if (rc)
        return rc;
    int there = path_present(s, basename);
    if (there == 1 && (rc = session_hold_locked(s, &basename, 1)))
        there = rc;
    gc_unlock(s);
    return there;
}
