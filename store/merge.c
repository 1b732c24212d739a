/* Merging plans: the union of their trees as a new store path.
 *
 * Store files are immutable and read-only, so the union shares them: each
 * file of the result is a hard link to a plan's file (one more name for
 * the same inode, as optimise.c makes), and only directories, symlinks
 * and the files the caller adds (the merged manifest, structurally merged
 * configuration) are new.  The union is made in a work directory of the
 * store, hashed and registered like any added tree, so a crash leaves
 * nothing behind and the same union is always the same path. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct plan_merge {
    plan_store *store;
    work_dir w;
    char *tree;              /* <work dir>/tree: the union */
    plan_strlist refs;
    plan_merge_stats stats;
};

/* One entry of one plan's tree. */
typedef struct rec {
    const char *path;
    size_t plan;
    const tree_entry *e;
    bool alive;   /* still part of the union (its parents won) */
} rec;

typedef struct merger {
    plan_ctx *ctx;
    plan_merge *m;
    const plan_farm_plan *plans;
    size_t n_plans;
    const plan_merge_opts *o;
    plan_strlist *conflicts;
    rec *recs;
    size_t n_recs;
    uint8_t *scratch;
} merger;

static int rec_cmp(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    return x->plan < y->plan ? -1 : x->plan > y->plan;
}

static bool in_own_metadata(const char *path)
{
    return !strncmp(path, ".plan", 5) && (path[5] == '\0' || path[5] == '/');
}

static const rec *find_rec(const merger *g, const char *path, size_t plan)
{
    rec key = {.path = path, .plan = plan};
    return bsearch(&key, g->recs, g->n_recs, sizeof(rec), rec_cmp);
}

/* An entry is part of the union while its parent directory, in the same
 * plan, is: a directory that lost a conflict takes its contents along. */
static bool parent_alive(const merger *g, const rec *r)
{
    const char *slash = strrchr(r->path, '/');
    if (!slash)
        return true;
    char *parent = plan_xstrndup(r->path, (size_t)(slash - r->path));
    const rec *p = find_rec(g, parent, r->plan);
    free(parent);
    return p && p->alive;
}

static char *plan_file(const merger *g, const rec *r)
{
    return plan_path_join(g->plans[r->plan].path, r->path);
}

static void add_conflict(merger *g, rec *const *alive, size_t k, const char *what)
{
    plan_buf b;
    plan_buf_init(&b);
    plan_buf_printf(&b, "'%s' is provided by ", alive[0]->path);
    for (size_t i = 0; i < k; i++) {
        const plan_farm_plan *p = &g->plans[alive[i]->plan];
        plan_buf_printf(&b, "%s%s %s", i == 0 ? "" : i + 1 == k ? " and " : ", ", p->name,
                        p->version);
    }
    plan_buf_printf(&b, " %s", what);
    plan_strlist_take(g->conflicts, plan_buf_detach(&b));
}

/* The provider that wins a conflict: the first preferred name, else the
 * strategy; -1 when nothing settles it. */
static ssize_t winner(const merger *g, rec *const *alive, size_t k)
{
    for (size_t i = 0; i < g->o->n_prefer; i++)
        for (size_t j = 0; j < k; j++)
            if (!strcmp(g->plans[alive[j]->plan].name, g->o->prefer[i]))
                return (ssize_t)j;
    if (g->o->strategy == PLAN_COLLIDE_PREFER_FIRST)
        return 0;
    if (g->o->strategy == PLAN_COLLIDE_PREFER_LAST)
        return (ssize_t)k - 1;
    return -1;
}

static int link_file(merger *g, const rec *r)
{
    char *src = plan_file(g, r);
    char *dst = plan_path_join(g->m->tree, r->path);
    int rc = 0;
    if (link(src, dst) == 0) {
        g->m->stats.linked++;
        goto out;
    }
    /* Too many links to one inode, or a filesystem that refuses: a copy
     * (a reflink where copy_file_range can make one), sealed like the
     * original. */
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int fd = in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    uint64_t copied = 0;
    struct timespec times[2] = {{1, 0}, {1, 0}};
    if (in < 0 || fd < 0)
        rc = plan_fail_errno(g->ctx, PLAN_ERR_IO, errno, "cannot copy '%s' to '%s'", src, dst);
    else if ((rc = copy_fd_data(in, fd, r->e->size, g->scratch, &copied)) != 0)
        rc = plan_fail_errno(g->ctx, PLAN_ERR_IO, -rc, "cannot copy '%s' to '%s'", src, dst);
    else if (copied != r->e->size)
        rc = plan_fail(g->ctx, PLAN_ERR_CORRUPT,
                       "'%s' changed size while it was copied: run 'plan store verify'", src);
    else if (fchmod(fd, r->e->exec ? 0555 : 0444) != 0 || futimens(fd, times) != 0)
        rc = plan_fail_errno(g->ctx, PLAN_ERR_IO, errno, "cannot seal '%s'", dst);
    else
        g->m->stats.copied++;
    if (in >= 0)
        close(in);
    if (fd >= 0)
        close(fd);
out:
    free(src);
    free(dst);
    return rc;
}

static int write_sealed(plan_ctx *ctx, const char *path, const void *data, size_t len,
                        bool exec)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", path);
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            return plan_fail_errno(ctx, PLAN_ERR_IO, e, "cannot write '%s'", path);
        }
        p += w;
        left -= (size_t)w;
    }
    struct timespec times[2] = {{1, 0}, {1, 0}};
    int rc = 0;
    if (fchmod(fd, exec ? 0555 : 0444) != 0 || futimens(fd, times) != 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot seal '%s'", path);
    close(fd);
    return rc;
}

/* Put r (the one provider left) into the union. */
static int emit(merger *g, const rec *r)
{
    char *dst = plan_path_join(g->m->tree, r->path);
    int rc = 0;
    if (r->e->type == TREE_DIR) {
        if (mkdir(dst, 0755) != 0)
            rc = plan_fail_errno(g->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dst);
    } else if (r->e->type == TREE_SYMLINK) {
        /* The same target text: a link into the plan's own store path
         * keeps pointing there, which makes that plan a reference. */
        if (symlink(r->e->target, dst) != 0)
            rc = plan_fail_errno(g->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dst);
    } else {
        rc = link_file(g, r);
    }
    free(dst);
    return rc;
}

static bool all_same_symlink(rec *const *alive, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (alive[i]->e->type != TREE_SYMLINK || strcmp(alive[i]->e->target, alive[0]->e->target))
            return false;
    return true;
}

static bool all_identical_files(const merger *g, rec *const *alive, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (alive[i]->e->type != TREE_FILE)
            return false;
    char *first = plan_file(g, alive[0]);
    bool same = true;
    for (size_t i = 1; i < k && same; i++) {
        char *other = plan_file(g, alive[i]);
        same = alive[i]->e->exec == alive[0]->e->exec && same_content(first, other);
        free(other);
    }
    free(first);
    return same;
}

/* Offer files that differ to the structured merge: 0 merged (written),
 * 1 declined, 2 a conflict was recorded, <0 an error. */
static int try_structured(merger *g, rec *const *alive, size_t k)
{
    if (!g->o->merge_file)
        return 1;
    for (size_t i = 0; i < k; i++)
        if (alive[i]->e->type != TREE_FILE)
            return 1;
    char **files = plan_xcalloc(k, sizeof(char *));
    size_t *plans = plan_xcalloc(k, sizeof(size_t));
    for (size_t i = 0; i < k; i++) {
        files[i] = plan_file(g, alive[i]);
        plans[i] = alive[i]->plan;
    }
    plan_buf out;
    plan_buf_init(&out);
    size_t before = g->conflicts->len;
    int rc = g->o->merge_file(g->o->merge_arg, alive[0]->path, (const char *const *)files,
                              plans, k, &out, g->conflicts);
    if (rc == 0 && g->conflicts->len > before)
        rc = 2;
    else if (rc == 0) {
        char *dst = plan_path_join(g->m->tree, alive[0]->path);
        rc = write_sealed(g->ctx, dst, out.data, out.len, alive[0]->e->exec);
        free(dst);
        if (!rc)
            g->m->stats.merged++;
    } else if (rc > 0) {
        rc = 1;
    }
    plan_buf_release(&out);
    for (size_t i = 0; i < k; i++)
        free(files[i]);
    free(files);
    free(plans);
    return rc;
}

static void bury(rec *const *alive, size_t k, ssize_t keep)
{
    for (size_t i = 0; i < k; i++)
        if ((ssize_t)i != keep)
            alive[i]->alive = false;
}

/* Settle one name that the providers alive[0..k) share. */
static int settle(merger *g, rec **alive, size_t k)
{
    if (k == 1)
        return emit(g, alive[0]);
    size_t dirs = 0;
    for (size_t i = 0; i < k; i++)
        dirs += alive[i]->e->type == TREE_DIR;
    if (dirs == k)
        return emit(g, alive[0]); /* merged: every provider's contents follow */
    if (all_same_symlink(alive, k) || all_identical_files(g, alive, k)) {
        g->m->stats.identical++;
        bury(alive, k, 0);
        return emit(g, alive[0]);
    }
    if (!dirs) {
        int s = try_structured(g, alive, k);
        if (s != 1) {
            bury(alive, k, -1);
            return s < 0 ? s : 0;
        }
    }
    ssize_t w = winner(g, alive, k);
    if (w < 0) {
        add_conflict(g, alive, k, dirs ? "(a directory in some, not in others)"
                                       : "with different content");
        bury(alive, k, -1);
        return 0;
    }
    g->m->stats.chosen++;
    if (alive[w]->e->type != TREE_DIR) {
        bury(alive, k, w);
        return emit(g, alive[w]);
    }
    /* A directory won: it merges with the other directories, and what
     * is not a directory loses. */
    for (size_t i = 0; i < k; i++)
        if (alive[i]->e->type != TREE_DIR)
            alive[i]->alive = false;
    return emit(g, alive[w]);
}

static int union_trees(merger *g)
{
    rec **alive = plan_xcalloc(g->n_plans ? g->n_plans : 1, sizeof(rec *));
    int rc = 0;
    for (size_t i = 0; i < g->n_recs && !rc;) {
        size_t j = i, k = 0;
        for (; j < g->n_recs && !strcmp(g->recs[j].path, g->recs[i].path); j++) {
            rec *r = &g->recs[j];
            r->alive = parent_alive(g, r);
            if (r->alive)
                alive[k++] = r;
        }
        if (k)
            rc = settle(g, alive, k);
        i = j;
    }
    free(alive);
    return rc;
}

/* References: each plan's own, and the plans the union names. */
static int union_references(merger *g)
{
    plan_store *s = g->m->store;
    plan_strlist digests;
    plan_strlist_init(&digests);
    int rc = 0;
    for (size_t i = 0; i < g->n_plans && !rc; i++) {
        plan_path_info *info = NULL;
        if ((rc = plan_store_path_info(s, g->plans[i].path, &info)))
            break;
        for (size_t r = 0; r < info->references.len; r++)
            if (!plan_strlist_contains(&g->m->refs, info->references.items[r]))
                plan_strlist_add(&g->m->refs, info->references.items[r]);
        plan_strlist_add(&digests, info->digest);
        plan_path_info_free(info);
    }
    bool *found = plan_xcalloc(g->n_plans ? g->n_plans : 1, sizeof(bool));
    if (!rc)
        rc = plan_store_scan_refs(g->ctx, g->m->tree, (const char *const *)digests.items,
                                  digests.len, found);
    for (size_t i = 0; i < g->n_plans && !rc; i++) {
        const char *base = strrchr(g->plans[i].path, '/');
        base = base ? base + 1 : g->plans[i].path;
        if (found[i] && !plan_strlist_contains(&g->m->refs, base))
            plan_strlist_add(&g->m->refs, base);
    }
    free(found);
    plan_strlist_release(&digests);
    plan_strlist_sort(&g->m->refs);
    return rc;
}

static int check_plans(plan_store *s, const plan_farm_plan *plans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *base = NULL;
        int rc = plan_store_resolve(s, plans[i].path, &base);
        if (rc)
            return plan_fail_wrap(s->ctx, rc, "cannot merge '%s'", plans[i].path);
        char *canonical = store_path_of(s, base);
        bool whole = !strcmp(canonical, plans[i].path);
        free(canonical);
        free(base);
        if (!whole)
            return plan_fail(s->ctx, PLAN_ERR_INVALID,
                             "'%s' is inside a store path, not one: name the store path itself",
                             plans[i].path);
    }
    return 0;
}

static int gather_trees(merger *g, tree *trees)
{
    size_t total = 0;
    for (size_t i = 0; i < g->n_plans; i++) {
        int rc = tree_walk(g->ctx, g->plans[i].path, &trees[i]);
        if (rc)
            return rc;
        total += trees[i].len;
    }
    g->recs = plan_xcalloc(total ? total : 1, sizeof(rec));
    for (size_t i = 0; i < g->n_plans; i++)
        for (size_t k = 0; k < trees[i].len; k++) {
            const tree_entry *e = &trees[i].items[k];
            /* Each plan's manifest is its own; the caller writes the
             * union's. */
            if (in_own_metadata(e->path))
                continue;
            g->recs[g->n_recs++] = (rec){.path = e->path, .plan = i, .e = e};
        }
    if (g->n_recs > 1)
        qsort(g->recs, g->n_recs, sizeof(rec), rec_cmp);
    return 0;
}

void plan_store_merge_abort(plan_merge *m)
{
    if (!m)
        return;
    work_dir_remove(&m->w);
    free(m->tree);
    plan_strlist_release(&m->refs);
    free(m);
}

int plan_store_merge_begin(plan_store *s, const plan_farm_plan *plans, size_t n,
                           const plan_merge_opts *opts, plan_strlist *conflicts,
                           plan_merge **out)
{
    *out = NULL;
    plan_merge_opts none = {0};
    opts = opts ? opts : &none;
    for (size_t i = 0; i < opts->n_prefer; i++) {
        bool known = false;
        for (size_t k = 0; k < n && !known; k++)
            known = !strcmp(plans[k].name, opts->prefer[i]);
        if (!known)
            return plan_fail(s->ctx, PLAN_ERR_INVALID,
                             "--prefer '%s' names none of the plans being merged",
                             opts->prefer[i]);
    }
    int rc = check_plans(s, plans, n);
    if (rc)
        return rc;
    plan_merge *m = plan_xcalloc(1, sizeof(*m));
    m->store = s;
    plan_strlist_init(&m->refs);
    if ((rc = work_dir_create(s, &m->w))) {
        free(m);
        return rc;
    }
    m->tree = plan_path_join(m->w.path, "tree");
    merger g = {.ctx = s->ctx, .m = m, .plans = plans, .n_plans = n, .o = opts,
                .conflicts = conflicts, .scratch = plan_xmalloc(TREE_SCRATCH_BYTES)};
    tree *trees = plan_xcalloc(n ? n : 1, sizeof(tree));
    if (mkdir(m->tree, 0755) != 0)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", m->tree);
    if (!rc)
        rc = gather_trees(&g, trees);
    if (!rc)
        rc = union_trees(&g);
    if (!rc && !conflicts->len)
        rc = union_references(&g);
    for (size_t i = 0; i < n; i++)
        tree_release(&trees[i]);
    free(trees);
    free(g.recs);
    free(g.scratch);
    if (rc) {
        plan_store_merge_abort(m);
        return rc;
    }
    *out = m;
    return 0;
}

const plan_strlist *plan_merge_references(const plan_merge *m) { return &m->refs; }
const plan_merge_stats *plan_merge_get_stats(const plan_merge *m) { return &m->stats; }

int plan_merge_add_file(plan_merge *m, const char *rel, const void *data, size_t len)
{
    plan_ctx *ctx = m->store->ctx;
    if (!*rel || rel[0] == '/' || strstr(rel, ".."))
        return plan_fail(ctx, PLAN_ERR_INVALID, "'%s' is not a path inside the merge", rel);
    char *path = plan_path_join(m->tree, rel);
    char *dir = plan_xstrdup(path);
    *strrchr(dir, '/') = '\0';
    int r = plan_fs_mkdirs(dir, 0755);
    int rc = r ? plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot create '%s'", dir)
               : write_sealed(ctx, path, data, len, false);
    free(dir);
    free(path);
    return rc;
}

int plan_store_merge_finish(plan_store *s, plan_merge *m, const char *name,
                            const char *version, plan_output_result *result)
{
    plan_ctx *ctx = s->ctx;
    memset(result, 0, sizeof(*result));
    const char *why;
    int rc = 0;
    if ((why = plan_store_check_name(name)))
        rc = plan_fail(ctx, PLAN_ERR_INVALID, "invalid name '%s': %s", name, why);
    else if ((why = plan_store_check_version(version)))
        rc = plan_fail(ctx, PLAN_ERR_INVALID, "invalid version '%s': %s", version, why);
    if (rc) {
        plan_store_merge_abort(m);
        return rc;
    }
    tree t = {0};
    plan_hash h;
    char digest[PLAN_DIGEST_CHARS + 1], text[PLAN_HASH_TEXT_LEN + 1];
    char *basename = NULL;
    int lock_fd = -1;
    /* No mask: the union cannot contain the digest it is about to get. */
    if ((rc = tree_walk(ctx, m->tree, &t)) ||
        (rc = tree_hash_files(ctx, m->tree, &t, NULL, s->threads)))
        goto out;
    tree_hash(&t, NULL, &h);
    plan_hash_format(&h, text);
    plan_store_digest(s->store_dir, name, version, &h, digest);
    basename = make_basename(digest, name, version);
    if ((rc = digest_lock(s, digest, &lock_fd)))
        goto out;
    int present = hold_if_present(s, basename);
    if (present < 0) {
        rc = present;
        goto out;
    }
    if (present) {
        result->existed = true; /* the work directory goes; nothing new stays */
    } else {
        plan_tree_stats stats;
        tree_stats(&t, &stats);
        db_path_row row = {.basename = basename, .digest = digest, .name = name,
                           .version = version, .content_hash = text, .size = stats.bytes};
        /* Files are sealed already (they are the plans' own, or were
         * written sealed); directories and links are sealed here. */
        if ((rc = tree_seal(s, m->tree, &t, true)) ||
            (rc = register_tree(s, m->tree, &row, &m->refs)))
            goto out;
    }
    result->path = store_path_of(s, basename);
out:
    digest_unlock(lock_fd);
    tree_release(&t);
    free(basename);
    plan_store_merge_abort(m);
    return rc;
}
