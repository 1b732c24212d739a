/* Profiles: named, numbered generations of merged trees, with 'current'
 * switched by one rename (docs/formats/profile.md).
 *
 * A commit builds the farm in generations/.<N>.tmp, writes <N>.json (the
 * collector's record of what the generation holds), renames the tree to
 * <N>, and only then replaces 'current'.  A crash before the last rename
 * leaves the previous generation current; the next open removes the
 * leftovers.  Writers hold profiles/<name>/.lock. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GENERATION_FORMAT "plan-generation-v1"

struct plan_profile {
    plan_store *store;
    char *name;
    char *dir;       /* <root>/profiles/<name> */
    char *gen_dir;   /* <dir>/generations */
    int lock_fd;
};

void plan_generation_init(plan_generation *g)
{
    memset(g, 0, sizeof(*g));
}

void plan_generation_release(plan_generation *g)
{
    plan_strlist_release(&g->req_names);
    plan_strlist_release(&g->req_ranges);
    plan_strlist_release(&g->pkg_names);
    plan_strlist_release(&g->pkg_versions);
    plan_strlist_release(&g->pkg_paths);
    plan_strlist_release(&g->prefer);
    plan_strlist_release(&g->recipes);
    free(g->strategy);
    memset(g, 0, sizeof(*g));
}

void plan_generations_free(plan_generation *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        plan_generation_release(&list[i]);
    free(list);
}

int plan_profile_check_name(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 64 || name[0] == '.' || name[0] == '-')
        return -1;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return -1;
    return 0;
}

const char *plan_profile_name(const plan_profile *p) { return p->name; }
const char *plan_profile_dir(const plan_profile *p) { return p->dir; }

static char *json_file(const plan_profile *p, unsigned n)
{
    return plan_xasprintf("%s/%u.json", p->gen_dir, n);
}

static char *tree_dir(const plan_profile *p, unsigned n)
{
    return plan_xasprintf("%s/%u", p->gen_dir, n);
}

/* A generation number from a file name "<N>" or "<N>.json"; 0 if not. */
static unsigned parse_number(const char *name, bool json)
{
    char *end;
    if (name[0] < '1' || name[0] > '9')
        return 0;
    unsigned long v = strtoul(name, &end, 10);
    if (v == 0 || v > 1000000000UL)
        return 0;
    if (json ? strcmp(end, ".json") != 0 : *end != '\0')
        return 0;
    return (unsigned)v;
}

/* Under the lock: remove what an interrupted commit left (a .tmp tree, a
 * record without its tree). */
static void clean_leftovers(plan_profile *p)
{
    DIR *d = opendir(p->gen_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] == '.' && strstr(nm, ".tmp")) {
            plan_fs_rmtree_at(dirfd(d), nm);
            continue;
        }
        unsigned n = parse_number(nm, true);
        if (n) {
            char *t = tree_dir(p, n);
            struct stat st;
            if (lstat(t, &st) != 0)
                unlinkat(dirfd(d), nm, 0);
            free(t);
        }
    }
    closedir(d);
}

int plan_profile_open(plan_store *s, const char *name, bool create, plan_profile **out)
{
    if (plan_profile_check_name(name))
        return plan_fail(s->ctx, PLAN_ERR_INVALID,
                         "invalid profile name '%s': use up to 64 letters, digits and '-_.'",
                         name);
    plan_profile *p = plan_xcalloc(1, sizeof(*p));
    p->store = s;
    p->name = plan_xstrdup(name);
    p->dir = plan_xasprintf("%s/profiles/%s", s->root, name);
    p->gen_dir = plan_path_join(p->dir, "generations");
    p->lock_fd = -1;
    struct stat st;
    if (!create && stat(p->dir, &st) != 0) {
        plan_profile_close(p);
        return plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                         "there is no profile '%s' yet: 'plan install NAME' creates it", name);
    }
    int r = plan_fs_mkdirs(p->gen_dir, 0755);
    if (r) {
        int rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, -r, "cannot create '%s'", p->gen_dir);
        plan_profile_close(p);
        return rc;
    }
    char *lock = plan_path_join(p->dir, ".lock");
    p->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = p->lock_fd < 0 ? plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", lock)
                            : 0;
    if (!rc && flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        plan_waiting(s->ctx, "waiting for another plan to finish changing the profile '%s' "
                             "(it holds '%s')", name, lock);
        while (flock(p->lock_fd, LOCK_EX) != 0)
            if (errno != EINTR) {
                rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot lock '%s'", lock);
                break;
            }
    }
    free(lock);
    if (rc) {
        plan_profile_close(p);
        return rc;
    }
    clean_leftovers(p);
    *out = p;
    return 0;
}

void plan_profile_close(plan_profile *p)
{
    if (!p)
        return;
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    free(p->name);
    free(p->dir);
    free(p->gen_dir);
    free(p);
}

unsigned plan_profile_current(plan_profile *p)
{
    char *link = plan_path_join(p->dir, "current");
    char target[512];
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    free(link);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    return parse_number(base ? base + 1 : target, false);
}

/* ---------- the record ---------- */

static json_t *strlist_json(const plan_strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->len; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static char *generation_text(const plan_generation *g)
{
    json_t *req = json_array(), *pkgs = json_array();
    for (size_t i = 0; i < g->req_names.len; i++)
        json_array_append_new(req, json_pack("{s:s, s:s}", "name", g->req_names.items[i],
                                             "range", g->req_ranges.items[i]));
    for (size_t i = 0; i < g->pkg_names.len; i++)
        json_array_append_new(pkgs, json_pack("{s:s, s:s, s:s}", "name", g->pkg_names.items[i],
                                              "version", g->pkg_versions.items[i], "path",
                                              g->pkg_paths.items[i]));
    json_t *j = json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:s, s:o}", "format",
                          GENERATION_FORMAT, "number", (json_int_t)g->number, "created",
                          (json_int_t)g->created, "requests", req, "packages", pkgs, "prefer",
                          strlist_json(&g->prefer), "strategy",
                          g->strategy ? g->strategy : "error", "recipes",
                          strlist_json(&g->recipes));
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(j);
    return text;
}

static void strings_of(json_t *a, plan_strlist *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
        if (json_is_string(v))
            plan_strlist_add(out, json_string_value(v));
}

/* Parse a record; a damaged one is an error naming the file. */
static int generation_read(plan_ctx *ctx, const char *file, plan_generation *g)
{
    json_error_t err;
    json_t *j = json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    const char *fmt = j ? json_string_value(json_object_get(j, "format")) : NULL;
    if (!j || !fmt || strcmp(fmt, GENERATION_FORMAT) != 0) {
        json_decref(j);
        return plan_fail(ctx, PLAN_ERR_CORRUPT,
                         "'%s' is not a generation record (%s): delete that generation with "
                         "'plan generations --delete N', or remove the file and its tree",
                         file, j ? "unknown format" : err.text);
    }
    plan_generation_init(g);
    g->number = (unsigned)json_integer_value(json_object_get(j, "number"));
    g->created = (int64_t)json_integer_value(json_object_get(j, "created"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "requests"), i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        const char *r = json_string_value(json_object_get(v, "range"));
        if (n && r) {
            plan_strlist_add(&g->req_names, n);
            plan_strlist_add(&g->req_ranges, r);
        }
    }
    json_array_foreach(json_object_get(j, "packages"), i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        const char *ver = json_string_value(json_object_get(v, "version"));
        const char *pth = json_string_value(json_object_get(v, "path"));
        if (n && ver && pth) {
            plan_strlist_add(&g->pkg_names, n);
            plan_strlist_add(&g->pkg_versions, ver);
            plan_strlist_add(&g->pkg_paths, pth);
        }
    }
    strings_of(json_object_get(j, "prefer"), &g->prefer);
    strings_of(json_object_get(j, "recipes"), &g->recipes);
    const char *strat = json_string_value(json_object_get(j, "strategy"));
    g->strategy = strat ? plan_xstrdup(strat) : NULL;
    json_decref(j);
    return 0;
}

static int number_cmp(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* Numbers of the complete generations (tree and record), ascending. */
static int generation_numbers(const char *gen_dir, unsigned **out, size_t *n_out)
{
    DIR *d = opendir(gen_dir);
    unsigned *nums = NULL;
    size_t n = 0, cap = 0;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            unsigned num = parse_number(de->d_name, false);
            if (!num)
                continue;
            char rec[32];
            snprintf(rec, sizeof(rec), "%u.json", num);
            struct stat st;
            if (fstatat(dirfd(d), rec, &st, 0) != 0)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                nums = plan_xrealloc(nums, cap * sizeof(*nums));
            }
            nums[n++] = num;
        }
        closedir(d);
    }
    if (n)
        qsort(nums, n, sizeof(*nums), number_cmp);
    *out = nums;
    *n_out = n;
    return 0;
}

int plan_profile_generations(plan_profile *p, plan_generation **out, size_t *n_out)
{
    unsigned *nums;
    size_t n;
    generation_numbers(p->gen_dir, &nums, &n);
    plan_generation *list = plan_xcalloc(n ? n : 1, sizeof(*list));
    unsigned cur = plan_profile_current(p);
    int rc = 0;
    size_t got = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *file = json_file(p, nums[i]);
        rc = generation_read(p->store->ctx, file, &list[got]);
        free(file);
        if (!rc) {
            list[got].number = nums[i];
            list[got].current = nums[i] == cur;
            got++;
        }
    }
    free(nums);
    if (rc) {
        plan_generations_free(list, got);
        return rc;
    }
    *out = list;
    *n_out = got;
    return 0;
}

/* ---------- commit, switch, delete ---------- */

static int switch_to(plan_profile *p, unsigned number)
{
    plan_ctx *ctx = p->store->ctx;
    char *tmp = plan_path_join(p->dir, ".current.tmp");
    char *cur = plan_path_join(p->dir, "current");
    char target[64];
    snprintf(target, sizeof(target), "generations/%u", number);
    unlink(tmp);
    int rc = 0;
    if (symlink(target, tmp) != 0 || rename(tmp, cur) != 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot switch '%s' to generation %u",
                             cur, number);
    else if (store_flushes(p->store))
        plan_fs_fsync_dir(p->dir);
    unlink(tmp);
    free(tmp);
    free(cur);
    return rc;
}

/* The highest number any entry of gen_dir uses ("N", "N.json", ".N.tmp"),
 * complete or not, so a new generation never reuses one. */
static unsigned highest_number(const char *gen_dir)
{
    DIR *d = opendir(gen_dir);
    unsigned top = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name[0] == '.' ? de->d_name + 1 : de->d_name;
        char *end;
        if (*nm < '1' || *nm > '9')
            continue;
        unsigned long v = strtoul(nm, &end, 10);
        if (v <= 1000000000UL && (!*end || *end == '.') && v > top)
            top = (unsigned)v;
    }
    if (d)
        closedir(d);
    return top;
}

static int write_text(plan_store *s, const char *file, const char *text)
{
    plan_ctx *ctx = s->ctx;
    if (!text)
        return plan_fail(ctx, PLAN_ERR_INVALID, "cannot write '%s': the generation record is "
                                                "not valid text (bad UTF-8?)", file);
    int r = plan_fs_write_replace(file, text, strlen(text), 0644, store_flushes(s));
    return r ? plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot write '%s'", file) : 0;
}

int plan_profile_commit(plan_profile *p, const plan_generation *spec,
                        const plan_farm_opts *farm_opts, const char *env_sh,
                        const char *env_fish, plan_farm_stats *stats, unsigned *number)
{
    plan_store *s = p->store;
    plan_ctx *ctx = s->ctx;
    unsigned next = highest_number(p->gen_dir) + 1;
    size_t np = spec->pkg_paths.len;
    if (spec->pkg_names.len != np || spec->pkg_versions.len != np ||
        spec->req_names.len != spec->req_ranges.len)
        return plan_fail(ctx, PLAN_ERR_INVALID, "a generation needs as many names, versions "
                                                "and paths as packages");
    plan_farm_plan *plans = plan_xcalloc(np ? np : 1, sizeof(*plans));
    char **paths = plan_xcalloc(np ? np : 1, sizeof(char *));
    for (size_t i = 0; i < np; i++) {
        paths[i] = store_path_of(s, spec->pkg_paths.items[i]);
        plans[i] = (plan_farm_plan){spec->pkg_names.items[i], spec->pkg_versions.items[i],
                                    paths[i]};
    }
    int rc = plan_store_hold_many(s, (const char *const *)spec->pkg_paths.items, np);
    /* DEFERRED: recorded before the first byte, so that after a power cut
     * the generation is checked before it is used. */
    if (!rc)
        rc = settle_mark_generation(s, p->name, next);
    char *tmp = plan_xasprintf("%s/.%u.tmp", p->gen_dir, next);
    char *final = tree_dir(p, next), *record = json_file(p, next);
    plan_fs_rmtree(tmp);
    /* What this handle just imported is listed from its own record. */
    plan_farm_opts fo = farm_opts ? *farm_opts : (plan_farm_opts){0};
    fo.store = s;
    if (!rc)
        rc = plan_farm_build(ctx, plans, np, tmp, &fo, stats);
    if (!rc && env_sh) {
        char *f = plan_path_join(tmp, ".plan/env.sh");
        rc = write_text(s, f, env_sh);
        free(f);
    }
    if (!rc && env_fish) {
        char *f = plan_path_join(tmp, ".plan/env.fish");
        rc = write_text(s, f, env_fish);
        free(f);
    }
    struct stat rst;
    bool rc_record_existed = lstat(record, &rst) == 0;
    if (!rc && rc_record_existed)
        rc = plan_fail(ctx, PLAN_ERR_FAILED, "'%s' is in the way of the new generation: move it "
                                             "aside", record);
    if (!rc) {
        plan_generation g = *spec;
        g.number = next;
        g.created = spec->created ? spec->created : (int64_t)time(NULL);
        char *text = generation_text(&g);
        rc = write_text(s, record, text);
        free(text);
    }
    /* rename() would replace an empty directory: never let it, and only
     * ever remove a tree this call put in place. */
    bool moved = false;
    struct stat st;
    if (!rc && lstat(final, &st) == 0)
        rc = plan_fail(ctx, PLAN_ERR_FAILED, "'%s' is in the way of the new generation: move it "
                                             "aside", final);
    if (!rc && rename(tmp, final) != 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot move '%s' to '%s'", tmp, final);
    else if (!rc)
        moved = true;
    if (!rc) {
        if (store_flushes(s))
            plan_fs_fsync_dir(p->gen_dir);
        rc = switch_to(p, next);
    }
    if (rc) {
        settle_forget_generation(s, p->name, next);
        plan_fs_rmtree(tmp);
        if (moved)
            plan_fs_rmtree(final);
        if (moved || !rc_record_existed)
            unlink(record);
    } else if (number) {
        *number = next;
    }
    free(tmp);
    free(final);
    free(record);
    for (size_t i = 0; i < np; i++)
        free(paths[i]);
    free(paths);
    free(plans);
    return rc;
}

static bool generation_exists(plan_profile *p, unsigned number)
{
    char *t = tree_dir(p, number), *r = json_file(p, number);
    struct stat st;
    bool ok = lstat(t, &st) == 0 && lstat(r, &st) == 0;
    free(t);
    free(r);
    return ok;
}

int plan_profile_switch(plan_profile *p, unsigned number)
{
    if (!generation_exists(p, number))
        return plan_fail(p->store->ctx, PLAN_ERR_NOT_FOUND,
                         "profile '%s' has no generation %u: see 'plan generations'", p->name,
                         number);
    return switch_to(p, number);
}

int plan_profile_delete_generation(plan_profile *p, unsigned number)
{
    if (number == plan_profile_current(p))
        return plan_fail(p->store->ctx, PLAN_ERR_INVALID,
                         "generation %u is the current one of profile '%s': switch to "
                         "another first ('plan rollback')",
                         number, p->name);
    if (!generation_exists(p, number))
        return plan_fail(p->store->ctx, PLAN_ERR_NOT_FOUND,
                         "profile '%s' has no generation %u", p->name, number);
    char *t = tree_dir(p, number), *r = json_file(p, number);
    /* The tree first: a record without a tree is a leftover the next open
     * removes, while a tree without a record would be an unrooted farm. */
    int e = plan_fs_rmtree(t);
    if (!e && unlink(r) != 0)
        e = -errno;
    if (!e)
        settle_forget_generation(p->store, p->name, number);
    int rc = e ? plan_fail_errno(p->store->ctx, PLAN_ERR_IO, -e, "cannot delete generation %u "
                                                                "of '%s'",
                                 number, p->name)
               : 0;
    free(t);
    free(r);
    return rc;
}

/* ---------- after a power cut (settle.c) ---------- */

/* Every link of a farm reaches what it names, and its files (env.sh,
 * env.fish) are not empty: a link whose write did not reach the disk is
 * missing, a file's bytes may be.  A link is followed to the entry of the
 * plan it names, not beyond: a plan's own symlink may point at nothing,
 * and that is the plan's business, not damage. */
static bool farm_whole(int fd, unsigned depth)
{
    if (depth > 64)
        return false;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool whole = true;
    struct dirent *de;
    while (whole && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            whole = false;
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
            if (n > 0)
                target[n] = '\0';
            /* Resolved from the link's folder, the last step not followed. */
            whole = n > 0 && fstatat(dirfd(d), target, &st, AT_SYMLINK_NOFOLLOW) == 0;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                       O_CLOEXEC);
            whole = sub >= 0 && farm_whole(sub, depth + 1);
        } else {
            whole = S_ISREG(st.st_mode) && st.st_size > 0;
        }
    }
    closedir(d);
    return whole;
}

/* Its record reads, every plan it holds is present, and its farm is
 * whole. */
static bool generation_whole(plan_profile *p, unsigned number)
{
    plan_store *s = p->store;
    char *file = json_file(p, number), *dir = tree_dir(p, number);
    plan_generation g;
    bool whole = generation_read(s->ctx, file, &g) == 0;
    plan_ctx_clear_error(s->ctx);
    if (whole) {
        /* A database error is no proof of damage: such a plan counts. */
        for (size_t i = 0; whole && i < g.pkg_paths.len; i++)
            whole = path_present(s, g.pkg_paths.items[i]) != 0;
        plan_ctx_clear_error(s->ctx);
        plan_generation_release(&g);
    }
    int fd = whole ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    whole = fd >= 0 && farm_whole(fd, 0);
    free(file);
    free(dir);
    return whole;
}

void profile_recover_generation(plan_store *s, const char *name, unsigned number)
{
    plan_profile *p = NULL;
    if (plan_profile_open(s, name, false, &p)) {
        plan_ctx_clear_error(s->ctx); /* the profile is gone: nothing to check */
        return;
    }
    unsigned cur = plan_profile_current(p);
    if ((!generation_exists(p, number) && cur != number) || generation_whole(p, number)) {
        plan_profile_close(p);
        return;
    }
    unsigned back = 0;
    if (cur == number) {
        unsigned *nums = NULL;
        size_t n = 0;
        generation_numbers(p->gen_dir, &nums, &n);
        for (size_t i = n; i-- > 0 && !back;)
            if (nums[i] != number && generation_whole(p, nums[i]))
                back = nums[i];
        free(nums);
        if (back) {
            if (switch_to(p, back))
                plan_ctx_clear_error(s->ctx);
        } else {
            char *link = plan_path_join(p->dir, "current");
            unlink(link);
            free(link);
        }
    }
    char *t = tree_dir(p, number), *r = json_file(p, number);
    plan_fs_rmtree(t);
    unlink(r);
    free(t);
    free(r);
    char *then = cur != number ? plan_xstrdup("")
                 : back ? plan_xasprintf(", and the profile is back at generation %u; run the "
                                         "install again to get it back", back)
                        : plan_xstrdup(", and the profile has no generation left; run the "
                                       "install again");
    plan_warn(s->ctx, "generation %u of profile '%s' did not reach the disk whole before the "
                      "machine stopped: removed%s",
              number, name, then);
    free(then);
    plan_profile_close(p);
}

int plan_profile_names(plan_store *s, plan_strlist *out)
{
    char *dir = plan_path_join(s->root, "profiles");
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && plan_profile_check_name(de->d_name) == 0)
            plan_strlist_add(out, de->d_name);
    closedir(d);
    plan_strlist_sort(out);
    return 0;
}

/* The collector's view: every record of every profile, read without the
 * profile lock (a commit writes the record before its tree appears, and
 * its paths are held by the committing session anyway).  An unreadable
 * record is an error: guessing would delete what it protects. */
int profile_roots(plan_store *s, root_fn fn, void *arg)
{
    plan_strlist names;
    plan_strlist_init(&names);
    plan_profile_names(s, &names);
    int rc = 0;
    for (size_t i = 0; i < names.len && !rc; i++) {
        char *gen_dir = plan_xasprintf("%s/profiles/%s/generations", s->root, names.items[i]);
        DIR *d = opendir(gen_dir);
        struct dirent *de;
        while (d && !rc && (de = readdir(d)) != NULL) {
            unsigned num = parse_number(de->d_name, true);
            if (!num)
                continue;
            char *file = plan_path_join(gen_dir, de->d_name);
            plan_generation g;
            rc = generation_read(s->ctx, file, &g);
            if (!rc) {
                char *src = plan_xasprintf("%s/%u", names.items[i], num);
                for (size_t k = 0; k < g.pkg_paths.len; k++)
                    fn(arg, "profile", src, g.pkg_paths.items[k]);
                free(src);
                plan_generation_release(&g);
            } else {
                rc = plan_fail_wrap(s->ctx, rc, "reading the roots of profile '%s'",
                                    names.items[i]);
            }
            free(file);
        }
        if (d)
            closedir(d);
        free(gen_dir);
    }
    plan_strlist_release(&names);
    return rc;
}
