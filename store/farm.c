/* The symlink farm: N plans merged into one tree of symlinks.
 *
 * A name that one plan alone provides becomes one link to it (a whole
 * directory folded into a link, as stow does), so a farm of plans with
 * private trees costs a handful of links.  Directories several plans
 * provide are created and merged entry by entry.  Link targets are short
 * and relative: dest/.plan/<i> points at plan i, and a link at depth d is
 * "../" * d + ".plan/<i>/<path>" (ext4 keeps targets under 60 bytes in the
 * inode; longer ones cost a block each). */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct provider {
    size_t plan;     /* index into the plans */
    bool dir;        /* a directory (or a link to one) */
} provider;

typedef struct entry {
    char *name;
    provider *prov;
    size_t n, cap;
} entry;

typedef struct farm {
    plan_ctx *ctx;
    const plan_farm_plan *plans;
    size_t n_plans;
    const plan_farm_opts *o;
    plan_farm_stats *st;
    plan_strlist collisions; /* messages of unresolved collisions (the first ten) */
    size_t n_collisions;
    unsigned depth;        /* directories merged below the top */
} farm;

const char *plan_collide_name(plan_collide c)
{
    switch (c) {
    case PLAN_COLLIDE_PREFER_FIRST: return "prefer-first";
    case PLAN_COLLIDE_PREFER_LAST: return "prefer-last";
    default: return "error";
    }
}

int plan_collide_parse(const char *text, plan_collide *out)
{
    if (!strcmp(text, "error"))
        *out = PLAN_COLLIDE_ERROR;
    else if (!strcmp(text, "prefer-first"))
        *out = PLAN_COLLIDE_PREFER_FIRST;
    else if (!strcmp(text, "prefer-last"))
        *out = PLAN_COLLIDE_PREFER_LAST;
    else
        return -1;
    return 0;
}

static char *plan_src(const farm *f, size_t i, const char *rel)
{
    return *rel ? plan_xasprintf("%s/%s", f->plans[i].path, rel) : plan_xstrdup(f->plans[i].path);
}

typedef struct seen {
    char *name;
    provider prov;
} seen;

static int seen_cmp(const void *a, const void *b)
{
    const seen *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->prov.plan < y->prov.plan ? -1 : x->prov.plan > y->prov.plan;
}

typedef struct seen_list {
    seen *items;
    size_t len, cap;
} seen_list;

static void seen_add(seen_list *l, const char *name, size_t len, provider p)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = plan_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->len++] = (seen){plan_xstrndup(name, len), p};
}

/* Whether the link at rel in plan i names a directory. */
static bool link_is_dir(const farm *f, size_t i, const char *rel)
{
    char *path = plan_src(f, i, rel);
    struct stat sb;
    bool dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(path);
    return dir;
}

/* Whether the listing has rel as a directory of its own: not a link to
 * one (whose entries are not listed under rel), and not below such a link. */
static bool listed_dir(const store_listing *ls, const char *rel)
{
    if (!*rel)
        return true;
    ssize_t i = plan_strlist_index_sorted(&ls->paths, rel);
    return i >= 0 && ls->types[i] == 'd';
}

/* The entries directly in rel of plan p.plan, from the listing its store
 * kept when it registered the path: no directory read. */
static void gather_listed(const farm *f, const store_listing *ls, const char *rel, provider p,
                          seen_list *out)
{
    const plan_strlist *paths = &ls->paths;
    size_t rlen = strlen(rel), lo = 0, hi = paths->len;
    /* The descendants of rel are the paths that start with "rel/": one
     * run of the sorted list, found by bisection. */
    char *prefix = plan_xasprintf("%s/", rel);
    if (rlen) {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(paths->items[mid], prefix) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        rlen++;
    }
    for (size_t i = lo; i < paths->len; i++) {
        const char *path = paths->items[i];
        if (rlen && strncmp(path, prefix, rlen) != 0)
            break;
        const char *name = path + rlen;
        if (strchr(name, '/'))
            continue; /* deeper down */
        if (!rlen && !strcmp(name, ".plan"))
            continue; /* each plan's metadata stays its own */
        bool is_dir = ls->types[i] == 'd';
        if (ls->types[i] == 'l') {
            char *sub = rlen ? plan_xasprintf("%s/%s", rel, name) : plan_xstrdup(name);
            is_dir = link_is_dir(f, p.plan, sub);
            free(sub);
        }
        seen_add(out, name, strlen(name), (provider){p.plan, is_dir});
    }
    free(prefix);
}

/* Read the entries of rel in every providing plan into a table sorted by
 * name, each with its providers in plan order: one sort, so a directory
 * that twenty plans share costs n log n, not n squared. */
static int gather(farm *f, const char *rel, const provider *provs, size_t n, entry **out,
                  size_t *n_out)
{
    seen_list found = {0};
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        const store_listing *ls =
            f->o->store ? store_listing_of(f->o->store, f->plans[provs[k].plan].path) : NULL;
        /* A directory the plan has through a link is read through it. */
        if (ls && listed_dir(ls, rel)) {
            gather_listed(f, ls, rel, provs[k], &found);
            continue;
        }
        char *dir = plan_src(f, provs[k].plan, rel);
        DIR *d = opendir(dir);
        if (!d) {
            rc = plan_fail_errno(f->ctx, PLAN_ERR_IO, errno, "cannot read '%s'", dir);
            free(dir);
            break;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            const char *nm = de->d_name;
            if (!strcmp(nm, ".") || !strcmp(nm, ".."))
                continue;
            if (!*rel && !strcmp(nm, ".plan"))
                continue; /* each plan's metadata stays its own */
            /* The directory entry says what most entries are; only links
             * (which may name a directory) and unknown types cost a stat. */
            bool is_dir = de->d_type == DT_DIR;
            if (de->d_type == DT_LNK || de->d_type == DT_UNKNOWN) {
                struct stat sb;
                is_dir = fstatat(dirfd(d), nm, &sb, 0) == 0 && S_ISDIR(sb.st_mode);
            }
            seen_add(&found, nm, strlen(nm), (provider){provs[k].plan, is_dir});
        }
        closedir(d);
        free(dir);
    }
    seen *all = found.items;
    size_t len = found.len;
    if (len)
        qsort(all, len, sizeof(*all), seen_cmp);
    entry *ents = NULL;
    size_t ne = 0, ecap = 0;
    for (size_t i = 0; i < len; i++) {
        if (rc || (ne && !strcmp(ents[ne - 1].name, all[i].name))) {
            if (!rc) {
                entry *e = &ents[ne - 1];
                if (e->n == e->cap) {
                    e->cap *= 2;
                    e->prov = plan_xrealloc(e->prov, e->cap * sizeof(provider));
                }
                e->prov[e->n++] = all[i].prov;
            }
            free(all[i].name);
            continue;
        }
        if (ne == ecap) {
            ecap = ecap ? 2 * ecap : 32;
            ents = plan_xrealloc(ents, ecap * sizeof(*ents));
        }
        entry *e = &ents[ne++];
        e->name = all[i].name; /* taken */
        e->cap = 2;
        e->prov = plan_xmalloc(e->cap * sizeof(provider));
        e->prov[0] = all[i].prov;
        e->n = 1;
    }
    free(all);
    if (rc) {
        for (size_t i = 0; i < ne; i++) {
            free(ents[i].name);
            free(ents[i].prov);
        }
        free(ents);
        return rc;
    }
    *out = ents;
    *n_out = ne;
    return 0;
}

/* Same content: same target for symlinks, same bytes and executable bit
 * for files (stat follows links, so a link and the file it names agree).
 * Shared with merge.c, whose conflicts follow the farm's rules. */
bool same_content(const char *a, const char *b)
{
    struct stat sa, sb;
    if (lstat(a, &sa) != 0 || lstat(b, &sb) != 0)
        return false;
    if (S_ISLNK(sa.st_mode) && S_ISLNK(sb.st_mode)) {
        char ta[4096], tb[4096];
        ssize_t la = readlink(a, ta, sizeof(ta)), lb = readlink(b, tb, sizeof(tb));
        if (la >= 0 && la == lb && !memcmp(ta, tb, (size_t)la))
            return true;
    }
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0 || !S_ISREG(sa.st_mode) || !S_ISREG(sb.st_mode))
        return false;
    if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
        return true;
    if (sa.st_size != sb.st_size || ((sa.st_mode ^ sb.st_mode) & 0111))
        return false;
    int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
    bool same = fa >= 0 && fb >= 0;
    static const size_t chunk = 64 * 1024;
    char *ba = plan_xmalloc(chunk), *bb = plan_xmalloc(chunk);
    while (same) {
        ssize_t ra = read(fa, ba, chunk), rb = read(fb, bb, chunk);
        if (ra < 0 || ra != rb || memcmp(ba, bb, (size_t)ra))
            same = false;
        if (ra <= 0)
            break;
    }
    free(ba);
    free(bb);
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return same;
}

static int make_link(farm *f, const char *dest, const char *rel, size_t plan)
{
    plan_buf target;
    plan_buf_init(&target);
    for (const char *c = rel; *c; c++)
        if (*c == '/')
            plan_buf_adds(&target, "../");
    plan_buf_printf(&target, ".plan/%zu/%s", plan, rel);
    char *link = plan_path_join(dest, rel);
    int rc = 0;
    if (symlink(target.data, link) != 0)
        rc = plan_fail_errno(f->ctx, PLAN_ERR_IO, errno, "cannot create the link '%s'", link);
    else
        f->st->links++;
    free(link);
    plan_buf_release(&target);
    return rc;
}

static ssize_t index_of_name(const farm *f, const entry *e, const char *name)
{
    for (size_t k = 0; k < e->n; k++)
        if (!strcmp(f->plans[e->prov[k].plan].name, name))
            return (ssize_t)k;
    return -1;
}

/* The provider that wins a real collision at rel, or -1. */
static ssize_t choose(const farm *f, const entry *e, const char *rel)
{
    for (size_t i = 0; i < f->o->n_choose; i++) {
        if (strcmp(f->o->choose_paths[i], rel) != 0)
            continue;
        ssize_t k = index_of_name(f, e, f->o->choose_names[i]);
        if (k >= 0)
            return k;
    }
    for (size_t i = 0; i < f->o->n_prefer; i++) {
        ssize_t k = index_of_name(f, e, f->o->prefer[i]);
        if (k >= 0)
            return k;
    }
    if (f->o->strategy == PLAN_COLLIDE_PREFER_FIRST)
        return 0;
    if (f->o->strategy == PLAN_COLLIDE_PREFER_LAST)
        return (ssize_t)e->n - 1;
    return -1;
}

#define COLLISIONS_SHOWN 10

static void record_collision(farm *f, const entry *e, const char *rel)
{
    f->n_collisions++;
    if (f->n_collisions > COLLISIONS_SHOWN)
        return;
    plan_buf m;
    plan_buf_init(&m);
    const plan_farm_plan *a = &f->plans[e->prov[0].plan];
    plan_buf_printf(&m, "'%s' is provided by %s %s", rel, a->name, a->version);
    for (size_t k = 1; k < e->n; k++) {
        const plan_farm_plan *b = &f->plans[e->prov[k].plan];
        plan_buf_printf(&m, "%s %s %s", k + 1 == e->n ? " and" : ",", b->name, b->version);
    }
    size_t dirs = 0;
    for (size_t k = 0; k < e->n; k++)
        dirs += e->prov[k].dir;
    plan_buf_adds(&m, dirs ? " (a directory in some, a file in others)"
                           : " with different content");
    plan_strlist_take(&f->collisions, plan_buf_detach(&m));
}

static int merge_dir(farm *f, const char *dest, const char *rel, const provider *provs,
                     size_t n);

/* Every provider has rel as a symlink with the same target. */
static bool same_symlink(const farm *f, const entry *e, const char *rel)
{
    char first[4096];
    char *path = plan_src(f, e->prov[0].plan, rel);
    ssize_t n = readlink(path, first, sizeof(first));
    free(path);
    for (size_t k = 1; k < e->n && n >= 0; k++) {
        char other[4096];
        path = plan_src(f, e->prov[k].plan, rel);
        ssize_t m = readlink(path, other, sizeof(other));
        free(path);
        if (m != n || memcmp(first, other, (size_t)n) != 0)
            n = -1;
    }
    return n >= 0;
}

static int place(farm *f, const char *dest, const char *rel, entry *e)
{
    if (e->n == 1)
        return make_link(f, dest, rel, e->prov[0].plan);
    size_t dirs = 0;
    for (size_t k = 0; k < e->n; k++)
        dirs += e->prov[k].dir;
    /* The same link everywhere (bin/X11 -> . included) is one link, and is
     * never descended. */
    if (same_symlink(f, e, rel)) {
        f->st->identical++;
        return make_link(f, dest, rel, e->prov[0].plan);
    }
    if (dirs == e->n) {
        if (f->depth >= 64)
            return plan_fail(f->ctx, PLAN_ERR_FAILED,
                             "'%s' is nested more than 64 directories deep (a symlink loop?)",
                             rel);
        char *path = plan_path_join(dest, rel);
        int rc = mkdir(path, 0755) == 0
                     ? 0
                     : plan_fail_errno(f->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", path);
        free(path);
        f->st->dirs += rc == 0;
        if (rc)
            return rc;
        f->depth++;
        rc = merge_dir(f, dest, rel, e->prov, e->n);
        f->depth--;
        return rc;
    }
    if (dirs == 0) {
        bool identical = true;
        char *first = plan_src(f, e->prov[0].plan, rel);
        for (size_t k = 1; k < e->n && identical; k++) {
            char *other = plan_src(f, e->prov[k].plan, rel);
            identical = same_content(first, other);
            free(other);
        }
        free(first);
        if (identical) {
            f->st->identical++;
            return make_link(f, dest, rel, e->prov[0].plan);
        }
    }
    ssize_t win = choose(f, e, rel);
    if (win < 0) {
        record_collision(f, e, rel);
        return 0;
    }
    f->st->chosen++;
    if (!e->prov[win].dir)
        return make_link(f, dest, rel, e->prov[win].plan);
    /* The winner is a directory: it merges with the other directories and
     * the files lose. */
    entry sub = {.name = e->name, .prov = plan_xcalloc(e->n, sizeof(provider))};
    for (size_t k = 0; k < e->n; k++)
        if (e->prov[k].dir)
            sub.prov[sub.n++] = e->prov[k];
    int rc = place(f, dest, rel, &sub);
    free(sub.prov);
    return rc;
}

static void entries_free(entry *ents, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        free(ents[i].name);
        free(ents[i].prov);
    }
    free(ents);
}

static int merge_dir(farm *f, const char *dest, const char *rel, const provider *provs,
                     size_t n)
{
    entry *ents = NULL;
    size_t len = 0;
    int rc = gather(f, rel, provs, n, &ents, &len);
    for (size_t i = 0; i < len && !rc; i++) {
        char *sub = *rel ? plan_xasprintf("%s/%s", rel, ents[i].name) : plan_xstrdup(ents[i].name);
        rc = place(f, dest, sub, &ents[i]);
        free(sub);
    }
    entries_free(ents, len);
    return rc;
}

/* dest/.plan/<i> -> plan i, for i in [from, to).  Their targets are
 * absolute store paths, often longer than an inode holds (60 bytes on
 * ext4), so each link may cost a block: they are made in chunks, tasks of
 * their own beside the names of the top level, so the threads share them. */
static int make_plan_links(farm *f, const char *dest, size_t from, size_t to)
{
    char *meta = plan_path_join(dest, ".plan");
    int rc = 0;
    for (size_t i = from; i < to && !rc; i++) {
        char *link = plan_xasprintf("%s/%zu", meta, i);
        if (symlink(f->plans[i].path, link) != 0)
            rc = plan_fail_errno(f->ctx, PLAN_ERR_IO, errno, "cannot create the link '%s'", link);
        free(link);
    }
    free(meta);
    return rc;
}

/* Plan links per task. */
#define PLAN_LINKS_CHUNK 50

/* ---------- the top level, on several threads ---------- */

/* The names at the top of a farm (bin, lib, share, ...) and the .plan
 * links are independent of each other, and with many plans they are
 * nearly all the work, most of it in the kernel (directories read, links
 * made): they are placed on several threads, each task with a farm state
 * of its own, and what the tasks found is put together in name order, as
 * one thread would have found it. */
typedef struct top_task {
    plan_farm_stats st;
    plan_strlist collisions;
    size_t n_collisions;
} top_task;

typedef struct top_job {
    const farm *f;      /* the shared, read-only part */
    const char *dest;
    entry *ents;
    size_t n;           /* entries: tasks [0, n) place them, the others make
                           the .plan links, PLAN_LINKS_CHUNK each */
    size_t ntasks;
    top_task *tasks;
    atomic_size_t next;
    plan_first_error err;
} top_job;


static void *top_worker(void *arg)
{
    top_job *job = arg;
    plan_ctx *ctx = plan_ctx_new();
    while (!plan_first_error_failed(&job->err)) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->ntasks)
            break;
        top_task *t = &job->tasks[i];
        farm f = *job->f;
        f.ctx = ctx;
        f.st = &t->st;
        f.depth = 0;
        f.n_collisions = 0;
        plan_strlist_init(&f.collisions);
        size_t from = (i - job->n) * PLAN_LINKS_CHUNK;
        size_t to = from + PLAN_LINKS_CHUNK < f.n_plans ? from + PLAN_LINKS_CHUNK : f.n_plans;
        int rc = i < job->n ? place(&f, job->dest, job->ents[i].name, &job->ents[i])
                            : make_plan_links(&f, job->dest, from, to);
        t->collisions = f.collisions;
        t->n_collisions = f.n_collisions;
        if (rc) {
            plan_first_error_set(&job->err, rc, plan_ctx_error(ctx));
            break;
        }
    }
    plan_ctx_free(ctx);
    return NULL;
}

/* Fewer plans than this are placed on the calling thread alone. */
#define FARM_THREADS_FROM 16

static int place_top(farm *f, const char *dest, entry *ents, size_t n)
{
    char *meta = plan_path_join(dest, ".plan");
    int rc = mkdir(meta, 0755) == 0
                 ? 0
                 : plan_fail_errno(f->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", meta);
    free(meta);
    if (rc)
        return rc;
    size_t chunks = (f->n_plans + PLAN_LINKS_CHUNK - 1) / PLAN_LINKS_CHUNK;
    top_job job = {.f = f, .dest = dest, .ents = ents, .n = n, .ntasks = n + chunks,
                   .tasks = plan_xcalloc(n + chunks + 1, sizeof(top_task))};
    atomic_init(&job.next, 0);
    plan_first_error_init(&job.err);
    plan_run_threads(plan_threads_for_files(f->n_plans, FARM_THREADS_FROM), top_worker, &job);
    rc = plan_first_error_finish(&job.err, f->ctx);
    for (size_t i = 0; i < job.ntasks; i++) {
        top_task *t = &job.tasks[i];
        f->st->links += t->st.links;
        f->st->dirs += t->st.dirs;
        f->st->identical += t->st.identical;
        f->st->chosen += t->st.chosen;
        for (size_t k = 0; k < t->collisions.len; k++)
            if (f->collisions.len < COLLISIONS_SHOWN)
                plan_strlist_add(&f->collisions, t->collisions.items[k]);
        f->n_collisions += t->n_collisions;
        plan_strlist_release(&t->collisions);
    }
    free(job.tasks);
    return rc;
}

int plan_farm_build(plan_ctx *ctx, const plan_farm_plan *plans, size_t n, const char *dest,
                    const plan_farm_opts *opts, plan_farm_stats *stats)
{
    plan_farm_stats local = {0};
    plan_farm_opts none = {0};
    farm f = {.ctx = ctx, .plans = plans, .n_plans = n, .o = opts ? opts : &none,
              .st = stats ? stats : &local};
    memset(f.st, 0, sizeof(*f.st));
    plan_strlist_init(&f.collisions);
    for (size_t i = 0; i < f.o->n_prefer + f.o->n_choose; i++) {
        bool pref = i < f.o->n_prefer;
        const char *name = pref ? f.o->prefer[i] : f.o->choose_names[i - f.o->n_prefer];
        bool known = false;
        for (size_t k = 0; k < n && !known; k++)
            known = !strcmp(plans[k].name, name);
        if (!known) {
            plan_strlist_release(&f.collisions);
            return plan_fail(ctx, PLAN_ERR_INVALID, "%s '%s' names no plan of this set",
                             pref ? "--prefer" : "--choose", name);
        }
    }
    if (mkdir(dest, 0755) != 0) {
        plan_strlist_release(&f.collisions);
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dest);
    }
    provider *all = plan_xcalloc(n ? n : 1, sizeof(provider));
    for (size_t i = 0; i < n; i++)
        all[i] = (provider){i, true};
    entry *ents = NULL;
    size_t len = 0;
    int rc = gather(&f, "", all, n, &ents, &len);
    free(all);
    if (!rc)
        rc = place_top(&f, dest, ents, len);
    entries_free(ents, len);
    if (!rc && f.n_collisions) {
        plan_buf list;
        plan_buf_init(&list);
        for (size_t i = 0; i < f.collisions.len; i++)
            plan_buf_printf(&list, "\n  %s", f.collisions.items[i]);
        rc = plan_fail(ctx, PLAN_ERR_FAILED,
                       "%zu path%s collide%s:%s%s\nchoose a winner with --prefer NAME (or "
                       "'prefer:' in plan.yaml), one path with --choose PATH=NAME (plan "
                       "env), or every collision with --strategy prefer-first|prefer-last",
                       f.n_collisions, f.n_collisions == 1 ? "" : "s",
                       f.n_collisions == 1 ? "s" : "", list.data,
                       f.n_collisions > COLLISIONS_SHOWN ? "\n  ..." : "");
        plan_buf_release(&list);
    }
    plan_strlist_release(&f.collisions);
    if (rc)
        plan_fs_rmtree(dest);
    return rc;
}
