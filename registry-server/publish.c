/* The write API (docs/formats/registry.md#write-side), apart from HTTP:
 * every check of a publish in the documented order, each with its status,
 * then one change that lands entirely or not at all. */
#include "registry.h"
#include "../resolver/resolver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The members of the package object, which the publisher signs whole. */
static const char *const PKG_FIELDS[] = {"name",         "version",    "store_dir",
                                         "path",         "content_hash", "references",
                                         "dependencies", "archive",    "recipe"};
#define N_PKG_FIELDS (sizeof(PKG_FIELDS) / sizeof(PKG_FIELDS[0]))

void reg_upload_init(reg_upload *u)
{
    memset(u, 0, sizeof(*u));
    plan_buf_init(&u->package);
    plan_buf_init(&u->signature);
    plan_buf_init(&u->recipe);
}

void reg_upload_release(reg_upload *u)
{
    plan_buf_release(&u->package);
    plan_buf_release(&u->signature);
    plan_buf_release(&u->recipe);
    if (u->archive_tmp)
        unlink(u->archive_tmp);
    free(u->archive_tmp);
    memset(u, 0, sizeof(*u));
}

/* A publish being checked: what the checks found, for the next ones. */
typedef struct pub {
    reg *r;
    json_t *pkg;
    const char *name, *version;
    const char *keyid;
    const char *sig;
    json_t *sigdoc; /* owns keyid and sig */
    bool exists; /* the name has versions already */
} pub;

/* Refuse the request as malformed: 400 with the message on ctx. */
static int bad(pub *p, const char *fmt, ...) PLAN_PRINTF(2, 3);
static int bad(pub *p, const char *fmt, ...)
{
    plan_buf b;
    plan_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    plan_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    plan_fail(p->r->ctx, PLAN_ERR_INVALID, "%s", b.data);
    plan_buf_release(&b);
    return 400;
}

/* ---------- the shape of the package object ---------- */

static int check_blob_ref(pub *p, const char *field)
{
    json_t *o = json_object_get(p->pkg, field);
    plan_hash h;
    const char *hash = json_string_value(json_object_get(o, "hash"));
    json_t *size = json_object_get(o, "size");
    if (!json_is_object(o) || json_object_size(o) != 2 || !hash || plan_hash_parse(hash, &h) ||
        !json_is_integer(size) || json_integer_value(size) < 0)
        return bad(p, "the package's '%s' must be {\"hash\": \"blake2b:<64 hex>\", \"size\": "
                      "BYTES}", field);
    return 0;
}

static int check_fields(pub *p)
{
    const char *key;
    json_t *v;
    json_object_foreach(p->pkg, key, v) {
        bool known = false;
        for (size_t i = 0; i < N_PKG_FIELDS; i++)
            known = known || !strcmp(key, PKG_FIELDS[i]);
        if (!known)
            return bad(p, "the package holds '%s', which is not a member of the signed package "
                          "object: send exactly the members docs/formats/registry.md lists",
                       key);
    }
    for (size_t i = 0; i < N_PKG_FIELDS; i++)
        if (!json_object_get(p->pkg, PKG_FIELDS[i]))
            return bad(p, "the package lacks '%s': send every member of the signed package "
                          "object", PKG_FIELDS[i]);
    static const char *const strings[] = {"version", "store_dir", "path", "content_hash"};
    for (size_t i = 0; i < 4; i++)
        if (!json_is_string(json_object_get(p->pkg, strings[i])))
            return bad(p, "the package's '%s' must be a string", strings[i]);
    p->version = json_string_value(json_object_get(p->pkg, "version"));
    if (!json_is_array(json_object_get(p->pkg, "references")))
        return bad(p, "the package's 'references' must be a list of store path basenames");
    if (!json_is_object(json_object_get(p->pkg, "dependencies")))
        return bad(p, "the package's 'dependencies' must be an object of name: range");
    int st = check_blob_ref(p, "archive");
    if (!st && !json_is_null(json_object_get(p->pkg, "recipe")))
        st = check_blob_ref(p, "recipe");
    return st;
}

/* ---------- what the fields say ---------- */

static int check_version(pub *p)
{
    plan_semver v;
    if (plan_semver_parse(p->r->ctx, p->version, &v))
        return bad(p, "the version '%s' is not SemVer (%s)", p->version,
                   plan_ctx_error(p->r->ctx));
    char *canon = plan_semver_format(&v);
    bool same = !strcmp(canon, p->version);
    free(canon);
    plan_semver_release(&v);
    const char *why = plan_store_check_version(p->version);
    if (!same || why)
        return bad(p, "the version '%s' is not in its plain form (%s): publish it as "
                      "MAJOR.MINOR.PATCH[-PRE][+BUILD]", p->version, why ? why : "a leading 'v'");
    return 0;
}

/* A store path basename "<digest>-<name>-<version>"; the digest in out. */
static bool basename_ok(const char *b, char *digest)
{
    size_t n = strlen(b);
    if (n < PLAN_DIGEST_CHARS + 4 || b[PLAN_DIGEST_CHARS] != '-' || strchr(b, '/'))
        return false;
    for (size_t i = 0; i < PLAN_DIGEST_CHARS; i++)
        if (!plan_base32_valid_char(b[i]))
            return false;
    memcpy(digest, b, PLAN_DIGEST_CHARS);
    digest[PLAN_DIGEST_CHARS] = 0;
    return true;
}

/* The path must be the one the store would give this name, version,
 * content and store directory: the digest is computed from them. */
static int check_path(pub *p)
{
    const char *store_dir = json_string_value(json_object_get(p->pkg, "store_dir"));
    const char *path = json_string_value(json_object_get(p->pkg, "path"));
    const char *content = json_string_value(json_object_get(p->pkg, "content_hash"));
    char *norm = plan_path_absolute(store_dir);
    bool dir_ok = store_dir[0] == '/' && !strcmp(norm, store_dir);
    free(norm);
    if (!dir_ok)
        return bad(p, "the store_dir '%s' is not an absolute, normalised directory", store_dir);
    plan_hash h;
    if (plan_hash_parse(content, &h))
        return bad(p, "the content_hash '%s' is not blake2b:<64 hex>", content);
    char digest[PLAN_DIGEST_CHARS + 1], want[PLAN_DIGEST_CHARS + 1];
    char *tail = plan_xasprintf("-%s-%s", p->name, p->version);
    bool shape = basename_ok(path, digest) && !strcmp(path + PLAN_DIGEST_CHARS, tail);
    free(tail);
    if (!shape)
        return bad(p, "the path '%s' is not '<digest>-%s-<version>'", path, p->name);
    plan_store_digest(store_dir, p->name, p->version, &h, want);
    if (strcmp(digest, want) != 0)
        return bad(p, "the path '%s' does not match its store_dir, name, version and "
                      "content_hash (the digest would be %s): export the path from the store "
                      "that built it", path, want);
    return 0;
}

static int check_references(pub *p)
{
    const char *self = json_string_value(json_object_get(p->pkg, "path"));
    sqlite3_stmt *st = reg_prepare(p->r, "SELECT 1 FROM versions WHERE path = ?");
    if (!st)
        return 500;
    size_t i;
    json_t *v;
    int status = 0;
    char digest[PLAN_DIGEST_CHARS + 1];
    json_array_foreach(json_object_get(p->pkg, "references"), i, v) {
        const char *ref = json_string_value(v);
        if (!ref || !basename_ok(ref, digest)) {
            status = bad(p, "the reference '%s' is not a store path basename",
                         ref ? ref : "(not a string)");
            break;
        }
        if (!strcmp(ref, self))
            continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            status = bad(p, "the package refers to '%s', which is not published here: publish "
                            "%s first (its archive would be incomplete without it)", ref, ref);
            break;
        }
    }
    sqlite3_finalize(st);
    return status;
}

static int check_dependencies(pub *p)
{
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(p->pkg, "dependencies"), key, v) {
        const char *why = plan_store_check_name(key);
        if (why)
            return bad(p, "the dependency name '%s' is invalid: %s", key, why);
        plan_semver_range *range = NULL;
        if (!json_is_string(v))
            return bad(p, "the dependency '%s' must be a range string", key);
        if (plan_semver_range_parse(p->r->ctx, json_string_value(v), &range))
            return bad(p, "the dependency '%s' has an invalid range (%s)", key,
                       plan_ctx_error(p->r->ctx));
        plan_semver_range_free(range);
    }
    return 0;
}

static int check_content(pub *p)
{
    int st = check_version(p);
    if (!st)
        st = check_path(p);
    if (!st)
        st = check_dependencies(p);
    if (!st)
        st = check_references(p);
    return st;
}

/* ---------- the checks in order ---------- */

static int check_scope(pub *p, const reg_token *t)
{
    sqlite3_stmt *st = reg_prepare(p->r, "SELECT 1 FROM packages WHERE name = ?");
    if (!st)
        return 500;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    p->exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    const char *action = p->exists ? "publish-update" : "publish-new";
    if (reg_token_allows(t, action, p->name))
        return 0;
    char *scopes = reg_token_describe(t);
    plan_fail(p->r->ctx, PLAN_ERR_INVALID,
              "token %lld may not %s '%s' (%s): its scopes are %s; ask the registry's operator "
              "for a token with the scope '%s:%s'",
              (long long)t->id, action, p->name,
              p->exists ? "a new version of a published name" : "a name not published yet",
              *scopes ? scopes : "none", action, p->name);
    free(scopes);
    return 403;
}

static int check_publisher(pub *p, const reg_upload *u, plan_pubkey *key)
{
    p->sigdoc = json_loadb(u->signature.data, u->signature.len, JSON_REJECT_DUPLICATES, NULL);
    p->keyid = json_string_value(json_object_get(p->sigdoc, "keyid"));
    p->sig = json_string_value(json_object_get(p->sigdoc, "sig"));
    if (!p->keyid || !p->sig) {
        p->keyid = p->sig = NULL;
        return bad(p, "the 'signature' part must be {\"keyid\": \"<16 hex>\", \"sig\": "
                      "\"<base64>\"}");
    }
    int rc = reg_publisher_find(p->r, p->keyid, p->name, key);
    if (rc < 0)
        return 500;
    if (rc == 1) {
        plan_fail(p->r->ctx, PLAN_ERR_INVALID,
                  "the key %s is not registered as a publisher of '%s': the registry's "
                  "operator registers it with 'plan-registry publisher add DATA '%s' "
                  "NAME:BASE64' (the key as 'plan keys export' prints it)",
                  p->keyid, p->name, p->name);
        return 403;
    }
    return 0;
}

static int check_signature(pub *p, const plan_pubkey *key)
{
    int st = check_fields(p);
    char *canon = st ? NULL : plan_canonical_json(p->pkg);
    if (!st && !canon)
        st = bad(p, "the package holds a real number: signed objects hold integers only");
    char what[200];
    snprintf(what, sizeof(what), "the package '%s'", p->name);
    if (!st && plan_verify(p->r->ctx, key, "package", canon, strlen(canon), p->sig, what) != 0)
        st = 400;
    free(canon);
    return st;
}

static int check_blob(pub *p, const char *field, const char *what, uint64_t size,
                      const char *hash)
{
    json_t *o = json_object_get(p->pkg, field);
    const char *want = json_string_value(json_object_get(o, "hash"));
    json_int_t want_size = json_integer_value(json_object_get(o, "size"));
    if ((uint64_t)want_size == size && !strcmp(want, hash))
        return 0;
    plan_fail(p->r->ctx, PLAN_ERR_HOSTILE,
              "the %s received is %llu bytes with hash %s, but the signed package says %lld "
              "bytes with hash %s: the upload was damaged or is not what was signed; "
              "publish again", what, (unsigned long long)size, hash, (long long)want_size, want);
    return 400;
}

/* The archive, whose bytes are what was signed, must also hold what the
 * package says: exactly its path, with its content hash, for its store
 * directory.  Clients refuse anything else; a registry that takes it
 * would only be serving a package nobody can install. */
static int check_archive_holds(pub *p, const reg_upload *u)
{
    const char *store_dir = json_string_value(json_object_get(p->pkg, "store_dir"));
    const char *path = json_string_value(json_object_get(p->pkg, "path"));
    const char *content = json_string_value(json_object_get(p->pkg, "content_hash"));
    plan_export_info info;
    if (plan_export_describe(p->r->ctx, u->archive_tmp, store_dir, &info)) {
        plan_fail_wrap(p->r->ctx, PLAN_ERR_HOSTILE, "the archive is not an export of the store "
                                                    "path: make it with 'plan store export PATH'");
        return 400;
    }
    int st = 0;
    if (info.basenames.len != 1 || strcmp(info.basenames.items[0], path) != 0 ||
        strcmp(info.content_hashes.items[0], content) != 0) {
        plan_fail(p->r->ctx, PLAN_ERR_HOSTILE,
                  "the archive holds %s%s%s, but the package is '%s' (content hash %s): "
                  "export that path alone ('plan store export PATH') and sign that",
                  info.basenames.len == 1 ? "'" : "", info.basenames.len == 1
                                                          ? info.basenames.items[0]
                                                          : "not exactly one store path",
                  info.basenames.len == 1 ? "'" : "", path, content);
        st = 400;
    }
    plan_export_info_release(&info);
    return st;
}

/* Versions are immutable, and two versions equal in SemVer precedence
 * (1.0.0+a, 1.0.0+b) are the same version to a resolver. */
static int check_new_version(pub *p)
{
    sqlite3_stmt *st = reg_prepare(p->r, "SELECT version FROM versions WHERE name = ?");
    if (!st)
        return 500;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    plan_semver v, w;
    plan_semver_parse(NULL, p->version, &v);
    int status = 0;
    while (!status && sqlite3_step(st) == SQLITE_ROW) {
        const char *have = (const char *)sqlite3_column_text(st, 0);
        if (plan_semver_parse(NULL, have, &w) == 0) {
            if (plan_semver_compare(&v, &w) == 0) {
                plan_fail(p->r->ctx, PLAN_ERR_INVALID,
                          "'%s' %s is published already (as %s) and versions are immutable: "
                          "publish a new version", p->name, p->version, have);
                status = 409;
            }
            plan_semver_release(&w);
        }
    }
    plan_semver_release(&v);
    sqlite3_finalize(st);
    return status;
}

static int check_rate(pub *p, const reg_token *t, int64_t now, int64_t *retry_after)
{
    int64_t count = 0, oldest = 0;
    if (!t->rate)
        return 0;
    if (reg_token_publishes(p->r, t->id, now - 60, &count, &oldest))
        return 500;
    if (count < t->rate)
        return 0;
    *retry_after = oldest + 60 - now > 0 ? oldest + 60 - now : 1;
    plan_fail(p->r->ctx, PLAN_ERR_BUSY,
              "token %lld published %lld times in the last minute, its limit is %lld a "
              "minute: try again in %lld s", (long long)t->id, (long long)count,
              (long long)t->rate, (long long)*retry_after);
    return 429;
}

/* ---------- the change ---------- */

static int insert_version(pub *p, const reg_token *t, const reg_upload *u, int64_t now)
{
    sqlite3_stmt *st = reg_prepare(p->r, "INSERT OR IGNORE INTO packages(name, created)"
                                         " VALUES(?, ?)");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(p->r, "adding a package");
    sqlite3_finalize(st);
    if (rc || !(st = reg_prepare(p->r, "INSERT INTO versions VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?,"
                                       " ?, ?, 0, ?, ?, ?, ?)")))
        return rc ? rc : PLAN_ERR_DB;
    json_t *a = json_object_get(p->pkg, "archive"), *rcp = json_object_get(p->pkg, "recipe");
    char *refs = plan_canonical_json(json_object_get(p->pkg, "references"));
    char *deps = plan_canonical_json(json_object_get(p->pkg, "dependencies"));
    static const char *const cols[] = {"name", "version", "store_dir", "path", "content_hash"};
    int col = 1;
    for (size_t i = 0; i < 5; i++)
        sqlite3_bind_text(st, col++, json_string_value(json_object_get(p->pkg, cols[i])), -1,
                          SQLITE_STATIC);
    sqlite3_bind_text(st, col++, refs, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, col++, deps, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, col++, u->archive_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, col++, (int64_t)json_integer_value(json_object_get(a, "size")));
    /* No recipe: an empty hash (the column predates optional recipes). */
    const char *rhash = json_string_value(json_object_get(rcp, "hash"));
    sqlite3_bind_text(st, col++, rhash ? rhash : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, col++, (int64_t)u->recipe.len);
    sqlite3_bind_int64(st, col++, now);
    sqlite3_bind_text(st, col++, p->keyid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, col++, p->sig, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, col++, t->id);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(p->r, "adding a version");
    sqlite3_finalize(st);
    free(refs);
    free(deps);
    return rc;
}

static int insert_audit(reg *r, const char *action, const char *name, const char *version,
                        const reg_token *t, const char *keyid, int64_t now)
{
    sqlite3_stmt *st = reg_prepare(r, "INSERT INTO audit(at, action, name, version, token_id,"
                                      " keyid) VALUES(?, ?, ?, ?, ?, ?)");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t->id);
    sqlite3_bind_text(st, 6, keyid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "writing the audit record");
    sqlite3_finalize(st);
    return rc;
}

/* The recipe goes to a temporary file first, like the archive. */
static int place_recipe(pub *p, reg_change *c, const reg_upload *u)
{
    char *tmp = plan_xasprintf("%s/recipe-XXXXXX", p->r->tmp_dir);
    int fd = mkstemp(tmp), rc = 0;
    if (fd < 0 || fchmod(fd, 0644) != 0 ||
        write(fd, u->recipe.data, u->recipe.len) != (ssize_t)u->recipe.len || fsync(fd) != 0)
        rc = plan_fail_errno(p->r->ctx, PLAN_ERR_IO, errno, "cannot write the recipe in '%s'",
                             p->r->tmp_dir);
    if (fd >= 0)
        close(fd);
    char *rel = plan_xasprintf("recipes/%s/%s.yaml", p->name, p->version);
    if (!rc)
        rc = reg_change_place(p->r, c, tmp, rel);
    if (fd >= 0)
        unlink(tmp);
    free(rel);
    free(tmp);
    return rc;
}

static int land(pub *p, const reg_token *t, reg_upload *u, reg_change *c)
{
    int rc = insert_version(p, t, u, c->now);
    if (!rc)
        rc = insert_audit(p->r, "publish", p->name, p->version, t, p->keyid, c->now);
    char *rel = plan_xasprintf("archives/%s.tar.zst", u->archive_hash + 8);
    if (!rc && chmod(u->archive_tmp, 0644) != 0)
        rc = plan_fail_errno(p->r->ctx, PLAN_ERR_IO, errno, "cannot set the mode of '%s'",
                             u->archive_tmp);
    if (!rc)
        rc = reg_change_place(p->r, c, u->archive_tmp, rel);
    free(rel);
    if (!rc && u->has_recipe)
        rc = place_recipe(p, c, u);
    plan_strlist names;
    plan_strlist_init(&names);
    plan_strlist_add(&names, p->name);
    if (!rc)
        rc = reg_change_resign(p->r, c, &names, true);
    plan_strlist_release(&names);
    if (rc) {
        reg_change_abort(p->r, c);
        return rc;
    }
    return reg_change_commit(p->r, c);
}

static json_t *versions_now(reg *r, const char *name)
{
    int64_t snap = 0, ts = 0, idx = 0;
    reg_meta_get_int(r, "snapshot_version", &snap);
    reg_meta_get_int(r, "timestamp_version", &ts);
    sqlite3_stmt *st = reg_prepare(r, "SELECT index_version FROM packages WHERE name = ?");
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            idx = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return json_pack("{s:I, s:I, s:I}", "index_version", (json_int_t)idx, "snapshot_version",
                     (json_int_t)snap, "timestamp_version", (json_int_t)ts);
}

static int publish_checks(pub *p, const reg_token *t, reg_upload *u, int64_t now,
                          int64_t *retry_after)
{
    plan_pubkey key = {0};
    int st = check_scope(p, t);
    if (!st)
        st = check_publisher(p, u, &key);
    if (!st)
        st = check_signature(p, &key);
    plan_pubkey_release(&key);
    if (!st)
        st = check_content(p);
    if (!st)
        st = check_blob(p, "archive", "archive", u->archive_size, u->archive_hash);
    if (!st)
        st = check_archive_holds(p, u);
    bool recipe_signed = !json_is_null(json_object_get(p->pkg, "recipe"));
    if (!st && recipe_signed != u->has_recipe)
        st = bad(p, recipe_signed ? "the package names a recipe but the publish has no recipe "
                                    "part: send the recipe it was built from"
                                  : "the publish has a recipe part but the package object "
                                    "signs none ('recipe': null): sign the recipe or leave "
                                    "the part out");
    char recipe_hash[PLAN_HASH_TEXT_LEN + 1];
    reg_hash_bytes(u->recipe.data, u->recipe.len, recipe_hash);
    if (!st && recipe_signed)
        st = check_blob(p, "recipe", "recipe", u->recipe.len, recipe_hash);
    if (!st)
        st = check_new_version(p);
    if (!st)
        st = check_rate(p, t, now, retry_after);
    return st;
}

static void audit_log(reg *r, const char *action, const char *name, const char *version,
                      const reg_token *t, const char *keyid, int status, int64_t now)
{
    json_t *e = json_pack("{s:I, s:s, s:s?, s:s?, s:I, s:s?, s:i}", "time", (json_int_t)now,
                          "action", action, "name", name, "version", version, "token",
                          (json_int_t)t->id, "keyid", keyid, "status", status);
    if (status >= 300)
        json_object_set_new(e, "error", json_string(plan_ctx_error(r->ctx)));
    char *saved = plan_xstrdup(plan_ctx_error(r->ctx));
    int code = plan_ctx_error_code(r->ctx);
    reg_audit_append(r, e);
    /* The request's own message stays the one reported. */
    if (status >= 300)
        plan_fail(r->ctx, code, "%s", saved);
    free(saved);
}

int reg_publish(reg *r, const reg_token *t, reg_upload *u, int64_t now, json_t **result,
                int64_t *retry_after)
{
    pub p = {.r = r};
    json_error_t err;
    p.pkg = json_loadb(u->package.data, u->package.len, JSON_REJECT_DUPLICATES, &err);
    p.name = json_string_value(json_object_get(p.pkg, "name"));
    int st = 0;
    if (!p.pkg || !json_is_object(p.pkg))
        st = bad(&p, "the 'package' part is not a JSON object (%s)",
                 p.pkg ? "another JSON value" : err.text);
    else if (!p.name || plan_store_check_name(p.name))
        st = bad(&p, "the package has no valid 'name' (%s)",
                 p.name ? plan_store_check_name(p.name) : "missing");
    reg_change c;
    bool open = false;
    if (!st) {
        if (reg_change_begin(r, &c, now) != 0)
            st = 500;
        open = st == 0;
    }
    if (!st)
        st = publish_checks(&p, t, u, now, retry_after);
    if (!st) {
        open = false;
        st = land(&p, t, u, &c) ? 500 : 201;
    }
    if (open)
        reg_change_abort(r, &c);
    if (st == 201) {
        char *archive = plan_xasprintf("archives/%s.tar.zst", u->archive_hash + 8);
        *result = json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", p.name, "version", p.version,
                            "path", json_string_value(json_object_get(p.pkg, "path")),
                            "archive", archive, "versions", versions_now(r, p.name));
        free(archive);
    }
    audit_log(r, "publish", p.name, p.version, t, p.keyid, st, now);
    json_decref(p.pkg);
    json_decref(p.sigdoc);
    return st;
}

/* ---------- yank ---------- */

static int yank_change(reg *r, const reg_token *t, const char *name, const char *version,
                       reg_change *c)
{
    sqlite3_stmt *st = reg_prepare(r, "UPDATE versions SET yanked = 1 WHERE name = ?"
                                      " AND version = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "yanking");
    sqlite3_finalize(st);
    if (!rc)
        rc = insert_audit(r, "yank", name, version, t, NULL, c->now);
    plan_strlist names;
    plan_strlist_init(&names);
    plan_strlist_add(&names, name);
    if (!rc)
        rc = reg_change_resign(r, c, &names, true);
    plan_strlist_release(&names);
    return rc;
}

/* 0 when the version exists (and *yanked says whether it is yanked), or
 * the status. */
static int yank_lookup(reg *r, const char *name, const char *version, bool *yanked)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT yanked FROM versions WHERE name = ?"
                                      " AND version = ?");
    if (!st)
        return 500;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
    int status = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *yanked = sqlite3_column_int(st, 0) != 0;
    } else {
        plan_fail(r->ctx, PLAN_ERR_NOT_FOUND,
                  "'%s' %s is not published here: 'plan info %s' lists its versions", name,
                  version, name);
        status = 404;
    }
    sqlite3_finalize(st);
    return status;
}

int reg_yank(reg *r, const reg_token *t, const char *body, size_t len, int64_t now,
             json_t **result)
{
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *version = json_string_value(json_object_get(j, "version"));
    int st = 0;
    bool yanked = false;
    reg_change c;
    if (!name || !version) {
        plan_fail(r->ctx, PLAN_ERR_INVALID, "the body must be {\"name\": NAME, \"version\": "
                                            "VERSION}");
        st = 400;
    } else if (!reg_token_allows(t, "yank", name)) {
        char *scopes = reg_token_describe(t);
        plan_fail(r->ctx, PLAN_ERR_INVALID,
                  "token %lld may not yank '%s': its scopes are %s; ask the registry's "
                  "operator for a token with the scope 'yank:%s'",
                  (long long)t->id, name, *scopes ? scopes : "none", name);
        free(scopes);
        st = 403;
    } else if (reg_change_begin(r, &c, now) != 0) {
        st = 500;
    } else if ((st = yank_lookup(r, name, version, &yanked)) != 0 || yanked) {
        reg_change_abort(r, &c);
    } else if (yank_change(r, t, name, version, &c) != 0) {
        reg_change_abort(r, &c);
        st = 500;
    } else {
        st = reg_change_commit(r, &c) ? 500 : 0;
    }
    if (!st) {
        *result = json_pack("{s:s, s:s, s:b, s:b, s:o}", "name", name, "version", version,
                            "yanked", 1, "changed", !yanked, "versions", versions_now(r, name));
        st = 200;
    }
    if (!yanked || st != 200)
        audit_log(r, "yank", name, version, t, NULL, st, now);
    json_decref(j);
    return st;
}
