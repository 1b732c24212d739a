/* Who may publish what: tokens (kept only as BLAKE2b hashes) with scoped
 * actions and a rate, and publisher keys registered for name patterns. */
#include "registry.h"

#include <fnmatch.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_PREFIX "plan_"
#define TOKEN_BYTES 32

static const char *const ACTIONS[] = {"publish-new", "publish-update", "yank"};

void reg_token_release(reg_token *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->scopes[i].action);
        free(t->scopes[i].pattern);
    }
    free(t->scopes);
    memset(t, 0, sizeof(*t));
}

static void scope_add(reg_token *t, const char *action, const char *pattern)
{
    t->scopes = plan_xrealloc(t->scopes, (t->n + 1) * sizeof(*t->scopes));
    t->scopes[t->n].action = plan_xstrdup(action);
    t->scopes[t->n].pattern = plan_xstrdup(pattern);
    t->n++;
}

static bool action_known(const char *a)
{
    for (size_t i = 0; i < sizeof(ACTIONS) / sizeof(ACTIONS[0]); i++)
        if (!strcmp(a, ACTIONS[i]))
            return true;
    return false;
}

int reg_scope_parse(plan_ctx *ctx, const char *text, reg_token *t)
{
    const char *colon = strchr(text, ':');
    const char *pattern = colon ? colon + 1 : "*";
    char *actions = colon ? plan_xstrndup(text, (size_t)(colon - text)) : plan_xstrdup(text);
    int rc = 0;
    if (!*pattern)
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "the scope '%s' has an empty name pattern: write ACTIONS:PATTERN, e.g. "
                       "'publish-new,publish-update:hello*'", text);
    char *save = NULL;
    for (char *a = rc ? NULL : strtok_r(actions, ",", &save); a && !rc;
         a = strtok_r(NULL, ",", &save)) {
        if (!action_known(a))
            rc = plan_fail(ctx, PLAN_ERR_INVALID,
                           "unknown action '%s' in the scope '%s': the actions are "
                           "publish-new, publish-update and yank", a, text);
        else
            scope_add(t, a, pattern);
    }
    if (!rc && !t->n)
        rc = plan_fail(ctx, PLAN_ERR_INVALID, "the scope '%s' names no action", text);
    free(actions);
    return rc;
}

static void token_hash(const char *secret, char *out)
{
    reg_hash_bytes(secret, strlen(secret), out);
}

int reg_token_create(reg *r, reg_token *t, char **secret)
{
    uint8_t raw[TOKEN_BYTES];
    randombytes_buf(raw, sizeof(raw));
    char text[sizeof(TOKEN_PREFIX) + 2 * TOKEN_BYTES], hash[PLAN_HASH_TEXT_LEN + 1];
    memcpy(text, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
    plan_hex_encode(raw, sizeof(raw), text + sizeof(TOKEN_PREFIX) - 1);
    sodium_memzero(raw, sizeof(raw));
    token_hash(text, hash);
    int rc = reg_exec(r, "BEGIN IMMEDIATE");
    sqlite3_stmt *st = rc ? NULL : reg_prepare(r, "INSERT INTO tokens(hash, rate, created)"
                                                  " VALUES(?, ?, ?)");
    if (st) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, t->rate);
        sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "storing the token");
        sqlite3_finalize(st);
        t->id = sqlite3_last_insert_rowid(r->db);
    } else if (!rc) {
        rc = PLAN_ERR_DB;
    }
    st = rc ? NULL : reg_prepare(r, "INSERT INTO token_scopes VALUES(?, ?, ?)");
    for (size_t i = 0; st && i < t->n && !rc; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, t->id);
        sqlite3_bind_text(st, 2, t->scopes[i].action, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, t->scopes[i].pattern, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "storing the token");
    }
    sqlite3_finalize(st);
    if (!rc)
        rc = reg_exec(r, "COMMIT");
    if (rc) {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        sodium_memzero(text, sizeof(text));
        return rc;
    }
    *secret = plan_xstrdup(text);
    sodium_memzero(text, sizeof(text));
    return 0;
}

static int load_scopes(reg *r, reg_token *t)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT action, pattern FROM token_scopes"
                                      " WHERE token_id = ? ORDER BY rowid");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_int64(st, 1, t->id);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        scope_add(t, (const char *)sqlite3_column_text(st, 0),
                  (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : reg_db_fail(r, "reading a token");
}

int reg_token_find(reg *r, const char *secret, reg_token *out)
{
    memset(out, 0, sizeof(*out));
    char hash[PLAN_HASH_TEXT_LEN + 1];
    token_hash(secret, hash);
    /* Looked up by hash: the lookup's timing tells nothing about the token. */
    sqlite3_stmt *st = reg_prepare(r, "SELECT id, rate FROM tokens WHERE hash = ?"
                                      " AND revoked = 0");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), rc = 1;
    if (s == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->rate = sqlite3_column_int64(st, 1);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = reg_db_fail(r, "looking up a token");
    }
    sqlite3_finalize(st);
    if (!rc && (rc = load_scopes(r, out)) != 0)
        reg_token_release(out);
    return rc;
}

bool reg_token_allows(const reg_token *t, const char *action, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->scopes[i].action, action) && fnmatch(t->scopes[i].pattern, name, 0) == 0)
            return true;
    return false;
}

char *reg_token_describe(const reg_token *t)
{
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < t->n; i++)
        plan_buf_printf(&b, "%s%s:%s", i ? ", " : "", t->scopes[i].action,
                        t->scopes[i].pattern);
    return plan_buf_detach(&b);
}

int reg_token_list(reg *r, json_t **out)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT id, rate, created, revoked FROM tokens"
                                      " ORDER BY id");
    if (!st)
        return PLAN_ERR_DB;
    json_t *arr = json_array();
    int s, rc = 0;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        reg_token t = {.id = sqlite3_column_int64(st, 0)};
        rc = load_scopes(r, &t);
        json_t *scopes = json_array();
        for (size_t i = 0; i < t.n; i++)
            json_array_append_new(scopes, json_sprintf("%s:%s", t.scopes[i].action,
                                                       t.scopes[i].pattern));
        json_array_append_new(arr, json_pack("{s:I, s:o, s:I, s:I, s:b}", "id",
                                             (json_int_t)t.id, "scopes", scopes, "rate",
                                             (json_int_t)sqlite3_column_int64(st, 1), "created",
                                             (json_int_t)sqlite3_column_int64(st, 2), "revoked",
                                             sqlite3_column_int(st, 3)));
        reg_token_release(&t);
    }
    if (!rc && s != SQLITE_DONE)
        rc = reg_db_fail(r, "listing tokens");
    sqlite3_finalize(st);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

int reg_token_revoke(reg *r, int64_t id)
{
    sqlite3_stmt *st = reg_prepare(r, "UPDATE tokens SET revoked = 1 WHERE id = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "revoking a token");
    sqlite3_finalize(st);
    if (!rc && sqlite3_changes(r->db) == 0)
        rc = plan_fail(r->ctx, PLAN_ERR_NOT_FOUND,
                       "there is no token %lld: 'plan-registry token list' shows them",
                       (long long)id);
    return rc;
}

int reg_token_publishes(reg *r, int64_t id, int64_t since, int64_t *count, int64_t *oldest)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT count(*), min(at) FROM audit WHERE token_id = ?"
                                      " AND action = 'publish' AND at > ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, since);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : reg_db_fail(r, "counting publishes");
    if (!rc) {
        *count = sqlite3_column_int64(st, 0);
        *oldest = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---------- publishers ---------- */

int reg_publisher_add(reg *r, const char *pattern, const plan_pubkey *k)
{
    char *text = plan_pubkey_format(k);
    sqlite3_stmt *st = reg_prepare(r, "INSERT OR REPLACE INTO publishers(pattern, key, keyid,"
                                      " added) VALUES(?, ?, ?, ?)");
    int rc = st ? 0 : PLAN_ERR_DB;
    if (st) {
        sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, k->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : reg_db_fail(r, "adding a publisher");
        sqlite3_finalize(st);
    }
    free(text);
    return rc;
}

int reg_publisher_find(reg *r, const char *keyid, const char *name, plan_pubkey *out)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT pattern, key FROM publishers WHERE keyid = ?");
    if (!st)
        return PLAN_ERR_DB;
    sqlite3_bind_text(st, 1, keyid, -1, SQLITE_STATIC);
    int s, rc = 1;
    while (rc == 1 && (s = sqlite3_step(st)) == SQLITE_ROW)
        if (fnmatch((const char *)sqlite3_column_text(st, 0), name, 0) == 0)
            rc = plan_pubkey_parse(r->ctx, (const char *)sqlite3_column_text(st, 1), out);
    if (rc == 1 && s != SQLITE_DONE)
        rc = reg_db_fail(r, "looking up publishers");
    sqlite3_finalize(st);
    return rc;
}

int reg_publisher_list(reg *r, json_t **out)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT pattern, key, keyid FROM publishers"
                                      " ORDER BY pattern, keyid");
    if (!st)
        return PLAN_ERR_DB;
    json_t *arr = json_array();
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "pattern",
                                             (const char *)sqlite3_column_text(st, 0), "key",
                                             (const char *)sqlite3_column_text(st, 1), "keyid",
                                             (const char *)sqlite3_column_text(st, 2)));
    sqlite3_finalize(st);
    if (s != SQLITE_DONE) {
        json_decref(arr);
        return reg_db_fail(r, "listing publishers");
    }
    *out = arr;
    return 0;
}
