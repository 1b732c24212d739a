/* Verification: does the store directory agree with the database, and do
 * the contents still hash to what was registered? */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *plan_problem_kind_name(plan_problem_kind kind)
{
    switch (kind) {
    case PLAN_PROBLEM_MISSING: return "missing";
    case PLAN_PROBLEM_MODIFIED: return "modified";
    case PLAN_PROBLEM_UNREGISTERED: return "unregistered";
    case PLAN_PROBLEM_WRITABLE: return "writable";
    }
    return "unknown";
}

static void add_problem(plan_verify_report *r, plan_problem_kind kind, const char *basename,
                        char *detail)
{
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->items = plan_xrealloc(r->items, r->cap * sizeof(*r->items));
    }
    r->items[r->len++] = (plan_problem){kind, plan_xstrdup(basename), detail};
}

void plan_verify_report_release(plan_verify_report *r)
{
    for (size_t i = 0; i < r->len; i++) {
        free(r->items[i].basename);
        free(r->items[i].detail);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

static int check_one(plan_store *s, const char *basename, const char *digest,
                     const char *content_hash, bool check_contents, plan_verify_report *r)
{
    char *path = store_path_of(s, basename);
    struct stat st;
    int rc = 0;
    r->checked++;
    int missing = lstat(path, &st) != 0 ? errno : 0;
    if (missing || !S_ISDIR(st.st_mode)) {
        add_problem(r, PLAN_PROBLEM_MISSING, basename,
                    plan_xasprintf("registered, but '%s' %s", path,
                                   missing == ENOENT ? "does not exist"
                                   : missing         ? strerror(missing)
                                                     : "is not a directory"));
        free(path);
        return 0;
    }
    if (st.st_mode & 0222)
        add_problem(r, PLAN_PROBLEM_WRITABLE, basename,
                    plan_xasprintf("'%s' is writable; store paths are read-only", path));
    if (check_contents) {
        plan_hash h;
        char text[PLAN_HASH_TEXT_LEN + 1];
        rc = plan_store_hash_tree(s->ctx, path, digest, s->threads, &h, NULL);
        if (rc == 0) {
            plan_hash_format(&h, text);
            if (strcmp(text, content_hash) != 0)
                add_problem(r, PLAN_PROBLEM_MODIFIED, basename,
                            plan_xasprintf("contents hash to %s, registered %s", text,
                                           content_hash));
        } else if (rc != PLAN_ERR_DB) {
            /* Unreadable or changed into something that is not a tree:
             * that is a finding about the path, not a failure to verify. */
            add_problem(r, PLAN_PROBLEM_MODIFIED, basename,
                        plan_xstrdup(plan_ctx_error(s->ctx)));
            plan_ctx_clear_error(s->ctx);
            rc = 0;
        }
    }
    free(path);
    return rc;
}

static int find_unregistered(plan_store *s, plan_verify_report *r)
{
    DIR *dir = opendir(s->store_dir);
    if (!dir)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot read '%s'", s->store_dir);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(dir)) != NULL && !rc) {
        if (de->d_name[0] == '.')
            continue; /* ".", "..", ".tmp", ".links" */
        int known = db_has_path(s, de->d_name);
        if (known < 0)
            rc = known;
        else if (!known)
            add_problem(r, PLAN_PROBLEM_UNREGISTERED, de->d_name,
                        plan_xasprintf("'%s/%s' is in the store but not in the database",
                                       s->store_dir, de->d_name));
    }
    closedir(dir);
    return rc;
}

int plan_store_verify(plan_store *s, const char *const *paths, size_t n, bool check_contents,
                      plan_verify_report *report)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           n ? "SELECT basename, digest, content_hash FROM paths"
                               " WHERE basename = ?1"
                             : "SELECT basename, digest, content_hash FROM paths"
                               " ORDER BY basename",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "listing paths");
    int rc = 0;
    size_t rounds = n ? n : 1;
    for (size_t i = 0; i < rounds && !rc; i++) {
        char *basename = NULL;
        if (n) {
            if ((rc = plan_store_resolve(s, paths[i], &basename)))
                break;
            sqlite3_bind_text(st, 1, basename, -1, SQLITE_TRANSIENT);
        }
        int step;
        while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
            char *b = plan_xstrdup((const char *)sqlite3_column_text(st, 0));
            char *d = plan_xstrdup((const char *)sqlite3_column_text(st, 1));
            char *h = plan_xstrdup((const char *)sqlite3_column_text(st, 2));
            rc = check_one(s, b, d, h, check_contents, report);
            free(b);
            free(d);
            free(h);
        }
        sqlite3_reset(st);
        free(basename);
    }
    sqlite3_finalize(st);
    if (!rc && n == 0)
        rc = find_unregistered(s, report);
    return rc;
}
