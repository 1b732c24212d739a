/* The garbage collector (docs/gc.md): delete every registered path that no
 * root reaches, referrers before what they refer to, so the store stays
 * closed under references even when a collection stops half way.
 *
 * Order of events:
 *  1. var/gc/run.lock (exclusive, non-blocking): one collector at a time.
 *  2. var/gc/gc.lock exclusive: waits for registrations and holds in flight
 *     (they take it shared), and keeps new ones out until we finish.
 *  3. Read the roots: profile records, named roots, link roots, sessions
 *     (stale ones are removed with their run roots).
 *  4. Mark the closure of the roots in the reference graph (from the DB).
 *  5. Delete the rest in batches: an intent file lists the batch, the rows
 *     go in one transaction, then the directories.  A crash after the
 *     commit is finished by the next plan_store_open (gc_resume).
 * Paths whose digest lock is busy (someone is registering the same content
 * right now) are left for the next collection, with everything they refer
 * to. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define GC_BATCH 256

typedef struct node {
    int64_t id;
    char *basename;
    uint64_t size;
    bool live;
    size_t ref_start, ref_count;   /* outgoing edges in graph.refs */
    size_t dead_referrers;         /* Kahn's in-degree among dead paths */
} node;

typedef struct graph {
    node *nodes;        /* sorted by basename */
    size_t n;
    size_t *refs;       /* node indices, grouped by referrer */
    size_t n_refs;
} graph;

static int node_cmp_name(const void *a, const void *b)
{
    return strcmp(((const node *)a)->basename, ((const node *)b)->basename);
}

static ssize_t node_find(const graph *g, const char *basename)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->nodes[mid].basename, basename);
        if (!c)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

typedef struct id_index {
    int64_t id;
    size_t index;
} id_index;

static int id_cmp(const void *a, const void *b)
{
    int64_t x = ((const id_index *)a)->id, y = ((const id_index *)b)->id;
    return x < y ? -1 : x > y;
}

static ssize_t id_find(const id_index *ids, size_t n, int64_t id)
{
    id_index key = {id, 0};
    const id_index *hit = bsearch(&key, ids, n, sizeof(*ids), id_cmp);
    return hit ? (ssize_t)hit->index : -1;
}

static void graph_release(graph *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->nodes[i].basename);
    free(g->nodes);
    free(g->refs);
    memset(g, 0, sizeof(*g));
}

static int graph_load(plan_store *s, graph *g)
{
    memset(g, 0, sizeof(*g));
    sqlite3_stmt *st;
    size_t cap = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT id, basename, size FROM paths ORDER BY basename", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading the paths");
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (g->n == cap) {
            cap = cap ? 2 * cap : 1024;
            g->nodes = plan_xrealloc(g->nodes, cap * sizeof(node));
        }
        node *nd = &g->nodes[g->n++];
        memset(nd, 0, sizeof(*nd));
        nd->id = sqlite3_column_int64(st, 0);
        nd->basename = plan_xstrdup((const char *)sqlite3_column_text(st, 1));
        nd->size = (uint64_t)sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return db_fail(s, "reading the paths");
    /* ORDER BY uses the collation of sqlite (bytewise for TEXT), the same
     * as strcmp, but sort again rather than depend on it. */
    if (g->n)
        qsort(g->nodes, g->n, sizeof(node), node_cmp_name);
    id_index *ids = plan_xcalloc(g->n ? g->n : 1, sizeof(*ids));
    for (size_t i = 0; i < g->n; i++)
        ids[i] = (id_index){g->nodes[i].id, i};
    if (g->n)
        qsort(ids, g->n, sizeof(*ids), id_cmp);

    if (sqlite3_prepare_v2(s->db, "SELECT referrer, reference FROM refs ORDER BY referrer", -1,
                           &st, NULL) != SQLITE_OK) {
        free(ids);
        return db_fail(s, "reading the references");
    }
    size_t *from = NULL, *to = NULL, n = 0, ecap = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        ssize_t a = id_find(ids, g->n, sqlite3_column_int64(st, 0));
        ssize_t b = id_find(ids, g->n, sqlite3_column_int64(st, 1));
        if (a < 0 || b < 0)
            continue;
        if (n == ecap) {
            ecap = ecap ? 2 * ecap : 1024;
            from = plan_xrealloc(from, ecap * sizeof(size_t));
            to = plan_xrealloc(to, ecap * sizeof(size_t));
        }
        from[n] = (size_t)a;
        to[n] = (size_t)b;
        n++;
    }
    sqlite3_finalize(st);
    free(ids);
    if (r != SQLITE_DONE) {
        free(from);
        free(to);
        return db_fail(s, "reading the references");
    }
    /* Group the edges by referrer (counting sort on the node index). */
    for (size_t e = 0; e < n; e++)
        g->nodes[from[e]].ref_count++;
    size_t pos = 0;
    for (size_t i = 0; i < g->n; i++) {
        g->nodes[i].ref_start = pos;
        pos += g->nodes[i].ref_count;
        g->nodes[i].ref_count = 0;
    }
    g->refs = plan_xcalloc(n ? n : 1, sizeof(size_t));
    g->n_refs = n;
    for (size_t e = 0; e < n; e++) {
        node *nd = &g->nodes[from[e]];
        g->refs[nd->ref_start + nd->ref_count++] = to[e];
    }
    free(from);
    free(to);
    return 0;
}

/* ---------- roots ---------- */

typedef struct root_set {
    plan_gc_root *items;
    size_t n, cap;
} root_set;

static void root_add(void *arg, const char *kind, const char *source, const char *basename)
{
    root_set *rs = arg;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 32;
        rs->items = plan_xrealloc(rs->items, rs->cap * sizeof(*rs->items));
    }
    rs->items[rs->n++] = (plan_gc_root){plan_xstrdup(kind), plan_xstrdup(source),
                                        plan_xstrdup(basename)};
}

void plan_gc_roots_free(plan_gc_root *roots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(roots[i].kind);
        free(roots[i].source);
        free(roots[i].basename);
    }
    free(roots);
}

static void named_roots(plan_store *s, root_set *rs)
{
    char *dir = plan_path_join(s->gc_dir, "roots");
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *file = plan_path_join(dir, de->d_name);
        plan_buf text;
        plan_buf_init(&text);
        if (plan_fs_read_file(file, 4096, &text) == 0) {
            char *nl = strchr(text.data, '\n');
            if (nl)
                *nl = '\0';
            /* Written as a basename by plan; a hand-written root may name
             * the path in any form plan_store_resolve takes. */
            char *base = NULL;
            if (text.data[0] && plan_store_resolve(s, text.data, &base) == 0)
                root_add(rs, "root", de->d_name, base);
            else if (text.data[0])
                root_add(rs, "root", de->d_name, text.data);
            plan_ctx_clear_error(s->ctx);
            free(base);
        }
        plan_buf_release(&text);
        free(file);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* Link roots: var/gc/links/<hash> -> the user's link.  A root while the
 * user's link points into the store; otherwise removed (when prune). */
static void link_roots(plan_store *s, root_set *rs, bool prune)
{
    char *dir = plan_path_join(s->gc_dir, "links");
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t sd = strlen(s->store_dir);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char user[PATH_MAX], target[PATH_MAX];
        ssize_t n = readlinkat(dirfd(d), de->d_name, user, sizeof(user) - 1);
        ssize_t m = -1;
        if (n > 0) {
            user[n] = '\0';
            m = readlink(user, target, sizeof(target) - 1);
        }
        bool ok = false;
        if (m > 0) {
            target[m] = '\0';
            if (!strncmp(target, s->store_dir, sd) && target[sd] == '/') {
                char *base = plan_xstrdup(target + sd + 1);
                char *slash = strchr(base, '/');
                if (slash)
                    *slash = '\0';
                if (*base) {
                    root_add(rs, "link", user, base);
                    ok = true;
                }
                free(base);
            }
        }
        if (!ok && prune)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d)
        closedir(d);
    free(dir);
}

static int collect_roots(plan_store *s, bool reap, root_set *rs, unsigned *stale)
{
    int rc = profile_roots(s, root_add, rs);
    if (rc)
        return rc;
    named_roots(s, rs);
    link_roots(s, rs, reap);
    plan_session *list = NULL;
    size_t n = 0;
    rc = sessions_scan(s, reap, &list, &n, stale);
    for (size_t i = 0; i < n; i++) {
        if (!list[i].live)
            continue;
        char *src = plan_xasprintf("%s (pid %ld)", list[i].id, list[i].pid);
        for (size_t k = 0; k < list[i].roots.len; k++)
            root_add(rs, "session", src, list[i].roots.items[k]);
        free(src);
    }
    plan_sessions_free(list, n);
    for (size_t k = 0; k < s->held.len; k++)
        root_add(rs, "session", "this process", s->held.items[k]);
    return rc;
}

int plan_store_gc_roots(plan_store *s, plan_gc_root **out, size_t *n)
{
    root_set rs = {0};
    int rc = collect_roots(s, false, &rs, NULL);
    if (rc) {
        plan_gc_roots_free(rs.items, rs.n);
        return rc;
    }
    *out = rs.items;
    *n = rs.n;
    return 0;
}

/* ---------- deletion ---------- */

void plan_gc_result_release(plan_gc_result *r)
{
    plan_strlist_release(&r->deleted);
    plan_strlist_release(&r->unregistered);
}

/* Trees at a store path's name with no row.  A DEFERRED registration that
 * a power cut interrupted can leave them (its intent file was not on
 * disk yet).  Nothing uses them.  A build's output in the making looks the
 * same, but has its intent file var/pending/<basename> (the next open's
 * recovery removes it once its build is gone); registrations rename into
 * the store only under the gc lock, which the caller holds; and a path
 * being repaired or replaced holds its digest lock. */
static int sweep_unregistered(plan_store *s, bool dry_run, plan_gc_result *out)
{
    DIR *d = opendir(s->store_dir);
    if (!d)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot read '%s'", s->store_dir);
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d)) != NULL) {
        if (!intent_line_ok(de->d_name))
            continue; /* ".tmp", ".links", anything not shaped as a store path */
        int known = db_has_path(s, de->d_name);
        if (known < 0)
            rc = known;
        if (known)
            continue;
        char *intent = plan_path_join(s->pending_dir, de->d_name);
        struct stat st;
        bool building = lstat(intent, &st) == 0;
        free(intent);
        if (building)
            continue;
        if (dry_run) { /* what would go; nothing is locked */
            plan_strlist_add(&out->unregistered, de->d_name);
            continue;
        }
        int lock = digest_trylock(s, de->d_name);
        if (lock < 0)
            continue;
        plan_info(s->ctx, "removing '%s/%s': it is in the store but was never registered",
                  s->store_dir, de->d_name);
        if (plan_fs_rmtree_at(dirfd(d), de->d_name) == 0)
            plan_strlist_add(&out->unregistered, de->d_name);
        else
            plan_warn(s->ctx, "cannot remove '%s/%s', which is in the store but was never "
                              "registered: remove it by hand",
                      s->store_dir, de->d_name);
        digest_unlock(lock);
    }
    closedir(d);
    return rc;
}

static int write_intent(plan_store *s, const char *file, char *const *names, size_t n, int *fd)
{
    plan_buf text;
    plan_buf_init(&text);
    for (size_t i = 0; i < n; i++)
        plan_buf_printf(&text, "%s\n", names[i]);
    /* Locked before it is emptied: gc_resume never reads a half-written
     * intent. */
    *fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (*fd < 0 || flock(*fd, LOCK_EX) != 0 || ftruncate(*fd, 0) != 0 ||
        write(*fd, text.data, text.len) != (ssize_t)text.len || fsync(*fd) != 0)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot write '%s'", file);
    plan_buf_release(&text);
    if (!rc)
        plan_fs_fsync_dir(s->gc_dir);
    return rc;
}

static int delete_rows(plan_store *s, char *const *names, size_t n)
{
    int rc = db_begin(s);
    /* A path deleted is no longer waiting to reach the disk either: its
     * unsettled row (one registered in the second of the flush stays)
     * goes with it. */
    static const char *const sql[] = {"DELETE FROM paths WHERE basename = ?1",
                                      "DELETE FROM unsettled_paths WHERE basename = ?1"};
    sqlite3_stmt *st[2] = {NULL, NULL};
    for (size_t k = 0; k < 2 && !rc; k++)
        if (sqlite3_prepare_v2(s->db, sql[k], -1, &st[k], NULL) != SQLITE_OK)
            rc = db_fail(s, "preparing a deletion");
    for (size_t i = 0; i < n && !rc; i++)
        for (size_t k = 0; k < 2 && !rc; k++) {
            sqlite3_bind_text(st[k], 1, names[i], -1, SQLITE_STATIC);
            if (sqlite3_step(st[k]) != SQLITE_DONE)
                rc = db_fail(s, "deleting a path");
            sqlite3_reset(st[k]);
        }
    sqlite3_finalize(st[0]);
    sqlite3_finalize(st[1]);
    if (!rc)
        rc = db_commit(s);
    if (rc)
        db_rollback(s);
    return rc;
}

/* Move the directories out of the store in one step each, then remove
 * them from the trash. */
static void delete_dirs(plan_store *s, char *const *names, size_t n)
{
    work_dir trash = {0};
    bool have_trash = work_dir_create(s, &trash) == 0;
    for (size_t i = 0; i < n; i++) {
        char *path = store_path_of(s, names[i]);
        char *aside = have_trash ? plan_path_join(trash.path, names[i]) : NULL;
        if (!aside || rename(path, aside) != 0)
            plan_fs_rmtree(path);
        free(aside);
        free(path);
    }
    if (have_trash)
        work_dir_remove(&trash);
}

/* Held stripe locks, indexed by the two characters that name a stripe. */
#define STRIPE_SLOTS (256 * 256)
typedef struct stripe_locks {
    int *fd;
} stripe_locks;

static int stripe_index(const char *digest)
{
    return (unsigned char)digest[0] * 256 + (unsigned char)digest[1];
}

/* Digest stripes never block the collector: a busy stripe means someone
 * registers that content now, and the path is left alone. */
static bool stripe_take(plan_store *s, stripe_locks *sl, const char *digest)
{
    int i = stripe_index(digest);
    if (sl->fd[i] >= 0)
        return true;
    char name[8];
    snprintf(name, sizeof(name), "%.2s.lock", digest);
    char *path = plan_path_join(s->locks_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0)
        return false;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return false;
    }
    sl->fd[i] = fd;
    return true;
}

static void stripes_release(stripe_locks *sl)
{
    for (int i = 0; i < STRIPE_SLOTS; i++)
        if (sl->fd[i] >= 0) {
            close(sl->fd[i]);
            sl->fd[i] = -1;
        }
}

static int flush_batch(plan_store *s, stripe_locks *sl, char **batch, size_t *n)
{
    if (!*n)
        return 0;
    char *intent = plan_path_join(s->gc_dir, "deleting");
    int fd = -1;
    int rc = write_intent(s, intent, batch, *n, &fd);
    if (!rc)
        rc = delete_rows(s, batch, *n);
    if (!rc)
        delete_dirs(s, batch, *n);
    if (!rc)
        unlink(intent);
    if (fd >= 0)
        close(fd);
    free(intent);
    stripes_release(sl);
    *n = 0;
    return rc;
}

/* Files in store/.links that no store path links to any more. */
static uint64_t prune_links(plan_store *s)
{
    DIR *d = opendir(s->links_dir);
    uint64_t freed = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_nlink == 1 && unlinkat(dirfd(d), de->d_name, 0) == 0)
            freed += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return freed;
}

static void mark_live(graph *g, size_t start)
{
    size_t *stack = plan_xmalloc((g->n + 1) * sizeof(size_t));
    size_t top = 0;
    if (!g->nodes[start].live) {
        g->nodes[start].live = true;
        stack[top++] = start;
    }
    while (top) {
        node *nd = &g->nodes[stack[--top]];
        for (size_t e = 0; e < nd->ref_count; e++) {
            size_t r = g->refs[nd->ref_start + e];
            if (!g->nodes[r].live) {
                g->nodes[r].live = true;
                stack[top++] = r; /* each node pushed once: top <= n */
            }
        }
    }
    free(stack);
}

static int collect(plan_store *s, const plan_gc_opts *o, plan_gc_result *out)
{
    root_set rs = {0};
    graph g;
    int rc = collect_roots(s, !o->dry_run, &rs, &out->stale_sessions);
    if (!rc)
        rc = graph_load(s, &g);
    if (rc) {
        plan_gc_roots_free(rs.items, rs.n);
        return rc;
    }
    for (size_t i = 0; i < rs.n; i++) {
        ssize_t k = node_find(&g, rs.items[i].basename);
        if (k >= 0)
            mark_live(&g, (size_t)k);
    }
    plan_gc_roots_free(rs.items, rs.n);

    /* Kahn's order over the dead: a path goes once no dead path still
     * refers to it. */
    size_t *queue = plan_xmalloc((g.n + 1) * sizeof(size_t));
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < g.n; i++) {
        node *nd = &g.nodes[i];
        if (nd->live) {
            out->live++;
            continue;
        }
        for (size_t e = 0; e < nd->ref_count; e++)
            g.nodes[g.refs[nd->ref_start + e]].dead_referrers++;
    }
    for (size_t i = 0; i < g.n; i++)
        if (!g.nodes[i].live && !g.nodes[i].dead_referrers)
            queue[tail++] = i;
    size_t dead = 0;
    for (size_t i = 0; i < g.n; i++)
        dead += !g.nodes[i].live;
    plan_emit_phase(s->ctx, "collecting", dead, false);
    stripe_locks sl = {plan_xmalloc(STRIPE_SLOTS * sizeof(int))};
    for (int i = 0; i < STRIPE_SLOTS; i++)
        sl.fd[i] = -1;
    char **batch = plan_xcalloc(GC_BATCH, sizeof(char *));
    size_t nb = 0, done = 0;
    while (head < tail && !rc) {
        if (o->max_freed && out->freed >= o->max_freed)
            break;
        node *nd = &g.nodes[queue[head++]];
        if (!o->dry_run && !stripe_take(s, &sl, nd->basename)) {
            out->skipped++;
            continue; /* and what it refers to stays, since it is not released */
        }
        plan_strlist_add(&out->deleted, nd->basename);
        out->freed += nd->size;
        for (size_t e = 0; e < nd->ref_count; e++) {
            node *r = &g.nodes[g.refs[nd->ref_start + e]];
            if (!r->live && --r->dead_referrers == 0)
                queue[tail++] = (size_t)(r - g.nodes);
        }
        if (!o->dry_run) {
            batch[nb++] = nd->basename;
            if (nb == GC_BATCH)
                rc = flush_batch(s, &sl, batch, &nb);
        }
        plan_emit_progress(s->ctx, "collecting", ++done, dead, false);
    }
    if (!rc && !o->dry_run)
        rc = flush_batch(s, &sl, batch, &nb);
    stripes_release(&sl);
    free(sl.fd);
    plan_emit_done(s->ctx, "collecting");
    if (!rc && !o->dry_run)
        out->freed += prune_links(s);
    /* Dead paths not reached (kept by a skipped referrer, or beyond
     * max_freed) are neither deleted nor live. */
    free(batch);
    free(queue);
    graph_release(&g);
    return rc;
}

int plan_store_gc(plan_store *s, const plan_gc_opts *opts, plan_gc_result *out)
{
    plan_gc_opts none = {0};
    const plan_gc_opts *o = opts ? opts : &none;
    memset(out, 0, sizeof(*out));
    plan_strlist_init(&out->deleted);
    plan_strlist_init(&out->unregistered);
    char *run = plan_path_join(s->gc_dir, "run.lock");
    int run_fd = open(run, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (run_fd < 0)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", run);
    else if (flock(run_fd, LOCK_EX | LOCK_NB) != 0)
        rc = plan_fail(s->ctx, PLAN_ERR_BUSY,
                       "another 'plan gc' is running on '%s': wait for it to finish", s->root);
    free(run);
    if (!rc)
        rc = gc_lock(s, LOCK_EX);
    if (!rc) {
        rc = collect(s, o, out);
        if (!rc)
            rc = sweep_unregistered(s, o->dry_run, out);
        gc_unlock(s);
    }
    if (run_fd >= 0)
        close(run_fd);
    /* What was registered without waiting for the disk is on it now. */
    if (!rc && !o->dry_run)
        rc = plan_store_settle(s);
    return rc;
}

/* At open: finish a batch whose rows an interrupted collector deleted. */
void gc_resume(plan_store *s)
{
    char *intent = plan_path_join(s->gc_dir, "deleting");
    int fd = open(intent, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(intent);
        return;
    }
    /* A collector at work holds run.lock: its intent is its own business. */
    char *run = plan_path_join(s->gc_dir, "run.lock");
    int run_fd = open(run, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(run);
    if (run_fd < 0 || flock(run_fd, LOCK_EX | LOCK_NB) != 0) {
        if (run_fd >= 0)
            close(run_fd);
        close(fd);
        free(intent);
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd); /* a collector is at work */
        close(run_fd);
        free(intent);
        return;
    }
    plan_buf text;
    plan_buf_init(&text);
    /* A file that cannot be read whole is left for the next open: a line
     * cut off could name the wrong path. */
    bool all_done = plan_fs_read_fd(fd, 256u << 20, &text) == 0;
    if (!all_done)
        plan_buf_reset(&text);
    plan_buf_addc(&text, '\0');
    char *save = NULL;
    for (char *line = strtok_r(text.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!intent_line_ok(line))
            continue;
        /* Never wait at open: a busy stripe is someone registering; the
         * intent stays for the next open. */
        int lock_fd = digest_trylock(s, line);
        if (lock_fd < 0) {
            all_done = false;
            continue;
        }
        if (db_has_path(s, line) == 0) {
            char *path = store_path_of(s, line);
            struct stat st;
            if (lstat(path, &st) == 0) {
                plan_info(s->ctx, "removing '%s': an interrupted gc had deleted it", path);
                plan_fs_rmtree(path);
            }
            free(path);
        }
        digest_unlock(lock_fd);
    }
    plan_buf_release(&text);
    if (all_done)
        unlink(intent);
    close(fd);
    close(run_fd);
    free(intent);
}
