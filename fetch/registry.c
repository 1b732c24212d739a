/* The registry client: configured registries, and the update that brings
 * their signed metadata into a local cache after checking it the TUF way
 * (docs/formats/registry.md#what-a-client-checks-update). */
#include "fetch.h"
#include "../store/store.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTRIES_FORMAT "plan-registries-v1"
#define TIMESTAMP_MAX (64 * 1024)
#define ROTATIONS_MAX (1u << 20)
#define ROTATIONS_STEPS 64
#define SNAPSHOT_MAX (64u << 20)
#define PLAN_HASH_HEX_TEXT (8 + 64 + 1) /* "blake2b:" + hex + NUL */

/* ---------- the configured registries ---------- */

void plan_registries_release(plan_registries *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].name);
        free(r->items[i].url);
        plan_pubkey_release(&r->items[i].key);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

static bool registry_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 64 || name[0] == '-' || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

static bool url_ok(const char *url)
{
    return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8) ||
           !strncmp(url, "file:///", 8);
}

int plan_registries_add(plan_ctx *ctx, plan_registries *r, const char *name, const char *url,
                        const char *key)
{
    if (!registry_name_ok(name))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "invalid registry name '%s': use letters, digits and '-_.'", name);
    if (!url_ok(url))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "'%s' is not a registry URL: use http://, https:// or file:///", url);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->items[i].name, name))
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "a registry named '%s' exists already ('plan registry remove %s' "
                             "first to replace it)", name, name);
    plan_pubkey k;
    int rc = plan_pubkey_parse(ctx, key, &k);
    if (rc)
        return plan_fail_wrap(ctx, rc, "the key of registry '%s'", name);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4;
        r->items = plan_xrealloc(r->items, r->cap * sizeof(*r->items));
    }
    plan_registry *it = &r->items[r->n++];
    it->name = plan_xstrdup(name);
    /* One spelling: no trailing slash, so "<url>/timestamp.json" is right. */
    size_t len = strlen(url);
    while (len > 8 && url[len - 1] == '/')
        len--;
    it->url = plan_xstrndup(url, len);
    it->key = k;
    return 0;
}

int plan_registries_remove(plan_ctx *ctx, plan_registries *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->items[i].name, name) != 0)
            continue;
        free(r->items[i].name);
        free(r->items[i].url);
        plan_pubkey_release(&r->items[i].key);
        memmove(&r->items[i], &r->items[i + 1], (r->n - i - 1) * sizeof(*r->items));
        r->n--;
        return 0;
    }
    return plan_fail(ctx, PLAN_ERR_NOT_FOUND, "there is no registry named '%s' (see 'plan "
                                              "registry list')", name);
}

int plan_registries_load(plan_ctx *ctx, const char *file, plan_registries *out)
{
    memset(out, 0, sizeof(*out));
    json_error_t err;
    json_t *j = json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        FILE *f = fopen(file, "re");
        if (!f)
            return errno == ENOENT ? 0
                                   : plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot read '%s'",
                                                     file);
        fclose(f);
        return plan_fail(ctx, PLAN_ERR_CORRUPT, "'%s' is not JSON (line %d: %s)", file,
                         err.line, err.text);
    }
    const char *fmt = json_string_value(json_object_get(j, "format"));
    int rc = fmt && !strcmp(fmt, REGISTRIES_FORMAT)
                 ? 0
                 : plan_fail(ctx, PLAN_ERR_CORRUPT, "'%s' is not a plan registries file", file);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "registries"), i, v) {
        if (rc)
            break;
        const char *n = json_string_value(json_object_get(v, "name"));
        const char *u = json_string_value(json_object_get(v, "url"));
        const char *k = json_string_value(json_object_get(v, "key"));
        rc = n && u && k ? plan_registries_add(ctx, out, n, u, k)
                         : plan_fail(ctx, PLAN_ERR_CORRUPT, "'%s': a registry needs name, url "
                                                           "and key", file);
    }
    json_decref(j);
    if (rc) {
        plan_fail_wrap(ctx, rc, "reading '%s'", file);
        plan_registries_release(out);
    }
    return rc;
}

int plan_registries_save(plan_ctx *ctx, const plan_registries *r, const char *file)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n; i++) {
        char *k = plan_pubkey_format(&r->items[i].key);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", r->items[i].name, "url",
                                             r->items[i].url, "key", k));
        free(k);
    }
    json_t *j = json_pack("{s:s, s:o}", "format", REGISTRIES_FORMAT, "registries", arr);
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    char *dir = plan_xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int e = slash ? plan_fs_mkdirs(dir, 0755) : 0;
    if (!e)
        e = plan_fs_write_atomic(file, text, strlen(text), 0644);
    free(dir);
    free(text);
    return e ? plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot write '%s'", file) : 0;
}

/* ---------- the client's metadata cache ---------- */

/* A cached snapshot whose signature verified, per registry, kept for the
 * handle's life (or until that registry's next update). */
typedef struct verified_snapshot {
    char *registry;
    json_t *indexes; /* its "indexes": name -> {version, hash, size} */
} verified_snapshot;

struct plan_regdb {
    plan_ctx *ctx;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *index_text; /* SELECT text FROM index_cache ..., prepared once */
    sqlite3_stmt *checks_get; /* SELECT ... FROM publisher_checks ..., prepared once */
    verified_snapshot *snapshots;
    size_t n_snapshots;
    bool reading;             /* inside plan_regdb_read_begin */
};

static const char *const regdb_schema =
    "CREATE TABLE IF NOT EXISTS registry ("
    "  name TEXT PRIMARY KEY,"
    "  keyid TEXT NOT NULL,"
    "  timestamp_version INTEGER NOT NULL,"
    "  snapshot_version INTEGER NOT NULL,"
    "  snapshot TEXT,"
    "  checked INTEGER NOT NULL,"
    "  snapshot_doc BLOB"
    ");"
    "CREATE TABLE IF NOT EXISTS index_cache ("
    "  registry TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  text BLOB NOT NULL,"
    "  PRIMARY KEY (registry, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS publisher_checks ("
    "  registry TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  tag BLOB NOT NULL,"
    "  passed TEXT NOT NULL,"
    "  PRIMARY KEY (registry, name)"
    ") WITHOUT ROWID;";

static int regdb_fail(plan_regdb *d, const char *what)
{
    return plan_fail(d->ctx, PLAN_ERR_DB, "registry cache '%s': %s: %s", d->path, what,
                     sqlite3_errmsg(d->db));
}

/* A cache made before the whole signed snapshot was kept lacks its
 * column: added, empty (filled by the next update that brings a new
 * snapshot; until then indexes are verified one by one). */
static int add_snapshot_doc(plan_regdb *d)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "SELECT 1 FROM pragma_table_info('registry') WHERE name = "
                                  "'snapshot_doc'", -1, &s, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    bool has = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return has ? SQLITE_OK
               : sqlite3_exec(d->db, "ALTER TABLE registry ADD COLUMN snapshot_doc BLOB", NULL,
                              NULL, NULL);
}

/* The cache's layout, as PRAGMA user_version: 1 is regdb_schema with
 * snapshot_doc, 2 adds publisher_checks.  A cache at it needs nothing done
 * at open: parsing the schema's statements there was most of what opening
 * cost. */
#define REGDB_LAYOUT 2

static int regdb_layout(plan_regdb *d)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return -1;
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

/* Make the tables (or bring an older cache's up to date), once. */
static int regdb_prepare_layout(plan_regdb *d)
{
    if (regdb_layout(d) == REGDB_LAYOUT)
        return SQLITE_OK;
    int rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if (regdb_layout(d) != REGDB_LAYOUT) {
        rc = sqlite3_exec(d->db, regdb_schema, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = add_snapshot_doc(d);
        char pragma[48];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", REGDB_LAYOUT);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(d->db, pragma, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        return sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void forget_snapshot(plan_regdb *d, const char *registry)
{
    for (size_t i = 0; i < d->n_snapshots; i++)
        if (!strcmp(d->snapshots[i].registry, registry)) {
            free(d->snapshots[i].registry);
            json_decref(d->snapshots[i].indexes);
            d->snapshots[i] = d->snapshots[--d->n_snapshots];
            return;
        }
}

int plan_regdb_open(plan_ctx *ctx, const char *path, bool flush, plan_regdb **out)
{
    plan_regdb *d = plan_xcalloc(1, sizeof(*d));
    d->ctx = ctx;
    d->path = plan_xstrdup(path);
    char *dir = plan_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (slash)
        plan_fs_mkdirs(dir, 0755);
    free(dir);
    int rc = 0;
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(d->db, 30000) != SQLITE_OK ||
        sqlite3_exec(d->db, flush ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                  : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        /* Without flush, the log stays for the next process: see
         * store/db.c, whose database does the same. */
        (!flush && sqlite3_db_config(d->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) !=
                       SQLITE_OK) ||
        regdb_prepare_layout(d) != SQLITE_OK)
        rc = regdb_fail(d, "cannot open");
    if (rc) {
        plan_regdb_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

void plan_regdb_close(plan_regdb *d)
{
    if (!d)
        return;
    while (d->n_snapshots)
        forget_snapshot(d, d->snapshots[0].registry);
    free(d->snapshots);
    sqlite3_finalize(d->index_text);
    sqlite3_finalize(d->checks_get);
    sqlite3_close(d->db);
    free(d->path);
    free(d);
}

typedef struct reg_state {
    bool known;
    int64_t timestamp_version, snapshot_version;
    char *snapshot; /* the cached signed snapshot's "signed" text */
    bool has_doc;   /* and the whole signed document is kept too */
} reg_state;

static int state_read(plan_regdb *d, const plan_registry *reg, reg_state *st)
{
    memset(st, 0, sizeof(*st));
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "SELECT keyid, timestamp_version, snapshot_version, snapshot, "
                                  "snapshot_doc IS NOT NULL FROM registry WHERE name = ?1",
                           -1, &s, NULL) != SQLITE_OK)
        return regdb_fail(d, "reading the registry state");
    sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        /* A registry re-added with another key starts afresh: the old
         * versions were counted by a different signer. */
        if (!strcmp((const char *)sqlite3_column_text(s, 0), reg->key.id)) {
            st->known = true;
            st->timestamp_version = sqlite3_column_int64(s, 1);
            st->snapshot_version = sqlite3_column_int64(s, 2);
            const unsigned char *t = sqlite3_column_text(s, 3);
            st->snapshot = t ? plan_xstrdup((const char *)t) : NULL;
            st->has_doc = sqlite3_column_int(s, 4) != 0;
        }
    }
    sqlite3_finalize(s);
    return 0;
}

/* ---------- the update ---------- */

static void blake2b_text(const void *data, size_t len, char out[PLAN_HASH_HEX_TEXT])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), data, len, NULL, 0);
    char hex[65];
    plan_hex_encode(h, 32, hex);
    snprintf(out, PLAN_HASH_HEX_TEXT, "blake2b:%s", hex);
}

static int check_expiry(plan_ctx *ctx, json_t *sg, const char *what)
{
    json_t *e = json_object_get(sg, "expires");
    if (!json_is_integer(e))
        return plan_fail(ctx, PLAN_ERR_HOSTILE, "%s has no expiry", what);
    time_t now = time(NULL);
    if ((time_t)json_integer_value(e) <= now) {
        char when[32];
        time_t t = (time_t)json_integer_value(e);
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "%s expired at %s: the registry (or mirror) serves stale metadata; "
                         "refusing it (a mirror must be refreshed from its registry)",
                         what, when);
    }
    return 0;
}

/* Every version of an index appears once: an entry is known by its version
 * (the solver's choice, a verified signature, a remembered check), so a
 * second entry of the same version could ride on the first one's
 * signature. */
static int check_unique_versions(plan_ctx *ctx, json_t *sg, const char *what)
{
    plan_strmap seen;
    plan_strmap_init(&seen);
    size_t i;
    json_t *p;
    int rc = 0;
    json_array_foreach(json_object_get(sg, "packages"), i, p) {
        const char *v = json_string_value(json_object_get(p, "version"));
        if (v && !plan_strmap_put(&seen, v, i)) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                           "%s lists version %s twice: refused (a registry publishes each "
                           "version once)", what, v);
            break;
        }
    }
    plan_strmap_release(&seen);
    return rc;
}

static json_int_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* A fetched file, checked against the size and hash that signed metadata
 * declared for it. */
static int check_declared(plan_ctx *ctx, const plan_http_get *g, json_t *decl, const char *what)
{
    if (g->error)
        return plan_fail(ctx, g->refused ? PLAN_ERR_HOSTILE : PLAN_ERR_FAILED, "%s", g->error);
    if (!g->found)
        return plan_fail(ctx, PLAN_ERR_NOT_FOUND, "%s is missing at '%s'", what, g->url);
    json_int_t size = int_of(decl, "size");
    const char *hash = json_string_value(json_object_get(decl, "hash"));
    char got[PLAN_HASH_HEX_TEXT];
    blake2b_text(g->body.data, g->body.len, got);
    if (size < 0 || (size_t)size != g->body.len || !hash || strcmp(hash, got) != 0)
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "%s does not match what the signed metadata declares for it (size "
                         "%zu, %s): refusing it (a mix of files from two versions of the "
                         "registry, or tampering)",
                         what, g->body.len, got);
    return 0;
}

typedef struct fetched_index {
    char *name;
    json_int_t version;
    char *hash;
    char *text;
} fetched_index;

static int fetch_indexes(plan_ctx *ctx, const plan_registry *reg, json_t *snapshot,
                         plan_regdb *d, fetched_index **out, size_t *n_out)
{
    json_t *indexes = json_object_get(snapshot, "indexes");
    size_t cap = json_object_size(indexes), n = 0;
    fetched_index *list = plan_xcalloc(cap ? cap : 1, sizeof(*list));
    plan_http_get *gets = plan_xcalloc(cap ? cap : 1, sizeof(*gets));
    char **urls = plan_xcalloc(cap ? cap : 1, sizeof(char *));
    json_t **decls = plan_xcalloc(cap ? cap : 1, sizeof(json_t *));
    int rc = 0;
    const char *name;
    json_t *decl;
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(d->db, "SELECT text FROM index_cache WHERE registry = ?1 AND name = ?2",
                       -1, &s, NULL);
    json_object_foreach(indexes, name, decl) {
        if (plan_store_check_name(name) != NULL) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "the snapshot of '%s' names an index '%.80s', "
                                                  "which is not a package name",
                           reg->name, name);
            break;
        }
        const char *hash = json_string_value(json_object_get(decl, "hash"));
        json_int_t size = int_of(decl, "size");
        if (!hash || size < 0 || size > (json_int_t)SNAPSHOT_MAX) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "the snapshot of '%s' declares index '%s' "
                                                  "without a valid hash and size",
                           reg->name, name);
            break;
        }
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
        /* Unchanged only if the cached bytes still hash to what the new
         * snapshot declares: a damaged cache entry is fetched again. */
        bool same = false;
        if (sqlite3_step(s) == SQLITE_ROW) {
            char have[PLAN_HASH_HEX_TEXT];
            blake2b_text(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), have);
            same = !strcmp(have, hash);
        }
        if (same)
            continue; /* unchanged: no transfer */
        urls[n] = plan_xasprintf("%s/index/%s.json", reg->url, name);
        gets[n] = (plan_http_get){.url = urls[n], .max_bytes = (size_t)size};
        decls[n] = decl;
        list[n].name = plan_xstrdup(name);
        list[n].version = int_of(decl, "version");
        list[n].hash = plan_xstrdup(hash);
        n++;
    }
    sqlite3_finalize(s);
    if (!rc && n)
        rc = plan_http_get_many(ctx, gets, n, 8);
    for (size_t i = 0; i < n && !rc; i++) {
        char *what = plan_xasprintf("index '%s' of registry '%s'", list[i].name, reg->name);
        json_t *sg = NULL;
        rc = check_declared(ctx, &gets[i], decls[i], what);
        if (!rc)
            rc = plan_signed_open(ctx, gets[i].body.data, gets[i].body.len, &reg->key, "index",
                                  what, &sg);
        if (!rc && int_of(sg, "version") != list[i].version)
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s has version %lld where the snapshot says "
                                                  "%lld: refusing a mix of two snapshots",
                           what, (long long)int_of(sg, "version"), (long long)list[i].version);
        const char *iname = sg ? json_string_value(json_object_get(sg, "name")) : NULL;
        if (!rc && (!iname || strcmp(iname, list[i].name) != 0))
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s is the index of '%s'", what,
                           iname ? iname : "?");
        if (!rc)
            rc = check_expiry(ctx, sg, what);
        if (!rc)
            rc = check_unique_versions(ctx, sg, what);
        if (!rc)
            list[i].text = plan_xstrndup(gets[i].body.data, gets[i].body.len);
        json_decref(sg);
        free(what);
    }
    for (size_t i = 0; i < n; i++) {
        plan_http_get_release(&gets[i]);
        free(urls[i]);
    }
    free(gets);
    free(urls);
    free(decls);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            free(list[i].name);
            free(list[i].hash);
            free(list[i].text);
        }
        free(list);
        return rc;
    }
    *out = list;
    *n_out = n;
    return 0;
}

static int save_update(plan_regdb *d, const plan_registry *reg, json_int_t ts_version,
                       json_int_t snap_version, const char *snapshot_text,
                       const plan_buf *snapshot_doc, json_t *snapshot, fetched_index *idx,
                       size_t n)
{
    forget_snapshot(d, reg->name);
    int rc = 0;
    if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return regdb_fail(d, "starting a transaction");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(d->db,
                           "INSERT INTO registry (name, keyid, timestamp_version, "
                           "snapshot_version, snapshot, checked, snapshot_doc) VALUES (?1, ?2, "
                           "?3, ?4, ?5, ?6, ?7) "
                           "ON CONFLICT(name) DO UPDATE SET keyid = ?2, timestamp_version = ?3,"
                           " snapshot_version = ?4, snapshot = coalesce(?5, snapshot),"
                           " checked = ?6, snapshot_doc = CASE WHEN ?5 IS NULL THEN "
                           "snapshot_doc ELSE ?7 END",
                           -1, &s, NULL) != SQLITE_OK)
        rc = regdb_fail(d, "saving the registry state");
    if (!rc) {
        sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, reg->key.id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, ts_version);
        sqlite3_bind_int64(s, 4, snap_version);
        if (snapshot_text)
            sqlite3_bind_text(s, 5, snapshot_text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, 5);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)time(NULL));
        if (snapshot_text && snapshot_doc)
            sqlite3_bind_blob(s, 7, snapshot_doc->data, (int)snapshot_doc->len, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, 7);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = regdb_fail(d, "saving the registry state");
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!rc && sqlite3_prepare_v2(d->db,
                                  "INSERT OR REPLACE INTO index_cache (registry, name, version, "
                                  "hash, text) VALUES (?1, ?2, ?3, ?4, ?5)",
                                  -1, &s, NULL) != SQLITE_OK)
        rc = regdb_fail(d, "saving an index");
    for (size_t i = 0; i < n && !rc; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, idx[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, idx[i].version);
        sqlite3_bind_text(s, 4, idx[i].hash, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 5, idx[i].text, (int)strlen(idx[i].text), SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = regdb_fail(d, "saving an index");
    }
    sqlite3_finalize(s);
    s = NULL;
    /* Indexes the snapshot no longer lists are gone from the registry. */
    if (!rc && snapshot) {
        sqlite3_stmt *q = NULL, *del = NULL, *del_checks = NULL;
        sqlite3_prepare_v2(d->db, "SELECT name FROM index_cache WHERE registry = ?1", -1, &q,
                           NULL);
        sqlite3_prepare_v2(d->db, "DELETE FROM index_cache WHERE registry = ?1 AND name = ?2",
                           -1, &del, NULL);
        sqlite3_prepare_v2(d->db,
                           "DELETE FROM publisher_checks WHERE registry = ?1 AND name = ?2", -1,
                           &del_checks, NULL);
        sqlite3_bind_text(q, 1, reg->name, -1, SQLITE_STATIC);
        plan_strlist gone;
        plan_strlist_init(&gone);
        json_t *indexes = json_object_get(snapshot, "indexes");
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *nm = (const char *)sqlite3_column_text(q, 0);
            if (!json_object_get(indexes, nm))
                plan_strlist_add(&gone, nm);
        }
        for (size_t i = 0; i < gone.len; i++) {
            sqlite3_stmt *both[2] = {del, del_checks};
            for (size_t k = 0; k < 2; k++) {
                sqlite3_reset(both[k]);
                sqlite3_bind_text(both[k], 1, reg->name, -1, SQLITE_STATIC);
                sqlite3_bind_text(both[k], 2, gone.items[i], -1, SQLITE_STATIC);
                sqlite3_step(both[k]);
            }
        }
        plan_strlist_release(&gone);
        sqlite3_finalize(q);
        sqlite3_finalize(del);
        sqlite3_finalize(del_checks);
    }
    if (!rc && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = regdb_fail(d, "committing the update");
    if (rc)
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* The signature by key id in a signed document's list, or NULL. */
static const char *signature_by(json_t *doc, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "signatures"), i, s) {
        const char *k = json_string_value(json_object_get(s, "keyid"));
        if (k && !strcmp(k, id))
            return json_string_value(json_object_get(s, "sig"));
    }
    return NULL;
}

/* Is doc (a signed document's text) signed by a key with this id?  Only
 * the list is looked at: the signature itself is checked later. */
static bool names_signer(const char *text, size_t len, const char *id)
{
    json_error_t err;
    json_t *doc = json_loadb(text, len, 0, &err);
    bool yes = signature_by(doc, id) != NULL;
    json_decref(doc);
    return yes;
}

/* One statement: from `cur`, to the key it names, signed by both
 * (docs/formats/registry.md#key-rotation).  0 and *next set, or an error. */
static int rotation_step(plan_ctx *ctx, const plan_registry *reg, json_t *doc,
                         const plan_pubkey *cur, plan_pubkey *next)
{
    json_t *sg = json_object_get(doc, "signed");
    const char *type = json_string_value(json_object_get(sg, "type"));
    const char *key = json_string_value(json_object_get(sg, "key"));
    char *what = plan_xasprintf("a key rotation of registry '%s'", reg->name);
    char *canon = json_is_object(sg) ? plan_canonical_json(sg) : NULL;
    int rc = 0;
    if (!canon || !type || strcmp(type, "rotation") != 0 || !key)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s is malformed: refused", what);
    else if ((rc = plan_pubkey_parse(ctx, key, next)) != 0)
        rc = plan_fail_wrap(ctx, PLAN_ERR_HOSTILE, "%s names a bad key", what);
    /* The pinned (or last followed) key vouches; the new key proves it
     * is held by whoever made the statement. */
    if (!rc)
        rc = plan_verify(ctx, cur, "rotation", canon, strlen(canon),
                         signature_by(doc, cur->id), what);
    if (!rc)
        rc = plan_verify(ctx, next, "rotation", canon, strlen(canon),
                         signature_by(doc, next->id), what);
    if (rc && next->name)
        plan_pubkey_release(next);
    free(canon);
    free(what);
    return rc;
}

/* Follow rotations.json from the pinned key as far as it leads.  1 and
 * *out (release it) when it leads to another key; 0 when no statement
 * starts at the pinned key (or the registry has none); <0 on a statement
 * from a key on the way that does not verify. */
static int follow_rotations(plan_ctx *ctx, const plan_registry *reg, plan_pubkey *out)
{
    char *url = plan_xasprintf("%s/rotations.json", reg->url);
    plan_http_get get = {.url = url, .max_bytes = ROTATIONS_MAX};
    int rc = plan_http_get_many(ctx, &get, 1, 1);
    json_t *doc = NULL;
    if (!rc && get.found && !get.error) {
        json_error_t err;
        doc = json_loadb(get.body.data, get.body.len, JSON_REJECT_DUPLICATES, &err);
    }
    json_t *list = json_object_get(doc, "rotations");
    plan_pubkey cur = {.name = plan_xstrdup(reg->key.name)};
    memcpy(cur.pk, reg->key.pk, sizeof(cur.pk));
    memcpy(cur.id, reg->key.id, sizeof(cur.id));
    int steps = 0;
    bool moved = true;
    /* Statements are in order, but each is found by the key it starts at. */
    while (!rc && moved && steps < ROTATIONS_STEPS) {
        moved = false;
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r) {
            const char *from = json_string_value(json_object_get(json_object_get(r, "signed"),
                                                                 "from"));
            if (!from || strcmp(from, cur.id) != 0)
                continue;
            plan_pubkey next = {0};
            if ((rc = rotation_step(ctx, reg, r, &cur, &next)) != 0)
                break;
            plan_pubkey_release(&cur);
            cur = next;
            steps++;
            moved = true;
            break;
        }
    }
    if (rc == PLAN_ERR_FAILED || rc == PLAN_ERR_NOT_FOUND)
        rc = 0; /* no statements to follow: the caller reports the key mismatch */
    if (!rc && steps) {
        *out = cur;
        rc = 1;
    } else {
        plan_pubkey_release(&cur);
    }
    json_decref(doc);
    plan_http_get_release(&get);
    free(url);
    return rc;
}

void plan_regdb_read_begin(plan_regdb *d)
{
    d->reading = sqlite3_get_autocommit(d->db) &&
                 sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

void plan_regdb_read_end(plan_regdb *d)
{
    if (d->reading)
        sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
    d->reading = false;
}

int plan_regdb_checks_get(plan_regdb *d, const char *registry, const char *name,
                          uint8_t tag[PLAN_CHECKS_TAG_BYTES], plan_buf *passed)
{
    if (!d->checks_get &&
        sqlite3_prepare_v2(d->db, "SELECT tag, passed FROM publisher_checks "
                                  "WHERE registry = ?1 AND name = ?2",
                           -1, &d->checks_get, NULL) != SQLITE_OK)
        return regdb_fail(d, "reading remembered signature checks");
    sqlite3_stmt *s = d->checks_get;
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, registry, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    int rc = PLAN_ERR_NOT_FOUND;
    if (sqlite3_step(s) == SQLITE_ROW &&
        sqlite3_column_bytes(s, 0) == PLAN_CHECKS_TAG_BYTES) {
        memcpy(tag, sqlite3_column_blob(s, 0), PLAN_CHECKS_TAG_BYTES);
        plan_buf_reset(passed);
        plan_buf_add(passed, sqlite3_column_text(s, 1), (size_t)sqlite3_column_bytes(s, 1));
        rc = 0;
    }
    sqlite3_reset(s);
    return rc;
}

int plan_regdb_checks_put(plan_regdb *d, size_t n, const plan_checks_row *rows)
{
    if (!n)
        return 0;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    /* One transaction for the lot; a cache that is busy (another process
     * writing) simply does not learn them this time. */
    if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return regdb_fail(d, "remembering signature checks");
    if (sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO publisher_checks "
                                  "(registry, name, tag, passed) VALUES (?1, ?2, ?3, ?4)",
                           -1, &s, NULL) != SQLITE_OK)
        rc = regdb_fail(d, "remembering signature checks");
    for (size_t i = 0; i < n && !rc; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, rows[i].registry, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, rows[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, rows[i].tag, PLAN_CHECKS_TAG_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, rows[i].passed, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = regdb_fail(d, "remembering signature checks");
    }
    sqlite3_finalize(s);
    if (!rc && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = regdb_fail(d, "remembering signature checks");
    if (rc)
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int64_t plan_registry_checked(plan_regdb *d, const plan_registry *reg)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "SELECT checked FROM registry WHERE name = ?1 AND keyid = ?2",
                           -1, &s, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, reg->key.id, -1, SQLITE_STATIC);
    int64_t when = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return when;
}

int plan_registry_update(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                         plan_update_report *report)
{
    memset(report, 0, sizeof(*report));
    reg_state st;
    int rc = state_read(d, reg, &st);
    if (rc)
        return rc;
    char *url = plan_xasprintf("%s/timestamp.json", reg->url);
    plan_http_get ts = {.url = url, .max_bytes = TIMESTAMP_MAX};
    plan_http_get sn = {0};
    char *sn_url = NULL, *snapshot_text = NULL;
    json_t *ts_signed = NULL, *sn_signed = NULL;
    fetched_index *idx = NULL;
    size_t nidx = 0;
    char *what = plan_xasprintf("timestamp.json of registry '%s'", reg->name);
    rc = plan_http_get_many(ctx, &ts, 1, 1);
    if (!rc && ts.error)
        rc = plan_fail(ctx, ts.refused ? PLAN_ERR_HOSTILE : PLAN_ERR_FAILED, "%s", ts.error);
    else if (!rc && !ts.found)
        rc = plan_fail(ctx, PLAN_ERR_NOT_FOUND, "no timestamp.json at '%s': is it a plan "
                                                "registry?", reg->url);
    /* Signed by another key than the pinned one: the registry may have
     * rotated its key, which counts only if the pinned key vouched for
     * the new one.  The versions seen stay those of this registry. */
    plan_registry rotated;
    if (!rc && !names_signer(ts.body.data, ts.body.len, reg->key.id)) {
        plan_pubkey next;
        int f = follow_rotations(ctx, reg, &next);
        if (f < 0)
            rc = f;
        if (f == 1) {
            rotated = *reg;
            rotated.key = next;
            reg = &rotated;
            report->rotated = true;
        }
    }
    if (!rc)
        rc = plan_signed_open(ctx, ts.body.data, ts.body.len, &reg->key, "timestamp", what,
                              &ts_signed);
    if (!rc)
        rc = check_expiry(ctx, ts_signed, what);
    json_int_t ts_version = rc ? -1 : int_of(ts_signed, "version");
    if (!rc && ts_version < 0)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s has no version", what);
    if (!rc && st.known && ts_version < st.timestamp_version)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                       "%s has version %lld, older than version %lld seen before: refusing a "
                       "rollback (replayed metadata, or a mirror that went back in time)",
                       what, (long long)ts_version, (long long)st.timestamp_version);
    json_t *decl = rc ? NULL : json_object_get(ts_signed, "snapshot");
    json_int_t snap_version = decl ? int_of(decl, "version") : -1;
    if (!rc && snap_version < 0)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s names no snapshot version", what);
    if (!rc && st.known && snap_version < st.snapshot_version)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                       "%s names snapshot version %lld, older than version %lld seen before: "
                       "refusing a rollback",
                       what, (long long)snap_version, (long long)st.snapshot_version);
    report->timestamp_version = ts_version;
    report->snapshot_version = snap_version;
    /* A cache from before the whole snapshot was kept fetches it once. */
    bool same_snapshot = st.known && snap_version == st.snapshot_version && st.snapshot &&
                         st.has_doc;
    if (!rc && !same_snapshot) {
        json_int_t size = int_of(decl, "size");
        if (size < 0 || size > (json_int_t)SNAPSHOT_MAX)
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s declares no valid snapshot size", what);
        sn_url = plan_xasprintf("%s/snapshot.json", reg->url);
        sn = (plan_http_get){.url = sn_url, .max_bytes = rc ? 0 : (size_t)size};
        free(what);
        what = plan_xasprintf("snapshot.json of registry '%s'", reg->name);
        if (!rc)
            rc = plan_http_get_many(ctx, &sn, 1, 1);
        if (!rc)
            rc = check_declared(ctx, &sn, decl, what);
        if (!rc)
            rc = plan_signed_open(ctx, sn.body.data, sn.body.len, &reg->key, "snapshot", what,
                                  &sn_signed);
        if (!rc && int_of(sn_signed, "version") != snap_version)
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s has version %lld where the timestamp "
                                                  "names %lld",
                           what, (long long)int_of(sn_signed, "version"),
                           (long long)snap_version);
        if (!rc)
            rc = check_expiry(ctx, sn_signed, what);
        if (!rc) {
            snapshot_text = plan_canonical_json(sn_signed);
            rc = fetch_indexes(ctx, reg, sn_signed, d, &idx, &nidx);
        }
        report->changed = !st.known || snap_version != st.snapshot_version || !st.snapshot;
    } else if (!rc && st.snapshot) {
        /* The cached snapshot was verified when it arrived; its expiry
         * still counts. */
        json_error_t err;
        sn_signed = json_loads(st.snapshot, 0, &err);
        free(what);
        what = plan_xasprintf("the cached snapshot of registry '%s'", reg->name);
        rc = sn_signed ? check_expiry(ctx, sn_signed, what)
                       : plan_fail(ctx, PLAN_ERR_CORRUPT, "%s is damaged", what);
        /* The same snapshot, but a cached index may no longer be the one it
         * names (damaged, or put back from an older copy): fetched again. */
        if (!rc)
            rc = fetch_indexes(ctx, reg, sn_signed, d, &idx, &nidx);
    }
    report->indexes_fetched = (unsigned)nidx;
    if (!rc)
        rc = save_update(d, reg, ts_version, snap_version, snapshot_text,
                         snapshot_text ? &sn.body : NULL,
                         same_snapshot ? NULL : sn_signed, idx, nidx);
    for (size_t i = 0; i < nidx; i++) {
        free(idx[i].name);
        free(idx[i].hash);
        free(idx[i].text);
    }
    free(idx);
    json_decref(ts_signed);
    json_decref(sn_signed);
    plan_http_get_release(&ts);
    plan_http_get_release(&sn);
    free(snapshot_text);
    free(sn_url);
    free(url);
    free(what);
    free(st.snapshot);
    /* The new key goes to the caller to pin, once everything checked out. */
    if (report->rotated && !rc)
        report->key = rotated.key;
    else if (report->rotated)
        plan_pubkey_release(&rotated.key);
    if (rc)
        report->rotated = false;
    return rc;
}

int plan_registry_index_text(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                             const char *name, plan_buf *text)
{
    (void)ctx;
    if (!d->index_text &&
        sqlite3_prepare_v2(d->db, "SELECT text FROM index_cache WHERE registry = ?1 AND name = ?2",
                           -1, &d->index_text, NULL) != SQLITE_OK)
        return regdb_fail(d, "reading an index");
    sqlite3_stmt *s = d->index_text;
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    int rc = PLAN_ERR_NOT_FOUND;
    if (sqlite3_step(s) == SQLITE_ROW) {
        plan_buf_reset(text);
        plan_buf_add(text, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
        rc = 0;
    }
    sqlite3_reset(s);
    return rc;
}

json_t *plan_registry_snapshot_indexes(plan_regdb *d, const plan_registry *reg)
{
    for (size_t i = 0; i < d->n_snapshots; i++)
        if (!strcmp(d->snapshots[i].registry, reg->name))
            return d->snapshots[i].indexes;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "SELECT snapshot_doc, keyid FROM registry WHERE name = ?1", -1,
                           &s, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
    json_t *sg = NULL;
    /* Only a snapshot that verifies with the pinned key counts; anything
     * else leaves the indexes to be verified one by one. */
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB &&
        !strcmp((const char *)sqlite3_column_text(s, 1), reg->key.id) &&
        plan_signed_open(NULL, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
                         &reg->key, "snapshot", "the cached snapshot", &sg) != 0)
        sg = NULL;
    sqlite3_finalize(s);
    json_t *indexes = json_object_get(sg, "indexes");
    /* Kept either way: a snapshot that does not verify is not tried again
     * for every index (they are then verified one by one). */
    indexes = json_is_object(indexes) ? json_incref(indexes) : NULL;
    json_decref(sg);
    d->snapshots = plan_xrealloc(d->snapshots, (d->n_snapshots + 1) * sizeof(*d->snapshots));
    d->snapshots[d->n_snapshots++] = (verified_snapshot){.registry = plan_xstrdup(reg->name),
                                                         .indexes = indexes};
    return indexes;
}

/* The index text is the very one the verified snapshot declares (by its
 * BLAKE2b-256): its "signed" part, checked as a signature check would
 * have, without the signature check.  NULL when it is not. */
static json_t *chained_index(json_t *snapshot_indexes, const char *name, const char *text,
                             size_t len)
{
    json_t *decl = json_object_get(snapshot_indexes, name);
    const char *want = json_string_value(json_object_get(decl, "hash"));
    char have[PLAN_HASH_HEX_TEXT];
    if (!want)
        return NULL;
    blake2b_text(text, len, have);
    if (strcmp(have, want) != 0)
        return NULL;
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    json_t *sg = json_object_get(doc, "signed");
    const char *type = json_string_value(json_object_get(sg, "type"));
    const char *iname = json_string_value(json_object_get(sg, "name"));
    json_t *out = NULL;
    if (json_is_object(sg) && type && !strcmp(type, "index") && iname && !strcmp(iname, name) &&
        int_of(sg, "version") == int_of(decl, "version"))
        out = json_incref(sg);
    json_decref(doc);
    return out;
}

int plan_registry_index_open(plan_ctx *ctx, const plan_registry *reg, const char *name,
                             const char *text, size_t len, json_t *snapshot_indexes,
                             json_t **out)
{
    char *what = plan_xasprintf("the cached index '%s' of registry '%s'", name, reg->name);
    /* Verified again on every read, since the cache is a file others
     * could write to: as the index the verified snapshot names (one
     * signature for all of them).  Only a cache without a verified
     * snapshot verifies an index by its own signature: with one, an index
     * it does not name is an older copy (a yank undone, a fix taken back)
     * however validly it was signed once. */
    int rc = 0;
    *out = snapshot_indexes ? chained_index(snapshot_indexes, name, text, len) : NULL;
    if (!*out && snapshot_indexes)
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                       "%s is not the one the registry's snapshot names (an older or edited "
                       "copy): refused; 'plan registry update' fetches it again", what);
    else if (!*out)
        rc = plan_signed_open(ctx, text, len, &reg->key, "index", what, out);
    /* Offline, a cache is used only until its metadata expires. */
    if (!rc && ((rc = check_expiry(ctx, *out, what)) != 0 ||
                (rc = check_unique_versions(ctx, *out, what)) != 0)) {
        json_decref(*out);
        *out = NULL;
    }
    free(what);
    return rc;
}

int plan_registry_index(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                        const char *name, json_t **out)
{
    plan_buf text;
    plan_buf_init(&text);
    int rc = plan_registry_index_text(ctx, d, reg, name, &text);
    if (!rc)
        rc = plan_registry_index_open(ctx, reg, name, text.data, text.len,
                                      plan_registry_snapshot_indexes(d, reg), out);
    plan_buf_release(&text);
    return rc;
}

int plan_registry_names(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                        plan_strlist *out)
{
    (void)ctx;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(d->db, "SELECT name FROM index_cache WHERE registry = ?1 ORDER BY name",
                           -1, &s, NULL) != SQLITE_OK)
        return regdb_fail(d, "listing indexes");
    sqlite3_bind_text(s, 1, reg->name, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW)
        plan_strlist_add(out, (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return 0;
}
