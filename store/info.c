/* Queries: path information, listings and closures. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void plan_path_info_free(plan_path_info *info)
{
    if (!info)
        return;
    free(info->path);
    free(info->basename);
    free(info->digest);
    free(info->name);
    free(info->version);
    plan_strlist_release(&info->references);
    free(info);
}

static int closure_size(plan_store *s, const char *basename, uint64_t *out)
{
    sqlite3_stmt *st;
    /* UNION (not UNION ALL) makes the recursion stop at paths already seen,
     * so reference cycles terminate. */
    static const char sql[] =
        "WITH RECURSIVE closure(id) AS ("
        "  SELECT id FROM paths WHERE basename = ?1"
        "  UNION SELECT r.reference FROM refs r JOIN closure c ON r.referrer = c.id)"
        " SELECT COALESCE(SUM(p.size), 0) FROM paths p JOIN closure c ON p.id = c.id";
    if (!(st = db_prepare(s, sql, "computing a closure")))
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, basename, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    db_release(s, st);
    return rc == SQLITE_ROW ? 0 : db_fail(s, "computing a closure");
}

static int load_references(plan_store *s, const char *basename, plan_strlist *out)
{
    sqlite3_stmt *st;
    static const char sql[] = "SELECT t.basename FROM paths f JOIN refs r ON r.referrer = f.id"
                              " JOIN paths t ON t.id = r.reference WHERE f.basename = ?1"
                              " ORDER BY t.basename";
    if (!(st = db_prepare(s, sql, "reading references")))
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, basename, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        plan_strlist_add(out, (const char *)sqlite3_column_text(st, 0));
    db_release(s, st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "reading references");
}

int plan_store_path_info(plan_store *s, const char *arg, plan_path_info **out)
{
    char *basename = NULL;
    int rc = plan_store_resolve(s, arg, &basename);
    if (rc)
        return rc;
    static const char sql[] = "SELECT digest, name, version, content_hash, size, registered"
                              " FROM paths WHERE basename = ?1";
    sqlite3_stmt *st = db_prepare(s, sql, "reading path information");
    if (!st) {
        free(basename);
        return PLAN_ERR_DB;
    }
    sqlite3_bind_text(st, 1, basename, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_release(s, st);
        free(basename);
        return db_fail(s, "reading path information");
    }
    plan_path_info *info = plan_xcalloc(1, sizeof(*info));
    plan_strlist_init(&info->references);
    info->basename = basename;
    info->path = store_path_of(s, basename);
    info->digest = plan_xstrdup((const char *)sqlite3_column_text(st, 0));
    info->name = plan_xstrdup((const char *)sqlite3_column_text(st, 1));
    info->version = plan_xstrdup((const char *)sqlite3_column_text(st, 2));
    snprintf(info->content_hash, sizeof(info->content_hash), "%s",
             (const char *)sqlite3_column_text(st, 3));
    info->size = (uint64_t)sqlite3_column_int64(st, 4);
    info->registered = sqlite3_column_int64(st, 5);
    db_release(s, st);
    rc = load_references(s, basename, &info->references);
    if (!rc)
        rc = closure_size(s, basename, &info->closure_size);
    if (rc) {
        plan_path_info_free(info);
        return rc;
    }
    *out = info;
    return 0;
}

int plan_store_list(plan_store *s, plan_strlist *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT basename FROM paths ORDER BY basename", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, "listing paths");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        plan_strlist_add(out, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "listing paths");
}

int plan_store_closure(plan_store *s, const plan_strlist *roots, plan_strlist *out)
{
    sqlite3_stmt *st;
    const char *sql =
        "WITH RECURSIVE closure(id) AS ("
        "  SELECT id FROM paths WHERE basename = ?1"
        "  UNION SELECT r.reference FROM refs r JOIN closure c ON r.referrer = c.id)"
        " SELECT p.basename FROM paths p JOIN closure c ON p.id = c.id";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "computing a closure");
    int rc = SQLITE_DONE;
    for (size_t i = 0; i < roots->len; i++) {
        sqlite3_bind_text(st, 1, roots->items[i], -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *b = (const char *)sqlite3_column_text(st, 0);
            if (!plan_strlist_contains(out, b))
                plan_strlist_add(out, b);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            break;
    }
    sqlite3_finalize(st);
    plan_strlist_sort(out);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "computing a closure");
}
