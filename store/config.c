/* Plans' dynamic configuration: versioned values per plan name in the
 * store database, secret values apart in a database only the owner can
 * read (docs/formats/database.md#configuration-schema-version-2). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A value bigger than this is not configuration; it belongs in a file. */
#define CONFIG_VALUE_MAX (64 * 1024)

/* ---- the secrets database ---- */

static const char secrets_schema[] =
    "CREATE TABLE IF NOT EXISTS secrets ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (name, version, key)"
    ") WITHOUT ROWID;";

/* The folder (0700) and the file (0600) exist with their modes before
 * sqlite writes a byte: the file is created with open(O_EXCL, 0600), never
 * narrowed afterwards, and one found wider is refused.  sqlite gives its
 * journal the database file's mode. */
static int secrets_prepare_file(plan_store *s, const char *dir, const char *file)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dir);
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return plan_fail(s->ctx, PLAN_ERR_HOSTILE,
                         "'%s' is not a folder of this user; remove it so that plan can make "
                         "it again (mode 0700)",
                         dir);
    if ((st.st_mode & 077) && chmod(dir, 0700) != 0)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot restrict '%s' to its owner",
                               dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != EEXIST)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", file);
    if (lstat(file, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
        return plan_fail(s->ctx, PLAN_ERR_HOSTILE,
                         "'%s' is not a file of this user; plan keeps secret values there",
                         file);
    if ((st.st_mode & 077) != 0)
        return plan_fail(s->ctx, PLAN_ERR_HOSTILE,
                         "'%s' is readable by others (mode %04o): its secrets may have leaked; "
                         "change them, then 'chmod 600 %s'",
                         file, (unsigned)(st.st_mode & 07777), file);
    return 0;
}

static int secrets_open(plan_store *s, sqlite3 **out)
{
    char *dir = plan_xasprintf("%s/var/secrets", s->root);
    char *file = plan_xasprintf("%s/config.db", dir);
    int rc = secrets_prepare_file(s, dir, file);
    sqlite3 *db = NULL;
    if (!rc && sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
                   SQLITE_OK) {
        rc = plan_fail(s->ctx, PLAN_ERR_DB, "cannot open the secrets database '%s': %s", file,
                       db ? sqlite3_errmsg(db) : "out of memory");
    }
    if (!rc) {
        sqlite3_busy_timeout(db, 30000);
        char *err = NULL;
        if (sqlite3_exec(db, secrets_schema, NULL, NULL, &err) != SQLITE_OK) {
            rc = plan_fail(s->ctx, PLAN_ERR_DB, "database error in '%s': %s", file,
                           err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
        }
    }
    if (rc) {
        sqlite3_close(db);
        db = NULL;
    }
    free(dir);
    free(file);
    *out = db;
    return rc;
}

static int secret_put(plan_store *s, sqlite3 *db, const char *name, int64_t version,
                      const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO secrets (name, version, key, value)"
                               " VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK)
        return plan_fail(s->ctx, PLAN_ERR_DB, "cannot store a secret: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE
                 ? 0
                 : plan_fail(s->ctx, PLAN_ERR_DB, "cannot store a secret: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

static void secret_drop(sqlite3 *db, const char *name, int64_t version)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM secrets WHERE name = ?1 AND version = ?2", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

/* The secret value key got at version; caller frees. */
static int secret_get(plan_store *s, sqlite3 *db, const char *name, int64_t version,
                      const char *key, char **out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM secrets WHERE name = ?1 AND version = ?2"
                               " AND key = ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return plan_fail(s->ctx, PLAN_ERR_DB, "cannot read a secret: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = plan_xstrdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else {
        rc = plan_fail(s->ctx, PLAN_ERR_CORRUPT,
                       "the secret value of '%s' key '%s' (version %lld) is missing from '%s/var/"
                       "secrets/config.db'; set it again with 'plan config set %s %s VALUE "
                       "--secret'",
                       name, key, (long long)version, s->root, name, key);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- reading ---- */

static int latest_version(plan_store *s, const char *name, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM config_versions"
                                  " WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading configuration versions");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_fail(s, "reading configuration versions");
}

/* Each key's last change at or before `at`, keeping those that leave a
 * value. */
static const char sql_state[] =
    "SELECT c.key, c.new_value, c.new_secret, c.version FROM config_changes c"
    " WHERE c.name = ?1 AND (c.new_value IS NOT NULL OR c.new_secret)"
    "   AND c.version = (SELECT max(d.version) FROM config_changes d"
    "                    WHERE d.name = c.name AND d.key = c.key AND d.version <= ?2)"
    " ORDER BY c.key";

static int read_state(plan_store *s, const char *name, int64_t at, plan_config_state *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql_state, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "reading configuration values");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? 2 * cap : 8;
            out->items = plan_xrealloc(out->items, cap * sizeof(*out->items));
        }
        const char *v = (const char *)sqlite3_column_text(st, 1);
        out->items[out->n++] = (plan_config_value){
            .key = plan_xstrdup((const char *)sqlite3_column_text(st, 0)),
            .value = v ? plan_xstrdup(v) : NULL,
            .secret = sqlite3_column_int(st, 2) != 0,
            .version = sqlite3_column_int64(st, 3),
        };
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "reading configuration values");
}

static int fill_secrets(plan_store *s, const char *name, plan_config_state *state)
{
    sqlite3 *db = NULL;
    int rc = 0;
    for (size_t i = 0; i < state->n && !rc; i++) {
        plan_config_value *v = &state->items[i];
        if (!v->secret)
            continue;
        if (!db && (rc = secrets_open(s, &db)))
            break;
        rc = secret_get(s, db, name, v->version, v->key, &v->value);
    }
    sqlite3_close(db);
    return rc;
}

int plan_store_config_state(plan_store *store, const char *name, int64_t at, bool with_secrets,
                            plan_config_state *out)
{
    memset(out, 0, sizeof(*out));
    /* One read transaction: the version and the values belong together
     * even while another process sets a value. */
    if (sqlite3_exec(store->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(store, "reading configuration values");
    int rc = latest_version(store, name, &out->version);
    if (!rc && at > out->version)
        rc = plan_fail(store->ctx, PLAN_ERR_NOT_FOUND,
                       "the configuration of '%s' has no version %lld (the latest is %lld)", name,
                       (long long)at, (long long)out->version);
    if (!rc)
        rc = read_state(store, name, at > 0 ? at : out->version, out);
    sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL);
    if (!rc && with_secrets)
        rc = fill_secrets(store, name, out);
    if (rc)
        plan_config_state_release(out);
    return rc;
}

void plan_config_state_release(plan_config_state *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].key);
        free(s->items[i].value);
    }
    free(s->items);
    memset(s, 0, sizeof(*s));
}

const plan_config_value *plan_config_state_get(const plan_config_state *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].key, key))
            return &s->items[i];
    return NULL;
}

/* ---- writing ---- */

typedef struct pending_change {
    const char *key;
    const plan_config_value *old;  /* NULL: no value before */
    const char *value;             /* NULL: no value after */
    bool secret;
} pending_change;

static int insert_version(plan_store *s, const char *name, int64_t version, const char *action,
                          int64_t target)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO config_versions (name, version, created, action,"
                                  " target) VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "recording a configuration version");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
    if (target >= 0)
        sqlite3_bind_int64(st, 5, target);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "recording a configuration version");
}

static int insert_change(plan_store *s, const char *name, int64_t version,
                         const pending_change *c)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO config_changes (name, version, key, old_value,"
                                  " new_value, old_secret, new_secret)"
                                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "recording a configuration change");
    bool old_secret = c->old && c->old->secret;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, c->key, -1, SQLITE_STATIC);
    if (c->old && !old_secret)
        sqlite3_bind_text(st, 4, c->old->value, -1, SQLITE_STATIC);
    if (c->value && !c->secret)
        sqlite3_bind_text(st, 5, c->value, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, old_secret);
    sqlite3_bind_int(st, 7, c->value && c->secret);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "recording a configuration change");
}

/* Record a new version with its changes, in one transaction of the main
 * database (begun by the caller).  Secret values are written to the
 * secrets database first; if the version is then not committed, they are
 * dropped again. */
static int record_version(plan_store *s, const char *name, int64_t version, const char *action,
                          int64_t target, const pending_change *changes, size_t n)
{
    sqlite3 *sdb = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!changes[i].value || !changes[i].secret)
            continue;
        if (!sdb && (rc = secrets_open(s, &sdb)))
            break;
        rc = secret_put(s, sdb, name, version, changes[i].key, changes[i].value);
    }
    if (!rc)
        rc = insert_version(s, name, version, action, target);
    for (size_t i = 0; i < n && !rc; i++)
        rc = insert_change(s, name, version, &changes[i]);
    if (!rc)
        rc = db_commit(s);
    if (rc) {
        db_rollback(s);
        if (sdb)
            secret_drop(sdb, name, version);
    }
    sqlite3_close(sdb);
    return rc;
}

static int check_value(plan_store *s, const char *name, const char *key, const char *value)
{
    if (!*name || !*key)
        return plan_fail(s->ctx, PLAN_ERR_INVALID, "a configuration needs a plan name and a key");
    if (value && strlen(value) > CONFIG_VALUE_MAX)
        return plan_fail(s->ctx, PLAN_ERR_INVALID,
                         "the value for '%s' key '%s' is longer than 64 KiB; put it in a file and "
                         "configure the file's path",
                         name, key);
    return 0;
}

/* Begin, read the latest version and the state, for a change. */
static int begin_change(plan_store *s, const char *name, plan_config_state *cur, bool secrets)
{
    int rc = db_begin(s);
    if (rc)
        return rc;
    memset(cur, 0, sizeof(*cur));
    if (!(rc = latest_version(s, name, &cur->version)))
        rc = read_state(s, name, cur->version, cur);
    if (!rc && secrets)
        rc = fill_secrets(s, name, cur);
    if (rc) {
        db_rollback(s);
        plan_config_state_release(cur);
    }
    return rc;
}

int plan_store_config_set(plan_store *store, const char *name, const char *key,
                          const char *value, bool secret, int64_t *version)
{
    int rc = check_value(store, name, key, value);
    plan_config_state cur;
    if (rc || (rc = begin_change(store, name, &cur, false)))
        return rc;
    const plan_config_value *old = plan_config_state_get(&cur, key);
    /* Forgetting --secret on the next set must not put a secret's
     * successor in the clear. */
    pending_change ch = {key, old, value, secret || (old && old->secret)};
    int64_t v = cur.version + 1;
    rc = record_version(store, name, v, "set", -1, &ch, 1);
    plan_config_state_release(&cur);
    if (!rc && version)
        *version = v;
    return rc;
}

int plan_store_config_unset(plan_store *store, const char *name, const char *key,
                            int64_t *version)
{
    int rc = check_value(store, name, key, NULL);
    plan_config_state cur;
    if (rc || (rc = begin_change(store, name, &cur, false)))
        return rc;
    const plan_config_value *old = plan_config_state_get(&cur, key);
    int64_t v = cur.version + 1;
    if (!old) {
        db_rollback(store);
        rc = plan_fail(store->ctx, PLAN_ERR_NOT_FOUND,
                       "'%s' key '%s' has no value to unset ('plan config list %s' shows what is "
                       "set)",
                       name, key, name);
    } else {
        pending_change ch = {key, old, NULL, false};
        rc = record_version(store, name, v, "unset", -1, &ch, 1);
    }
    plan_config_state_release(&cur);
    if (!rc && version)
        *version = v;
    return rc;
}

int plan_store_config_rollback(plan_store *store, const char *name, int64_t to,
                               int64_t *version)
{
    plan_config_state cur, then;
    memset(&then, 0, sizeof(then));
    int rc = begin_change(store, name, &cur, true);
    if (rc)
        return rc;
    if (cur.version == 0)
        rc = plan_fail(store->ctx, PLAN_ERR_NOT_FOUND,
                       "the configuration of '%s' has no versions: nothing was ever set", name);
    else if (to < 0 || to > cur.version)
        rc = plan_fail(store->ctx, PLAN_ERR_NOT_FOUND,
                       "the configuration of '%s' has no version %lld: its versions go from 1 "
                       "to %lld (0 is no values at all); 'plan config history %s' lists them",
                       name, (long long)to, (long long)cur.version, name);
    if (!rc && !(rc = read_state(store, name, to, &then)))
        rc = fill_secrets(store, name, &then);
    if (rc) {
        db_rollback(store);
        plan_config_state_release(&cur);
        plan_config_state_release(&then);
        return rc;
    }
    /* Every key whose value differs between now and then. */
    pending_change *chs = plan_xcalloc(cur.n + then.n + 1, sizeof(*chs));
    size_t n = 0;
    for (size_t i = 0; i < cur.n; i++) {
        const plan_config_value *a = &cur.items[i], *b = plan_config_state_get(&then, a->key);
        if (!b)
            chs[n++] = (pending_change){a->key, a, NULL, false};
        else if (a->secret != b->secret || strcmp(a->value, b->value))
            chs[n++] = (pending_change){a->key, a, b->value, b->secret};
    }
    for (size_t i = 0; i < then.n; i++)
        if (!plan_config_state_get(&cur, then.items[i].key))
            chs[n++] = (pending_change){then.items[i].key, NULL, then.items[i].value,
                                        then.items[i].secret};
    int64_t v = cur.version + 1;
    rc = record_version(store, name, v, "rollback", to, chs, n);
    free(chs);
    plan_config_state_release(&cur);
    plan_config_state_release(&then);
    if (!rc && version)
        *version = v;
    return rc;
}

/* ---- history ---- */

static char *dup_column(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? plan_xstrdup(t) : NULL;
}

int plan_store_config_history(plan_store *store, const char *name, plan_config_history *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT v.version, v.created, v.action, v.target, c.key, c.old_value,"
                           " c.new_value, c.old_secret, c.new_secret"
                           " FROM config_versions v LEFT JOIN config_changes c"
                           "   ON c.name = v.name AND c.version = v.version"
                           " WHERE v.name = ?1 ORDER BY v.version, c.key",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, "reading the configuration history");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t version = sqlite3_column_int64(st, 0);
        if (!out->n || out->items[out->n - 1].version != version) {
            if (out->n == cap) {
                cap = cap ? 2 * cap : 16;
                out->items = plan_xrealloc(out->items, cap * sizeof(*out->items));
            }
            out->items[out->n++] = (plan_config_version){
                .version = version,
                .created = sqlite3_column_int64(st, 1),
                .action = dup_column(st, 2),
                .target = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1
                                                                     : sqlite3_column_int64(st, 3),
            };
        }
        if (sqlite3_column_type(st, 4) == SQLITE_NULL)
            continue; /* a version that changed nothing */
        plan_config_version *v = &out->items[out->n - 1];
        v->changes = plan_xrealloc(v->changes, (v->n + 1) * sizeof(*v->changes));
        v->changes[v->n++] = (plan_config_change){
            .key = dup_column(st, 4),
            .old_value = dup_column(st, 5),
            .new_value = dup_column(st, 6),
            .old_secret = sqlite3_column_int(st, 7) != 0,
            .new_secret = sqlite3_column_int(st, 8) != 0,
        };
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        plan_config_history_release(out);
        return db_fail(store, "reading the configuration history");
    }
    return 0;
}

void plan_config_history_release(plan_config_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        plan_config_version *v = &h->items[i];
        for (size_t k = 0; k < v->n; k++) {
            free(v->changes[k].key);
            free(v->changes[k].old_value);
            free(v->changes[k].new_value);
        }
        free(v->changes);
        free(v->action);
    }
    free(h->items);
    memset(h, 0, sizeof(*h));
}
