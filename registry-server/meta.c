/* The signed read side (docs/formats/registry.md): index files, the
 * snapshot and the timestamp, and the one way they change: inside a
 * database transaction, with every new file written under a temporary name
 * and renamed into place only once the database has committed. */
#include "registry.h"
#include "../resolver/resolver.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int reg_change_begin(reg *r, reg_change *c, int64_t now)
{
    plan_strlist_init(&c->tmp);
    plan_strlist_init(&c->final);
    plan_strlist_init(&c->placed);
    c->now = now;
    return reg_exec(r, "BEGIN IMMEDIATE");
}

static void change_release(reg_change *c)
{
    plan_strlist_release(&c->tmp);
    plan_strlist_release(&c->final);
    plan_strlist_release(&c->placed);
}

void reg_change_abort(reg *r, reg_change *c)
{
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < c->tmp.len; i++)
        unlink(c->tmp.items[i]);
    /* Newest first, so a directory is empty by the time it is removed. */
    for (size_t i = c->placed.len; i-- > 0;)
        if (unlink(c->placed.items[i]) != 0 && (errno == EISDIR || errno == EPERM))
            rmdir(c->placed.items[i]);
    change_release(c);
}

int reg_change_stage(reg *r, reg_change *c, const char *rel, const char *text, size_t len)
{
    char *tmp = plan_xasprintf("%s/meta-XXXXXX", r->tmp_dir);
    int fd = mkstemp(tmp);
    int rc = 0;
    if (fd < 0 || fchmod(fd, 0644) != 0 || write(fd, text, len) != (ssize_t)len ||
        fsync(fd) != 0)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot write '%s' in '%s'", rel,
                             r->tmp_dir);
    if (fd >= 0)
        close(fd);
    if (rc) {
        if (fd >= 0)
            unlink(tmp);
        free(tmp);
        return rc;
    }
    plan_strlist_take(&c->tmp, tmp);
    plan_strlist_take(&c->final, plan_path_join(r->static_dir, rel));
    return 0;
}

/* Create the directory of file (one level below static/ at most deep). */
static int make_parent(reg *r, reg_change *c, const char *file)
{
    char *copy = plan_xstrdup(file);
    const char *dir = dirname(copy);
    int rc = 0;
    if (mkdir(dir, 0755) == 0)
        plan_strlist_add(&c->placed, dir);
    else if (errno != EEXIST)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dir);
    free(copy);
    return rc;
}

int reg_change_place(reg *r, reg_change *c, const char *tmp, const char *rel)
{
    char *final = plan_path_join(r->static_dir, rel);
    int rc = make_parent(r, c, final);
    /* link, not rename: it never replaces a file that is there already. */
    if (!rc && link(tmp, final) == 0)
        plan_strlist_add(&c->placed, final);
    else if (!rc && errno != EEXIST)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot place '%s'", final);
    if (!rc)
        unlink(tmp);
    free(final);
    return rc;
}

int reg_change_commit(reg *r, reg_change *c)
{
    if (reg_exec(r, "COMMIT") != 0) {
        plan_fail_wrap(r->ctx, PLAN_ERR_DB, "nothing was changed");
        reg_change_abort(r, c);
        return PLAN_ERR_DB;
    }
    /* Index files, then the snapshot, then the timestamp: a client that
     * sees the new timestamp finds everything it names. */
    int rc = 0;
    for (size_t i = 0; i < c->tmp.len && !rc; i++)
        if (rename(c->tmp.items[i], c->final.items[i]) != 0)
            rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno,
                                 "the database changed but '%s' could not be replaced: the "
                                 "read side is behind until the next change", c->final.items[i]);
    char *index = plan_path_join(r->static_dir, "index");
    plan_fs_fsync_dir(index);
    plan_fs_fsync_dir(r->static_dir);
    free(index);
    for (size_t i = 0; i < c->tmp.len; i++)
        unlink(c->tmp.items[i]); /* left only if a rename failed */
    change_release(c);
    return rc;
}

/* ---------- the documents ---------- */

typedef struct entry {
    plan_semver v;
    json_t *j;
} entry;

static int entry_cmp(const void *a, const void *b)
{
    return plan_semver_compare_full(&((const entry *)a)->v, &((const entry *)b)->v);
}

static json_t *json_text(const char *text)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *row_entry(sqlite3_stmt *st)
{
#define COL(i) ((const char *)sqlite3_column_text(st, i))
    /* A package published without a recipe has "recipe": null. */
    json_t *recipe = COL(8)[0] ? json_pack("{s:s, s:I}", "hash", COL(8), "size",
                                           (json_int_t)sqlite3_column_int64(st, 9))
                               : json_null();
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:{s:s, s:I}, s:o, s:b, s:I,"
                     " s:{s:s, s:s}}",
                     "version", COL(0), "store_dir", COL(1), "path", COL(2), "references",
                     json_text(COL(3)), "content_hash", COL(4), "dependencies",
                     json_text(COL(5)), "archive", "hash", COL(6), "size",
                     (json_int_t)sqlite3_column_int64(st, 7), "recipe", recipe, "yanked",
                     sqlite3_column_int(st, 10), "published",
                     (json_int_t)sqlite3_column_int64(st, 11), "publisher", "keyid", COL(12),
                     "sig", COL(13));
#undef COL
}

/* Every version of name, in SemVer order. */
static int index_packages(reg *r, const char *name, json_t **out)
{
    sqlite3_stmt *st = reg_prepare(
        r, "SELECT version, store_dir, path, refs, content_hash, dependencies, archive_hash,"
           " archive_size, recipe_hash, recipe_size, yanked, published, publisher_keyid,"
           " publisher_sig FROM versions WHERE name = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    entry *list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap)
            list = plan_xrealloc(list, (cap = cap ? 2 * cap : 8) * sizeof(*list));
        rc = plan_semver_parse(r->ctx, (const char *)sqlite3_column_text(st, 0), &list[n].v);
        if (!rc)
            list[n++].j = row_entry(st);
    }
    if (!rc && s != SQLITE_DONE)
        rc = reg_db_fail(r, "reading versions");
    sqlite3_finalize(st);
    qsort(list, n, sizeof(*list), entry_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, list[i].j);
        plan_semver_release(&list[i].v);
    }
    free(list);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

/* Sign doc, stage it as rel and give its hash and size. */
static int stage_signed(reg *r, reg_change *c, const char *rel, json_t *doc, char *hash,
                        int64_t *size)
{
    char *text = plan_signed_wrap(&r->key, doc);
    if (!text)
        return plan_fail(r->ctx, PLAN_ERR_INVALID, "'%s' cannot be signed (a real number?)",
                         rel);
    size_t len = strlen(text);
    text = plan_xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = 0;
    reg_hash_bytes(text, len, hash);
    *size = (int64_t)len;
    int rc = reg_change_stage(r, c, rel, text, len);
    free(text);
    return rc;
}

static int resign_index(reg *r, reg_change *c, const char *name)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT index_version FROM packages WHERE name = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) + 1 : 1;
    sqlite3_finalize(st);
    json_t *packages = NULL;
    int rc = index_packages(r, name, &packages);
    if (rc)
        return rc;
    int64_t expires = c->now + r->metadata_lifetime, size = 0;
    json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:o}", "type", "index", "name", name,
                            "version", (json_int_t)version, "expires", (json_int_t)expires,
                            "packages", packages);
    char *rel = plan_xasprintf("index/%s.json", name), hash[PLAN_HASH_TEXT_LEN + 1];
    rc = stage_signed(r, c, rel, doc, hash, &size);
    free(rel);
    if (rc)
        return rc;
    st = reg_prepare(r, "UPDATE packages SET index_version = ?, index_hash = ?, index_size = ?,"
                        " index_expires = ? WHERE name = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, size);
    sqlite3_bind_int64(st, 4, expires);
    sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "recording an index");
    sqlite3_finalize(st);
    return rc;
}

static int snapshot_indexes(reg *r, json_t **out)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT name, index_version, index_hash, index_size"
                                      " FROM packages WHERE index_version > 0");
    if (!st)
        return PLAN_ERR_DB;
    json_t *idx = json_object();
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(idx, (const char *)sqlite3_column_text(st, 0),
                            json_pack("{s:I, s:s, s:I}", "version",
                                      (json_int_t)sqlite3_column_int64(st, 1), "hash",
                                      (const char *)sqlite3_column_text(st, 2), "size",
                                      (json_int_t)sqlite3_column_int64(st, 3)));
    sqlite3_finalize(st);
    if (s != SQLITE_DONE) {
        json_decref(idx);
        return reg_db_fail(r, "reading indexes");
    }
    *out = idx;
    return 0;
}

/* Bump the version kept in meta under "<what>_version" and sign doc (which
 * gets version and expires) as <what>.json. */
static int resign_top(reg *r, reg_change *c, const char *what, json_t *doc, int64_t lifetime)
{
    char key[64], rel[64], hash[PLAN_HASH_TEXT_LEN + 1];
    int64_t version = 0, size = 0, expires = c->now + lifetime;
    snprintf(key, sizeof(key), "%s_version", what);
    snprintf(rel, sizeof(rel), "%s.json", what);
    int rc = reg_meta_get_int(r, key, &version);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    version++;
    json_object_set_new(doc, "version", json_integer(version));
    json_object_set_new(doc, "expires", json_integer(expires));
    rc = stage_signed(r, c, rel, doc, hash, &size);
    if (!rc)
        rc = reg_meta_set_int(r, key, version);
    snprintf(key, sizeof(key), "%s_hash", what);
    if (!rc)
        rc = reg_meta_set(r, key, hash);
    snprintf(key, sizeof(key), "%s_size", what);
    if (!rc)
        rc = reg_meta_set_int(r, key, size);
    snprintf(key, sizeof(key), "%s_expires", what);
    if (!rc)
        rc = reg_meta_set_int(r, key, expires);
    return rc;
}

static int resign_snapshot(reg *r, reg_change *c)
{
    json_t *idx = NULL;
    int rc = snapshot_indexes(r, &idx);
    if (rc)
        return rc;
    return resign_top(r, c, "snapshot", json_pack("{s:s, s:o}", "type", "snapshot", "indexes",
                                                  idx), r->metadata_lifetime);
}

static int resign_timestamp(reg *r, reg_change *c)
{
    int64_t version = 0, size = 0;
    char *hash = NULL;
    int rc = reg_meta_get_int(r, "snapshot_version", &version);
    if (!rc)
        rc = reg_meta_get_int(r, "snapshot_size", &size);
    if (!rc)
        rc = reg_meta_get(r, "snapshot_hash", &hash);
    if (!rc)
        rc = resign_top(r, c, "timestamp",
                        json_pack("{s:s, s:{s:I, s:s, s:I}}", "type", "timestamp", "snapshot",
                                  "version", (json_int_t)version, "hash", hash, "size",
                                  (json_int_t)size),
                        r->timestamp_lifetime);
    free(hash);
    return rc;
}

int reg_change_resign(reg *r, reg_change *c, const plan_strlist *names, bool snapshot)
{
    int rc = 0;
    for (size_t i = 0; names && i < names->len && !rc; i++)
        rc = resign_index(r, c, names->items[i]);
    if (!rc && (snapshot || (names && names->len)))
        rc = resign_snapshot(r, c);
    if (!rc)
        rc = resign_timestamp(r, c);
    return rc;
}

int reg_meta_init(reg *r, int64_t now)
{
    reg_change c;
    int rc = reg_change_begin(r, &c, now);
    if (rc)
        return rc;
    rc = reg_meta_set_int(r, "snapshot_version", 0);
    if (!rc)
        rc = reg_meta_set(r, "snapshot_hash", "");
    if (!rc)
        rc = reg_meta_set_int(r, "timestamp_version", 0);
    if (!rc)
        rc = reg_change_resign(r, &c, NULL, true);
    if (rc) {
        reg_change_abort(r, &c);
        return rc;
    }
    return reg_change_commit(r, &c);
}

/* ---------- keeping it fresh ---------- */

/* Index files with less than half of their lifetime left, and the earliest
 * expiry of the rest. */
static int stale_indexes(reg *r, int64_t now, plan_strlist *names, int64_t *earliest)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT name, index_expires FROM packages"
                                      " WHERE index_version > 0");
    if (!st)
        return PLAN_ERR_DB;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t expires = sqlite3_column_int64(st, 1);
        if (expires - now <= r->metadata_lifetime / 2)
            plan_strlist_add(names, (const char *)sqlite3_column_text(st, 0));
        else if (expires < *earliest)
            *earliest = expires;
    }
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : reg_db_fail(r, "reading indexes");
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int reg_refresh(reg *r, int64_t now, bool force, int64_t *next)
{
    reg_change c;
    int rc = reg_change_begin(r, &c, now);
    if (rc)
        return rc;
    plan_strlist names;
    plan_strlist_init(&names);
    int64_t ts = 0, snap = 0, earliest = INT64_MAX;
    rc = reg_meta_get_int(r, "timestamp_expires", &ts);
    if (!rc)
        rc = reg_meta_get_int(r, "snapshot_expires", &snap);
    if (!rc)
        rc = stale_indexes(r, now, &names, &earliest);
    bool snapshot = snap - now <= r->metadata_lifetime / 2;
    bool timestamp = force || ts - now <= r->timestamp_lifetime / 2;
    if (!rc && (names.len || snapshot || timestamp)) {
        rc = reg_change_resign(r, &c, &names, snapshot);
        if (!rc)
            rc = reg_meta_get_int(r, "timestamp_expires", &ts);
        if (!rc)
            rc = reg_meta_get_int(r, "snapshot_expires", &snap);
        if (names.len)
            earliest = min64(earliest, now + r->metadata_lifetime);
        if (rc)
            reg_change_abort(r, &c);
        else
            rc = reg_change_commit(r, &c);
    } else if (!rc) {
        reg_change_abort(r, &c); /* nothing to change */
    } else {
        reg_change_abort(r, &c);
    }
    plan_strlist_release(&names);
    if (!rc && next)
        *next = min64(ts - r->timestamp_lifetime / 2,
                      min64(snap, earliest) - r->metadata_lifetime / 2);
    return rc;
}
