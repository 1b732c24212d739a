/* The registry directory: creating and opening it, its sqlite database and
 * the audit log. */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_FORMAT 1

/* Every index field has its own column, so the database alone can
 * regenerate the read side; refs and dependencies are JSON text. */
static const char SCHEMA[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE packages(name TEXT PRIMARY KEY, created INTEGER NOT NULL,"
    "  index_version INTEGER NOT NULL DEFAULT 0, index_hash TEXT NOT NULL DEFAULT '',"
    "  index_size INTEGER NOT NULL DEFAULT 0, index_expires INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE versions(name TEXT NOT NULL REFERENCES packages(name),"
    "  version TEXT NOT NULL, store_dir TEXT NOT NULL, path TEXT NOT NULL,"
    "  content_hash TEXT NOT NULL, refs TEXT NOT NULL, dependencies TEXT NOT NULL,"
    "  archive_hash TEXT NOT NULL, archive_size INTEGER NOT NULL,"
    "  recipe_hash TEXT NOT NULL, recipe_size INTEGER NOT NULL,"
    "  yanked INTEGER NOT NULL DEFAULT 0, published INTEGER NOT NULL,"
    "  publisher_keyid TEXT NOT NULL, publisher_sig TEXT NOT NULL, token_id INTEGER,"
    "  PRIMARY KEY(name, version));"
    "CREATE INDEX versions_path ON versions(path);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
    "  rate INTEGER NOT NULL, created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE token_scopes(token_id INTEGER NOT NULL REFERENCES tokens(id),"
    "  action TEXT NOT NULL, pattern TEXT NOT NULL);"
    "CREATE TABLE publishers(pattern TEXT NOT NULL, key TEXT NOT NULL, keyid TEXT NOT NULL,"
    "  added INTEGER NOT NULL, PRIMARY KEY(pattern, keyid));"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, action TEXT NOT NULL,"
    "  name TEXT NOT NULL, version TEXT NOT NULL, token_id INTEGER, keyid TEXT);"
    "CREATE INDEX audit_token ON audit(token_id, at);";

void reg_hash_bytes(const void *p, size_t n, char *out)
{
    plan_hash h;
    crypto_generichash(h.bytes, sizeof(h.bytes), p, n, NULL, 0);
    plan_hash_format(&h, out);
}

int reg_db_fail(reg *r, const char *doing)
{
    return plan_fail(r->ctx, PLAN_ERR_DB, "registry database '%s/registry.db': %s: %s", r->dir,
                     doing, sqlite3_errmsg(r->db));
}

int reg_exec(reg *r, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = plan_fail(r->ctx, PLAN_ERR_DB, "registry database '%s/registry.db': %s",
                           r->dir, msg ? msg : sqlite3_errmsg(r->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

sqlite3_stmt *reg_prepare(reg *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
        reg_db_fail(r, "preparing a query");
        return NULL;
    }
    return st;
}

int reg_meta_get(reg *r, const char *key, char **out)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT value FROM meta WHERE key = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = plan_xstrdup((const char *)sqlite3_column_text(st, 0));
    else
        rc = plan_fail(r->ctx, PLAN_ERR_CORRUPT,
                       "registry database '%s/registry.db' lacks '%s': it was not made by "
                       "'plan-registry init'", r->dir, key);
    sqlite3_finalize(st);
    return rc;
}

int reg_meta_set(reg *r, const char *key, const char *v)
{
    sqlite3_stmt *st = reg_prepare(r, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "writing metadata");
    sqlite3_finalize(st);
    return rc;
}

int reg_meta_get_int(reg *r, const char *key, int64_t *out)
{
    char *v = NULL;
    int rc = reg_meta_get(r, key, &v);
    if (!rc)
        *out = strtoll(v, NULL, 10);
    free(v);
    return rc;
}

int reg_meta_set_int(reg *r, const char *key, int64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)v);
    return reg_meta_set(r, key, text);
}

static reg *reg_new(plan_ctx *ctx, const char *dir)
{
    reg *r = plan_xcalloc(1, sizeof(*r));
    r->ctx = ctx;
    r->dir = plan_path_absolute(dir);
    r->static_dir = plan_path_join(r->dir, "static");
    r->tmp_dir = plan_path_join(r->dir, "tmp");
    r->timestamp_lifetime = REG_TIMESTAMP_LIFETIME;
    r->metadata_lifetime = REG_METADATA_LIFETIME;
    return r;
}

void reg_close(reg *r)
{
    if (!r)
        return;
    if (r->db)
        sqlite3_close(r->db);
    if (r->key.name)
        plan_seckey_wipe(&r->key);
    free(r->dir);
    free(r->static_dir);
    free(r->tmp_dir);
    free(r);
}

static int db_open(reg *r, bool create)
{
    char *file = plan_path_join(r->dir, "registry.db");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = 0;
    if (!create && access(file, F_OK) != 0)
        rc = plan_fail(r->ctx, PLAN_ERR_NOT_FOUND,
                       "'%s' is not a registry (no registry.db): 'plan-registry init %s' "
                       "makes one", r->dir, r->dir);
    else if (sqlite3_open_v2(file, &r->db, flags, NULL) != SQLITE_OK)
        rc = reg_db_fail(r, "opening");
    else if (create && chmod(file, 0600) != 0)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot restrict '%s'", file);
    free(file);
    if (rc)
        return rc;
    sqlite3_busy_timeout(r->db, 10000);
    /* FULL: a publish acknowledged to a publisher must survive a power cut. */
    return reg_exec(r, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       "PRAGMA foreign_keys=ON;");
}

static int load_key(reg *r)
{
    char *name = NULL, *dir = plan_path_join(r->dir, "keys");
    int rc = reg_meta_get(r, "key_name", &name);
    if (!rc)
        rc = plan_key_load_secret(r->ctx, dir, name, &r->key);
    free(name);
    free(dir);
    return rc;
}

int reg_open(plan_ctx *ctx, const char *dir, bool with_key, reg **out)
{
    reg *r = reg_new(ctx, dir);
    int64_t format = 0;
    int rc = db_open(r, false);
    if (!rc)
        rc = reg_meta_get_int(r, "format", &format);
    if (!rc && format != DB_FORMAT)
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "registry '%s' has database format %lld; this plan-registry knows "
                       "format %d: use a matching plan-registry", r->dir, (long long)format,
                       DB_FORMAT);
    if (!rc && with_key)
        rc = load_key(r);
    if (rc) {
        reg_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Something under dir that says a registry is there (or was being made). */
static bool holds_registry(const char *dir)
{
    static const char *const marks[] = {"registry.db", "keys", "static"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        char *p = plan_path_join(dir, marks[i]);
        bool there = access(p, F_OK) == 0;
        free(p);
        if (there)
            return true;
    }
    return false;
}

static int make_dirs(reg *r)
{
    static const char *const dirs[] = {"static/index", "static/archives", "static/recipes",
                                       "tmp"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *p = plan_path_join(r->dir, dirs[i]);
        int e = plan_fs_mkdirs(p, 0755);
        int rc = e ? plan_fail_errno(r->ctx, PLAN_ERR_IO, -e, "cannot create '%s'", p) : 0;
        free(p);
        if (rc)
            return rc;
    }
    return 0;
}

static int create_in(reg *r, const char *key_name, int64_t now)
{
    char *keys = plan_path_join(r->dir, "keys");
    plan_pubkey pub;
    int rc = make_dirs(r);
    if (!rc)
        rc = plan_key_generate(r->ctx, keys, key_name, &pub);
    if (!rc)
        plan_pubkey_release(&pub);
    free(keys);
    if (!rc)
        rc = db_open(r, true);
    if (!rc)
        rc = reg_exec(r, SCHEMA);
    char fmt[16];
    snprintf(fmt, sizeof(fmt), "%d", DB_FORMAT);
    if (!rc)
        rc = reg_meta_set(r, "format", fmt);
    if (!rc)
        rc = reg_meta_set(r, "key_name", key_name);
    if (!rc)
        rc = load_key(r);
    if (!rc)
        rc = reg_meta_init(r, now);
    return rc;
}

int reg_create(plan_ctx *ctx, const char *dir, const char *key_name, reg **out)
{
    struct stat st;
    bool existed = stat(dir, &st) == 0;
    if (existed && !S_ISDIR(st.st_mode))
        return plan_fail(ctx, PLAN_ERR_INVALID, "'%s' exists and is not a directory", dir);
    if (existed && holds_registry(dir))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "'%s' holds a registry already: choose another directory, or use "
                         "this one ('plan-registry serve %s')", dir, dir);
    int e = plan_fs_mkdirs(dir, 0755);
    if (e)
        return plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot create '%s'", dir);
    reg *r = reg_new(ctx, dir);
    int rc = create_in(r, key_name, (int64_t)time(NULL));
    if (rc) {
        /* Leave no half-made registry behind, and nothing that was not ours. */
        static const char *const made[] = {"registry.db", "registry.db-wal", "registry.db-shm",
                                           "keys", "static", "tmp"};
        if (r->db) {
            sqlite3_close(r->db);
            r->db = NULL;
        }
        for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
            char *p = plan_path_join(r->dir, made[i]);
            plan_fs_rmtree(p);
            free(p);
        }
        if (!existed)
            rmdir(r->dir);
        reg_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int reg_audit_append(reg *r, json_t *entry)
{
    char *line = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(entry);
    char *file = plan_path_join(r->dir, "audit.log");
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps's NUL becomes the newline: one write, one line */
    int rc = 0;
    if (fd < 0 || write(fd, line, len + 1) != (ssize_t)(len + 1) || fdatasync(fd) != 0)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot append to the audit log '%s'",
                             file);
    if (fd >= 0)
        close(fd);
    free(line);
    free(file);
    return rc;
}
