/*
 * registry.h - the internals of plan-registry, private to registry-server/.
 *
 * A registry lives in one directory, DATA:
 *   DATA/registry.db          sqlite: packages, versions, tokens, publishers, audit
 *   DATA/keys/NAME.secret     the registry key (mode 0600)
 *   DATA/static/              the read side, exactly as clients and mirrors see it
 *   DATA/tmp/                 uploads and files being written (same filesystem)
 *   DATA/audit.log            one JSON line per publish or yank, accepted or refused
 * The database is the truth; the files under static/ are what it signs.
 * See docs/formats/registry.md and docs/commands/plan-registry.md.
 */
#ifndef PLAN_REGISTRY_H
#define PLAN_REGISTRY_H

#include "../common/common.h"
#include "../fetch/fetch.h"
#include "../store/store.h"

#include <jansson.h>
#include <sqlite3.h>

#define REG_TIMESTAMP_LIFETIME (24 * 3600)     /* seconds */
#define REG_METADATA_LIFETIME (30 * 24 * 3600) /* snapshot and index files */
#define REG_PART_MAX (1 << 20)                 /* package, signature parts; yank body */
#define REG_RECIPE_MAX (4 << 20)

typedef struct reg {
    plan_ctx *ctx;
    char *dir;        /* DATA */
    char *static_dir; /* DATA/static */
    char *tmp_dir;    /* DATA/tmp */
    sqlite3 *db;
    plan_seckey key;  /* zero unless opened with the key */
    int64_t timestamp_lifetime;
    int64_t metadata_lifetime;
} reg;

/* ---- data.c: the registry directory and its database ---- */
/* Make a new registry in dir (refused if one is there) with a registry key
 * called key_name; *out is open with the key. */
int reg_create(plan_ctx *ctx, const char *dir, const char *key_name, reg **out);
/* Open an existing registry; with_key loads the registry's secret key. */
int reg_open(plan_ctx *ctx, const char *dir, bool with_key, reg **out);
void reg_close(reg *r);
/* Run SQL with no result rows. */
int reg_exec(reg *r, const char *sql);
sqlite3_stmt *reg_prepare(reg *r, const char *sql); /* NULL with the error on ctx */
int reg_db_fail(reg *r, const char *doing);
int reg_meta_get_int(reg *r, const char *key, int64_t *out);
int reg_meta_set_int(reg *r, const char *key, int64_t v);
int reg_meta_get(reg *r, const char *key, char **out); /* caller frees */
int reg_meta_set(reg *r, const char *key, const char *v);
/* Append one line of JSON to DATA/audit.log; takes entry.  Failure to log
 * is reported on ctx but changes nothing else. */
int reg_audit_append(reg *r, json_t *entry);
/* "blake2b:<hex>" of bytes into out (PLAN_HASH_TEXT_LEN + 1). */
void reg_hash_bytes(const void *p, size_t n, char *out);

/* ---- meta.c: the signed read side and atomic changes to it ---- */
/* A change in progress, between reg_change_begin and reg_change_commit or
 * reg_change_abort: files written under temporary names are renamed into
 * static/ only after the database commits; blobs placed before the commit
 * are removed again if it does not happen. */
typedef struct reg_change {
    plan_strlist tmp, final; /* metadata, renamed in this order after COMMIT */
    plan_strlist placed;     /* blobs already renamed into place */
    int64_t now;
} reg_change;

int reg_change_begin(reg *r, reg_change *c, int64_t now); /* BEGIN IMMEDIATE */
/* Write text to a temporary file that becomes static/rel at commit. */
int reg_change_stage(reg *r, reg_change *c, const char *rel, const char *text, size_t len);
/* Rename the finished file tmp to static/rel now (an immutable blob: if
 * rel exists already it is the same bytes, and tmp is dropped). */
int reg_change_place(reg *r, reg_change *c, const char *tmp, const char *rel);
/* Re-sign: the index of every name in names (version + 1), then the
 * snapshot if snapshot or names is not empty, then the timestamp. */
int reg_change_resign(reg *r, reg_change *c, const plan_strlist *names, bool snapshot);
int reg_change_commit(reg *r, reg_change *c);
void reg_change_abort(reg *r, reg_change *c);
/* Re-sign what has less than half of its lifetime left (force: the
 * timestamp in any case).  *next (may be NULL) receives the time of the
 * next refresh. */
int reg_refresh(reg *r, int64_t now, bool force, int64_t *next);
/* Write the first, empty snapshot and timestamp (init). */
int reg_meta_init(reg *r, int64_t now);

/* ---- rotate.c: a new registry key ---- */
/* Make the key new_name, vouch for it with the current key in
 * static/rotations.json, and sign every index, the snapshot and the
 * timestamp again with it, in one change; out is its public half (release
 * it).  r signs with the new key afterwards. */
int reg_rotate_key(reg *r, const char *new_name, int64_t now, plan_pubkey *out);
/* While a server runs on DATA it holds DATA/serve.lock shared; a rotation
 * needs it exclusively (a server would go on signing with the old key).
 * *fd is the lock, to close when done. */
int reg_serve_lock(reg *r, bool exclusive, int *fd);

/* ---- auth.c: tokens, scopes, publishers, rate limits ---- */
typedef struct reg_scope {
    char *action; /* publish-new, publish-update, yank */
    char *pattern;
} reg_scope;

typedef struct reg_token {
    int64_t id;
    int64_t rate; /* publishes per minute; 0: no limit */
    reg_scope *scopes;
    size_t n;
} reg_token;

void reg_token_release(reg_token *t);
/* Parse "ACTION[,ACTION...][:PATTERN]" and append to t's scopes. */
int reg_scope_parse(plan_ctx *ctx, const char *text, reg_token *t);
/* Store a new token with t's scopes and rate; *secret is the token (caller
 * frees), shown once: only its hash is kept. */
int reg_token_create(reg *r, reg_token *t, char **secret);
/* Find the token whose hash matches secret: 0, 1 if unknown, <0 on error. */
int reg_token_find(reg *r, const char *secret, reg_token *out);
bool reg_token_allows(const reg_token *t, const char *action, const char *name);
/* Scopes as "publish-new,yank:hello*;..." for messages (caller frees). */
char *reg_token_describe(const reg_token *t);
int reg_token_list(reg *r, json_t **out);
int reg_token_revoke(reg *r, int64_t id);
/* Publishes by token id since since; *oldest is the earliest of them. */
int reg_token_publishes(reg *r, int64_t id, int64_t since, int64_t *count, int64_t *oldest);

int reg_publisher_add(reg *r, const char *pattern, const plan_pubkey *k);
/* The publisher key with this id registered for a pattern matching name:
 * 0 and *out, 1 if none, <0 on error. */
int reg_publisher_find(reg *r, const char *keyid, const char *name, plan_pubkey *out);
int reg_publisher_list(reg *r, json_t **out);

/* ---- publish.c: the write API, independent of HTTP ---- */
typedef struct reg_upload {
    plan_buf package, signature, recipe;
    char *archive_tmp;     /* the archive as received, under DATA/tmp; owned */
    uint64_t archive_size;
    char archive_hash[PLAN_HASH_TEXT_LEN + 1];
    bool has_recipe;       /* a recipe part was sent (it is optional) */
} reg_upload;

void reg_upload_init(reg_upload *u);
void reg_upload_release(reg_upload *u); /* removes the temporary archive */
/* The checks and the change of a publish (docs/formats/registry.md): an
 * HTTP status; anything but 201 has its message on ctx and changed
 * nothing.  *result (201) describes what landed. */
int reg_publish(reg *r, const reg_token *t, reg_upload *u, int64_t now, json_t **result,
                int64_t *retry_after);
/* A yank: body is the request's JSON. */
int reg_yank(reg *r, const reg_token *t, const char *body, size_t len, int64_t now,
             json_t **result);

/* ---- http.c ---- */
typedef struct reg_serve_opts {
    const char *listen;   /* ADDR:PORT */
    uint64_t max_upload;
    bool verbose;
    unsigned threads;
} reg_serve_opts;

/* Serve until SIGINT or SIGTERM; prints "listening on ADDR:PORT". */
int reg_serve(reg *r, const reg_serve_opts *o);

/* ---- export.c ---- */
int reg_export(reg *r, const char *dest);

#endif
