/* Build outputs: placeholder paths that become store paths, realisations,
 * and scratch directories for build trees. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct plan_output {
    char *name, *version;
    char digest[PLAN_DIGEST_CHARS + 1];
    char *basename;
    char *path;
    char *marker;
    int lock_fd;
};

const char *plan_output_path(const plan_output *o) { return o->path; }
const char *plan_output_digest(const plan_output *o) { return o->digest; }

static void output_free(plan_output *o)
{
    if (!o)
        return;
    if (o->marker)
        unlink(o->marker);
    digest_unlock(o->lock_fd);
    free(o->name);
    free(o->version);
    free(o->basename);
    free(o->path);
    free(o->marker);
    free(o);
}

int plan_store_output_begin(plan_store *s, const char *name, const char *version,
                            plan_output **out)
{
    const char *why;
    if ((why = plan_store_check_name(name)))
        return plan_fail(s->ctx, PLAN_ERR_INVALID, "invalid name '%s': %s", name, why);
    if ((why = plan_store_check_version(version)))
        return plan_fail(s->ctx, PLAN_ERR_INVALID, "invalid version '%s': %s", version, why);
    plan_output *o = plan_xcalloc(1, sizeof(*o));
    o->lock_fd = -1;
    o->name = plan_xstrdup(name);
    o->version = plan_xstrdup(version);
    uint8_t rnd[20];
    randombytes_buf(rnd, sizeof(rnd));
    plan_base32_encode(rnd, sizeof(rnd), o->digest);
    o->basename = make_basename(o->digest, name, version);
    o->path = store_path_of(s, o->basename);
    /* The intent file says "remove me" if this process dies; the lock held
     * on it for the whole build says "alive" to the recovery of others.
     * It is the intent file that is locked, not a digest stripe: a build
     * is long, and holding a stripe would make unrelated adds wait, and
     * two builds waiting for each other's final stripe deadlock. */
    /* It is made under a hidden name and locked before it gets its own:
     * recovery must never find it unlocked while its build is alive (it
     * would remove it, and then the collector the output). */
    int rc = 0;
    o->marker = plan_path_join(s->pending_dir, o->basename);
    char *hidden = plan_xasprintf("%s/.%s", s->pending_dir, o->basename);
    o->lock_fd = open(hidden, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (o->lock_fd < 0 || flock(o->lock_fd, LOCK_EX) != 0 || rename(hidden, o->marker) != 0) {
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", o->marker);
        unlink(hidden);
    }
    free(hidden);
    if (!rc && mkdir(o->path, 0755) != 0)
        rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", o->path);
    if (rc) {
        output_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void plan_store_output_abort(plan_store *s, plan_output *o)
{
    (void)s;
    if (!o)
        return;
    plan_fs_rmtree(o->path);
    output_free(o);
}

int plan_store_output_finish(plan_store *s, plan_output *o, const plan_strlist *refs,
                             const char *realisation, plan_output_result *result)
{
    plan_ctx *ctx = s->ctx;
    memset(result, 0, sizeof(*result));
    struct stat st;
    if (lstat(o->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int rc = plan_fail(ctx, PLAN_ERR_FAILED,
                           "the build did not leave a directory at $out ('%s'): a build must "
                           "create $out and install into it",
                           o->path);
        plan_store_output_abort(s, o);
        return rc;
    }
    tree t = {0};
    plan_hash h;
    char final_digest[PLAN_DIGEST_CHARS + 1], text[PLAN_HASH_TEXT_LEN + 1];
    char *final_base = NULL, *final_path = NULL;
    int lock_fd = -1;
    /* The content hash is taken with the placeholder masked, so it does
     * not depend on the random digest the build happened to get. */
    int rc = tree_walk(ctx, o->path, &t);
    if (!rc)
        rc = tree_hash_files(ctx, o->path, &t, o->digest, s->threads);
    if (rc)
        goto out;
    tree_hash(&t, o->digest, &h);
    plan_hash_format(&h, text);
    plan_store_digest(s->store_dir, o->name, o->version, &h, final_digest);
    final_base = make_basename(final_digest, o->name, o->version);
    final_path = store_path_of(s, final_base);
    if ((rc = digest_lock(s, final_digest, &lock_fd)))
        goto out;
    if (hold_if_present(s, final_base) == 1) {
        /* The same output exists already: keep it, remember the recipe. */
        result->existed = true;
        if (realisation)
            rc = db_set_realisation(s, realisation, final_base);
        goto out;
    }
    uint64_t count = 0;
    if ((rc = plan_store_rewrite_digest(ctx, o->path, o->digest, final_digest, &count)))
        goto out;
    tree_release(&t);
    if ((rc = tree_walk(ctx, o->path, &t)))
        goto out;
    if ((rc = tree_seal(s, o->path, &t, false)))
        goto out;
    plan_strlist own;
    plan_strlist_init(&own);
    for (size_t i = 0; refs && i < refs->len; i++)
        if (strncmp(refs->items[i], final_digest, PLAN_DIGEST_CHARS) != 0 &&
            !plan_strlist_contains(&own, refs->items[i]))
            plan_strlist_add(&own, refs->items[i]);
    plan_tree_stats stats;
    tree_stats(&t, &stats);
    db_path_row row = {.basename = final_base, .digest = final_digest, .name = o->name,
                       .version = o->version, .content_hash = text, .size = stats.bytes,
                       .realisation = realisation};
    rc = register_tree(s, o->path, &row, &own);
    plan_strlist_release(&own);
out:
    digest_unlock(lock_fd);
    tree_release(&t);
    if (!rc) {
        result->path = final_path;
        final_path = NULL;
    }
    free(final_base);
    free(final_path);
    plan_store_output_abort(s, o); /* the placeholder is gone or no longer needed */
    return rc;
}

int plan_store_realisation(plan_store *s, const char *recipe_hash, char **path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT p.basename FROM realisations r JOIN paths p ON p.id = r.path"
                           " WHERE r.recipe_hash = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "looking up a realisation");
    sqlite3_bind_text(st, 1, recipe_hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char *found = NULL;
    if (rc == SQLITE_ROW)
        found = store_path_of(s, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(s, "looking up a realisation");
    /* Held, so that a collector running now cannot take it from the
     * build that is about to use it. */
    int there = found ? hold_if_present(s, strrchr(found, '/') + 1) : 0;
    if (there != 1) {
        free(found);
        return there < 0 ? there : PLAN_ERR_NOT_FOUND;
    }
    *path = found;
    return 0;
}

struct plan_scratch {
    work_dir w;
};

int plan_store_scratch_new(plan_store *s, plan_scratch **out)
{
    plan_scratch *sc = plan_xcalloc(1, sizeof(*sc));
    int rc = work_dir_create(s, &sc->w);
    if (rc) {
        free(sc);
        return rc;
    }
    *out = sc;
    return 0;
}

const char *plan_scratch_path(const plan_scratch *sc) { return sc->w.path; }

void plan_store_scratch_release(plan_scratch *sc)
{
    if (!sc)
        return;
    work_dir_remove(&sc->w);
    free(sc);
}

static int compare_entries_masked(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "path\tdescription" lines of t (masked by mask), sorted. */
static void describe_tree(const tree *t, const char *mask, plan_strlist *out)
{
    for (size_t i = 0; i < t->len; i++) {
        const tree_entry *e = &t->items[i];
        char *path = mask_string(e->path, mask);
        char hex[2 * PLAN_HASH_BYTES + 1];
        if (e->type == TREE_FILE) {
            plan_hex_encode(e->digest.bytes, PLAN_HASH_BYTES, hex);
            plan_strlist_take(out, plan_xasprintf("%s\tfile %s%s %llu bytes", path, hex,
                                                  e->exec ? " executable" : "",
                                                  (unsigned long long)e->size));
        } else if (e->type == TREE_SYMLINK) {
            char *target = mask_string(e->target, mask);
            plan_strlist_take(out, plan_xasprintf("%s\tsymlink to %s", path, target));
            free(target);
        } else {
            plan_strlist_take(out, plan_xasprintf("%s\tdirectory", path));
        }
        free(path);
    }
    qsort(out->items, out->len, sizeof(char *), compare_entries_masked);
}

int plan_store_compare_output(plan_store *s, plan_output *o, const char *registered,
                              plan_strlist *differences)
{
    char *base = NULL;
    int rc = plan_store_resolve(s, registered, &base);
    if (rc)
        return rc;
    char *reg_path = store_path_of(s, base);
    char reg_digest[PLAN_DIGEST_CHARS + 1];
    memcpy(reg_digest, base, PLAN_DIGEST_CHARS);
    reg_digest[PLAN_DIGEST_CHARS] = '\0';
    tree a = {0}, b = {0};
    plan_strlist da, db;
    plan_strlist_init(&da);
    plan_strlist_init(&db);
    if (!(rc = tree_walk(s->ctx, reg_path, &a)) &&
        !(rc = tree_hash_files(s->ctx, reg_path, &a, reg_digest, s->threads)) &&
        !(rc = tree_walk(s->ctx, o->path, &b)) &&
        !(rc = tree_hash_files(s->ctx, o->path, &b, o->digest, s->threads))) {
        describe_tree(&a, reg_digest, &da);
        describe_tree(&b, o->digest, &db);
        /* Merge the two sorted descriptions; report each path once. */
        size_t i = 0, j = 0;
        while (i < da.len || j < db.len) {
            const char *x = i < da.len ? da.items[i] : NULL, *y = j < db.len ? db.items[j] : NULL;
            size_t lx = x ? (size_t)(strchr(x, '\t') - x) : 0, ly = y ? (size_t)(strchr(y, '\t') - y) : 0;
            int c = !x ? 1 : !y ? -1 : strncmp(x, y, lx < ly ? lx + 1 : ly + 1);
            if (c == 0 && lx == ly) {
                if (strcmp(x, y) != 0)
                    plan_strlist_take(differences, plan_xasprintf("%.*s: was %s, now %s", (int)lx,
                                                                  x, x + lx + 1, y + ly + 1));
                i++;
                j++;
            } else if (c < 0) {
                plan_strlist_take(differences, plan_xasprintf("%.*s: only in the registered path",
                                                              (int)lx, x));
                i++;
            } else {
                plan_strlist_take(differences, plan_xasprintf("%.*s: only in the rebuild",
                                                              (int)ly, y));
                j++;
            }
        }
    }
    tree_release(&a);
    tree_release(&b);
    plan_strlist_release(&da);
    plan_strlist_release(&db);
    free(reg_path);
    free(base);
    return rc;
}
