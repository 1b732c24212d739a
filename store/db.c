/* The store database: schema, migrations and the few statements the store
 * needs.  Schema documented in docs/formats/database.md. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each entry migrates from version i to i + 1.  Never edit a released entry:
 * append a new one. */
static const char *const migrations[] = {
    /* 0 -> 1: paths, references, realisations, the hash cache */
    "CREATE TABLE paths ("
    "  id INTEGER PRIMARY KEY,"
    "  basename TEXT NOT NULL UNIQUE,"
    "  digest TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  content_hash TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  registered INTEGER NOT NULL"
    ");"
    "CREATE TABLE refs ("
    "  referrer INTEGER NOT NULL REFERENCES paths(id) ON DELETE CASCADE,"
    "  reference INTEGER NOT NULL REFERENCES paths(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (referrer, reference)"
    ") WITHOUT ROWID;"
    "CREATE INDEX refs_by_reference ON refs(reference);"
    "CREATE TABLE realisations ("
    "  recipe_hash TEXT PRIMARY KEY,"
    "  path INTEGER NOT NULL REFERENCES paths(id) ON DELETE CASCADE,"
    "  created INTEGER NOT NULL"
    ");"
    "CREATE TABLE hash_cache ("
    "  source TEXT PRIMARY KEY,"
    "  entries BLOB NOT NULL,"
    "  updated INTEGER NOT NULL"
    ");",
    /* 1 -> 2: plans' configuration, versioned per plan name */
    "CREATE TABLE config_versions ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target INTEGER,"
    "  PRIMARY KEY (name, version)"
    ") WITHOUT ROWID;"
    "CREATE TABLE config_changes ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  old_value TEXT,"
    "  new_value TEXT,"
    "  old_secret INTEGER NOT NULL,"
    "  new_secret INTEGER NOT NULL,"
    "  PRIMARY KEY (name, key, version),"
    "  FOREIGN KEY (name, version) REFERENCES config_versions(name, version)"
    ") WITHOUT ROWID;",
    /* 2 -> 3: paths registered without waiting for the disk (settle.c) */
    "CREATE TABLE unsettled_paths ("
    "  basename TEXT PRIMARY KEY,"
    "  boot TEXT NOT NULL,"
    "  registered INTEGER NOT NULL"
    ") WITHOUT ROWID;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int db_fail(plan_store *s, const char *what)
{
    return plan_fail(s->ctx, PLAN_ERR_DB, "database error while %s: %s (database '%s/var/db/plan.db')",
                     what, sqlite3_errmsg(s->db), s->root);
}

static int exec_sql(plan_store *s, const char *sql, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        plan_fail(s->ctx, PLAN_ERR_DB, "database error while %s: %s", what,
                  err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        return PLAN_ERR_DB;
    }
    return 0;
}

static int user_version(plan_store *s, int *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading the schema version");
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_fail(s, "reading the schema version");
}

static int migrate(plan_store *s)
{
    int v;
    int rc = user_version(s, &v);
    if (rc)
        return rc;
    if (v == SCHEMA_VERSION)
        return 0;
    if (v > SCHEMA_VERSION)
        return plan_fail(s->ctx, PLAN_ERR_FAILED,
                         "the database in '%s' has schema version %d, newer than this plan "
                         "understands (%d): use a newer plan",
                         s->root, v, SCHEMA_VERSION);
    /* IMMEDIATE takes the write lock first, so two processes opening a new
     * store at once do not both run the migration. */
    if ((rc = exec_sql(s, "BEGIN IMMEDIATE", "starting the schema migration")))
        return rc;
    if ((rc = user_version(s, &v))) {
        db_rollback(s);
        return rc;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if ((rc = exec_sql(s, migrations[v], "migrating the schema"))) {
            db_rollback(s);
            return rc;
        }
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        if ((rc = exec_sql(s, pragma, "migrating the schema"))) {
            db_rollback(s);
            return rc;
        }
    }
    return exec_sql(s, "COMMIT", "committing the schema migration");
}

int db_open(plan_store *s, const char *path)
{
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        int rc = plan_fail(s->ctx, PLAN_ERR_DB, "cannot open the database '%s': %s", path,
                           s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        s->db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(s->db, 30000);
    /* Switching a new database to WAL needs an exclusive lock, and sqlite
     * does not run the busy handler for it: when two processes open a new
     * store at once, one gets SQLITE_BUSY at once.  Retry for a while. */
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        int r = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (r == SQLITE_OK)
            break;
        if ((r != SQLITE_BUSY && r != SQLITE_LOCKED) || attempt == 3000) {
            rc = db_fail(s, "switching the database to WAL mode");
            break;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (!rc)
        /* NORMAL: a commit is atomic but reaches the disk with the next
         * checkpoint; what it registered is recorded as unsettled. */
        rc = exec_sql(s, store_flushes(s) ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                          : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                      "configuring the database");
    /* Deferred: the log outlives the process instead of being checkpointed
     * into the database at every close.  Each command would otherwise
     * start a fresh log, whose header sqlite flushes at the first commit,
     * and flush twice more when it closes: three waits for the disk that
     * NORMAL is meant to leave to the periodic checkpoints. */
    if (!rc && !store_flushes(s) &&
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK)
        rc = db_fail(s, "configuring the database");
    if (!rc)
        rc = migrate(s);
    if (rc) {
        sqlite3_close(s->db);
        s->db = NULL;
    }
    return rc;
}

void db_close(plan_store *s)
{
    for (size_t i = 0; i < s->n_stmts; i++)
        sqlite3_finalize(s->stmts[i].st);
    s->n_stmts = 0;
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

int db_begin(plan_store *s)
{
    return exec_sql(s, "BEGIN IMMEDIATE", "starting a transaction");
}

int db_commit(plan_store *s)
{
    return exec_sql(s, "COMMIT", "committing a transaction");
}

void db_rollback(plan_store *s)
{
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

bool db_read_begin(plan_store *s)
{
    return sqlite3_get_autocommit(s->db) &&
           sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

void db_read_end(plan_store *s, bool begun)
{
    /* A read transaction has nothing to lose: COMMIT only ends it. */
    if (begun)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

sqlite3_stmt *db_prepare(plan_store *s, const char *sql, const char *what)
{
    for (size_t i = 0; i < s->n_stmts; i++)
        if (s->stmts[i].sql == sql && !sqlite3_stmt_busy(s->stmts[i].st))
            return s->stmts[i].st;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        db_fail(s, what);
        return NULL;
    }
    if (s->n_stmts < sizeof(s->stmts) / sizeof(s->stmts[0])) {
        s->stmts[s->n_stmts].sql = sql;
        s->stmts[s->n_stmts++].st = st;
    }
    return st;
}

void db_release(plan_store *s, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < s->n_stmts; i++)
        if (s->stmts[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    sqlite3_finalize(st); /* one made while the cached one was busy */
}

static const char sql_has_path[] = "SELECT 1 FROM paths WHERE basename = ?1";

int db_has_path(plan_store *s, const char *basename)
{
    sqlite3_stmt *st = db_prepare(s, sql_has_path, "looking up a path");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, basename, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    db_release(s, st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_fail(s, "looking up a path");
}

static const char sql_insert_path[] =
    "INSERT INTO paths (basename, digest, name, version, content_hash, size, registered)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_insert_ref[] =
    "INSERT OR IGNORE INTO refs (referrer, reference) SELECT f.id, t.id FROM paths f, paths t"
    " WHERE f.basename = ?1 AND t.basename = ?2";

int db_insert_path(plan_store *s, const db_path_row *row, const plan_strlist *refs)
{
    sqlite3_stmt *st = db_prepare(s, sql_insert_path, "registering a path");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, row->basename, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, row->content_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)row->size);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
    int rc = sqlite3_step(st);
    db_release(s, st);
    if (rc != SQLITE_DONE)
        return db_fail(s, "registering a path");
    return refs ? db_insert_refs(s, row->basename, refs) : 0;
}

int db_insert_refs(plan_store *s, const char *basename, const plan_strlist *refs)
{
    if (!refs || !refs->len)
        return 0;
    sqlite3_stmt *st = db_prepare(s, sql_insert_ref, "recording references");
    if (!st)
        return PLAN_ERR_DB;
    int rc = 0;
    for (size_t i = 0; i < refs->len && !rc; i++) {
        sqlite3_bind_text(st, 1, basename, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, refs->items[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(s, "recording references");
        else if (sqlite3_changes(s->db) == 0) /* a duplicate, or an unknown path */
            rc = db_has_path(s, refs->items[i]) == 1
                     ? 0
                     : plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                                 "reference '%s' of '%s' is not registered in the store",
                                 refs->items[i], basename);
        sqlite3_reset(st);
    }
    db_release(s, st);
    return rc;
}

int db_set_realisation(plan_store *s, const char *recipe_hash, const char *basename)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO realisations (recipe_hash, path, created)"
                           " SELECT ?1, id, ?3 FROM paths WHERE basename = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "recording a realisation");
    sqlite3_bind_text(st, 1, recipe_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, basename, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, "recording a realisation");
    return sqlite3_changes(s->db) == 1 ? 0
                                       : plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                                                   "cannot record a realisation for '%s': it "
                                                   "is not registered",
                                                   basename);
}
