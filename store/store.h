/*
 * store.h - the content-addressed store: canonical tree hashing, store paths,
 * the sqlite database, atomic registration, references, export and import of
 * deterministic archives, verification, repair and optimisation.
 *
 * A store lives under a root directory:
 *   <root>/store/<digest>-<name>-<version>   read-only store paths
 *   <root>/store/.tmp/                       work directories (same filesystem)
 *   <root>/store/.links/                     content-addressed hard links (optimise)
 *   <root>/var/db/plan.db                    the database (WAL)
 *   <root>/var/locks/                        per-digest lock files
 *   <root>/var/pending/                      registration intents (crash recovery)
 * See docs/formats/store-path.md and docs/formats/database.md.
 */
#ifndef PLAN_STORE_H
#define PLAN_STORE_H

#include "../common/common.h"

#define PLAN_DIGEST_CHARS 32   /* base32 characters of a store digest (160 bits) */
#define PLAN_HASH_BYTES 32     /* BLAKE2b-256 */
#define PLAN_HASH_TEXT_LEN (8 + 2 * PLAN_HASH_BYTES) /* "blake2b:" + hex */

typedef struct plan_hash {
    uint8_t bytes[PLAN_HASH_BYTES];
} plan_hash;

/* ---- canonical serialization and hashing (docs/formats/serialization.md) ---- */

/* "blake2b:<64 hex>" into out (PLAN_HASH_TEXT_LEN + 1 bytes). */
void plan_hash_format(const plan_hash *h, char *out);
int plan_hash_parse(const char *text, plan_hash *out); /* 0 or -1 */

typedef struct plan_tree_stats {
    uint64_t files;
    uint64_t dirs;
    uint64_t symlinks;
    uint64_t bytes; /* file bytes plus symlink target bytes */
} plan_tree_stats;

/* Hash the tree rooted at directory dir with the canonical serialization.
 * If mask is not NULL it must be a PLAN_DIGEST_CHARS-long digest: every
 * occurrence of it (in file contents, symlink targets and names) is hashed
 * as if it were 32 '0' characters, which is how a store path that refers to
 * itself gets a stable content hash.  Files are hashed on threads threads
 * (0: one per core).  stats may be NULL. */
int plan_store_hash_tree(plan_ctx *ctx, const char *dir, const char *mask,
                         unsigned threads, plan_hash *out, plan_tree_stats *stats);

/* The store digest: BLAKE2b-160 of the fingerprint, in 32 base32 chars.
 * out must hold PLAN_DIGEST_CHARS + 1 bytes. */
void plan_store_digest(const char *store_dir, const char *name, const char *version,
                       const plan_hash *content, char *out);
/* Base32 in the store alphabet (0-9 a-z without e i o u). */
void plan_base32_encode(const uint8_t *in, size_t n, char *out);
bool plan_base32_valid_char(char c);

/* Name and version rules for store paths: 1-100 characters of
 * [A-Za-z0-9._+-]; a name starts with a letter or digit and never holds a
 * '-' followed by a digit; a version starts with a digit.  So a basename
 * splits unambiguously at its first "-<digit>".  Returns NULL when valid,
 * else a static description. */
const char *plan_store_check_name(const char *name);
const char *plan_store_check_version(const char *version);

/* ---- the store ---- */
typedef struct plan_store plan_store;

/* Open (creating if needed) the store under root.  Migrates the database,
 * then cleans leftovers of crashed operations.  The store keeps ctx for
 * errors and events; ctx must outlive it.  Free with plan_store_close. */
int plan_store_open(plan_ctx *ctx, const char *root, plan_store **out);
void plan_store_close(plan_store *store);
const char *plan_store_dir(const plan_store *store);  /* <root>/store */
const char *plan_store_root(const plan_store *store);
plan_ctx *plan_store_ctx(const plan_store *store);
/* Number of hashing threads (default: one per core). */
void plan_store_set_threads(plan_store *store, unsigned threads);

/* Resolve a user's argument (full path, path inside a store path, basename
 * or bare digest) to the basename of a registered store path.  Caller frees
 * *basename.  PLAN_ERR_NOT_FOUND if it is not registered. */
int plan_store_resolve(plan_store *store, const char *arg, char **basename);

typedef struct plan_add_opts {
    const char *dir;      /* tree to copy in */
    const char *name;
    const char *version;
    /* Candidate references: digests (32 chars) or basenames of registered
     * paths.  The new tree is scanned for them; what is found is recorded. */
    const char *const *ref_candidates;
    size_t n_ref_candidates;
    bool scan_all_refs;   /* also scan for every registered path's digest */
} plan_add_opts;

typedef struct plan_add_result {
    char *path;           /* absolute store path; caller frees */
    bool existed;         /* already present: nothing was written */
} plan_add_result;

/* Copy a tree into the store.  Atomic and idempotent: the same content
 * gives the same path, and adding it again writes nothing. */
int plan_store_add(plan_store *store, const plan_add_opts *opts, plan_add_result *out);

typedef struct plan_path_info {
    char *path;          /* absolute */
    char *basename;
    char *digest;
    char *name;
    char *version;
    char content_hash[PLAN_HASH_TEXT_LEN + 1];
    uint64_t size;       /* bytes of file contents and symlink targets */
    uint64_t closure_size;
    int64_t registered;  /* unix time */
    plan_strlist references; /* basenames, sorted */
} plan_path_info;

/* Look up a registered path (any form plan_store_resolve accepts).
 * Free with plan_path_info_free. */
int plan_store_path_info(plan_store *store, const char *arg, plan_path_info **out);
void plan_path_info_free(plan_path_info *info);

/* Basenames of every registered path, sorted. */
int plan_store_list(plan_store *store, plan_strlist *out);
/* The closure of the given basenames (themselves included), sorted. */
int plan_store_closure(plan_store *store, const plan_strlist *roots, plan_strlist *out);

/* ---- verification and repair ---- */
typedef enum plan_problem_kind {
    PLAN_PROBLEM_MISSING,      /* registered, but the directory is gone */
    PLAN_PROBLEM_MODIFIED,     /* contents no longer match the content hash */
    PLAN_PROBLEM_UNREGISTERED, /* a directory in the store the DB does not know */
    PLAN_PROBLEM_WRITABLE,     /* a path that lost its read-only mode */
} plan_problem_kind;

typedef struct plan_problem {
    plan_problem_kind kind;
    char *basename;
    char *detail;
} plan_problem;

typedef struct plan_verify_report {
    plan_problem *items;
    size_t len, cap;
    uint64_t checked;
} plan_verify_report;

/* Check the given paths (all when n == 0; then unregistered directories are
 * looked for too).  Each problem names a basename (for UNREGISTERED, the
 * name found in the store directory).  With check_contents every path is re-hashed.  Problems
 * are appended to report (release with plan_verify_report_release); the
 * return value is 0 unless verification itself could not run. */
int plan_store_verify(plan_store *store, const char *const *paths, size_t n,
                      bool check_contents, plan_verify_report *report);
void plan_verify_report_release(plan_verify_report *report);
const char *plan_problem_kind_name(plan_problem_kind kind);

/* Restore a registered path from an export file that contains it.  The
 * restored tree must hash to the registered content hash. */
int plan_store_repair(plan_store *store, const char *arg, const char *export_file);

/* ---- export and import (docs/formats/export.md) ---- */
/* Write the given paths (and their closure if closure) to a deterministic
 * tar.zst.  The same set of paths always gives the same bytes. */
int plan_store_export(plan_store *store, const char *const *paths, size_t n, bool closure,
                      const char *file);

typedef struct plan_import_result {
    plan_strlist added;    /* basenames newly registered */
    plan_strlist present;  /* basenames that were already there */
} plan_import_result;

/* Import an export file.  The file is hostile until proven otherwise: every
 * entry is checked, sizes are capped by the declared sizes, and every path
 * is re-hashed before anything is registered.  On any error the store is
 * unchanged.  Release the result with plan_import_result_release. */
int plan_store_import(plan_store *store, const char *file, plan_import_result *out);
void plan_import_result_release(plan_import_result *r);

/* ---- optimisation ---- */
typedef struct plan_optimise_result {
    uint64_t files_linked;
    uint64_t bytes_saved;
} plan_optimise_result;

/* Hard-link identical files (same bytes, same executable bit) across the
 * store. */
int plan_store_optimise(plan_store *store, plan_optimise_result *out);

/* ---- build outputs ----
 * A build writes to a placeholder path of the same length as its final
 * path: <store>/<random digest>-<name>-<version>.  While the output lives,
 * it is locked, and an intent file makes the next plan_store_open remove
 * it if the process dies.  Finishing hashes it with the placeholder masked,
 * rewrites the placeholder to the final digest, seals it and registers it
 * with its references and realisation (docs/formats/store-path.md). */
typedef struct plan_output plan_output;

/* Create the placeholder directory (empty, writable).  Free with
 * plan_store_output_abort or plan_store_output_finish. */
int plan_store_output_begin(plan_store *store, const char *name, const char *version,
                            plan_output **out);
const char *plan_output_path(const plan_output *out);   /* the placeholder path */
const char *plan_output_digest(const plan_output *out); /* its 32-character digest */

typedef struct plan_output_result {
    char *path;     /* the final store path; caller frees */
    bool existed;   /* identical content was already registered */
} plan_output_result;

/* Register the output.  refs are basenames of registered paths it refers
 * to; realisation, if not NULL, is recorded as recipe hash -> path.
 * Consumes out whether it succeeds or not. */
int plan_store_output_finish(plan_store *store, plan_output *out, const plan_strlist *refs,
                             const char *realisation, plan_output_result *result);
/* Remove the placeholder and everything in it. */
void plan_store_output_abort(plan_store *store, plan_output *out);

/* --check: compare a finished-but-unregistered output with the registered
 * path it should reproduce.  Differing files (relative paths, with what
 * differs) are appended to differences; an empty list means identical.
 * The output is left in place (abort it afterwards). */
int plan_store_compare_output(plan_store *store, plan_output *out, const char *registered,
                              plan_strlist *differences);

/* Copy a tree (files, directories, symlinks) to to, which must not exist;
 * the copy is writable.  For build trees, not store paths. */
int plan_store_copy_tree(plan_store *store, const char *from, const char *to);

/* The path registered for a recipe hash, if it is still present; caller
 * frees.  PLAN_ERR_NOT_FOUND otherwise. */
int plan_store_realisation(plan_store *store, const char *recipe_hash, char **path);

/* A private, locked scratch directory on the store's filesystem (for
 * build trees).  Caller frees *path with plan_store_scratch_release. */
typedef struct plan_scratch plan_scratch;
int plan_store_scratch_new(plan_store *store, plan_scratch **out);
const char *plan_scratch_path(const plan_scratch *scratch);
void plan_store_scratch_release(plan_scratch *scratch);

/* ---- references and self-references (used by builds) ---- */
/* Scan the tree at dir for each of the n digests (32 chars each); found[i]
 * is set when digests[i] occurs in a file, a symlink target or a name. */
int plan_store_scan_refs(plan_ctx *ctx, const char *dir, const char *const *digests,
                         size_t n, bool *found);
/* Replace every occurrence of from by to (both 32 chars) in file contents,
 * symlink targets and names below dir.  *count receives the number of
 * occurrences replaced (may be NULL). */
int plan_store_rewrite_digest(plan_ctx *ctx, const char *dir, const char *from,
                              const char *to, uint64_t *count);

#endif
