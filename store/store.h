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

/* When what the store writes must be on disk (docs/formats/store-path.md,
 * "Durability"):
 *   IMMEDIATE  a path is flushed (syncfs) before it is registered, and the
 *              database and profiles are fsynced: when a call returns, its
 *              work survives a power cut.
 *   DEFERRED   nothing waits for the disk: the kernel writes back within
 *              about 30 s.  Each registration (and each profile generation)
 *              is recorded as unsettled, with the boot it happened in; the
 *              first open after the machine booted anew re-hashes the
 *              unsettled paths and checks the unsettled generations, and
 *              removes what did not reach the disk whole, before anything
 *              uses it.  A later flush settles them.
 * Where the boot cannot be told (no boot id), DEFERRED acts as IMMEDIATE. */
typedef enum plan_durability {
    PLAN_DURABILITY_IMMEDIATE = 0,
    PLAN_DURABILITY_DEFERRED,
} plan_durability;

typedef struct plan_store_options {
    plan_durability durability;
    /* The current boot's id; NULL: the kernel's
     * (/proc/sys/kernel/random/boot_id).  Tests give another one to play a
     * reboot. */
    const char *boot_id;
} plan_store_options;

/* Open (creating if needed) the store under root.  Migrates the database,
 * then cleans leftovers of crashed operations and, after a reboot, checks
 * what was written unsettled before it.  The store keeps ctx for errors
 * and events; ctx must outlive it.  Free with plan_store_close.
 * plan_store_open is plan_store_open_with default options (IMMEDIATE). */
int plan_store_open(plan_ctx *ctx, const char *root, plan_store **out);
int plan_store_open_with(plan_ctx *ctx, const char *root, const plan_store_options *opts,
                         plan_store **out);
/* Flush the store's file system and settle everything registered before
 * the flush (DEFERRED's records).  'plan gc' calls it. */
int plan_store_settle(plan_store *store);
/* Number of paths and generations registered but not yet known to be on
 * disk. */
int plan_store_unsettled(plan_store *store, uint64_t *paths, uint64_t *generations);
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
/* Import n export files as one batch: extracted into one work directory,
 * flushed once, registered in one transaction, so that many small
 * archives cost little more than one.  Archives may share paths and refer
 * to each other's paths in any order.  All or nothing.  contents, if not
 * NULL, holds n lists that receive the basenames each file holds
 * (release them), so a caller can check an archive held what it was
 * promised. */
int plan_store_import_many(plan_store *store, const char *const *files, size_t n,
                           plan_strlist *contents, plan_import_result *out);
void plan_import_result_release(plan_import_result *r);
/* What an export file says it holds, from its metadata alone (read and
 * checked as an import reads it; nothing is extracted): the basenames of
 * its paths and their content hashes ("blake2b:..."), bound to store_dir.
 * PLAN_ERR_HOSTILE (or another error) when it does not read.  Release
 * with plan_export_info_release. */
typedef struct plan_export_info {
    plan_strlist basenames;
    plan_strlist content_hashes;
} plan_export_info;
int plan_export_describe(plan_ctx *ctx, const char *file, const char *store_dir,
                         plan_export_info *out);
void plan_export_info_release(plan_export_info *info);
/* An import whose n archives arrive one by one, extracted on workers as
 * soon as each is added (while the caller downloads the next).  What the
 * archives may hold is known beforehand: expected, the basenames a signed
 * index names for them; an archive that holds any other path is refused.
 * total_bytes (the archives' sizes) is for the progress.  Add every slot
 * 0..n-1 exactly once, in any order; the file must stay until finish.
 * finish always consumes the stream: it waits for the workers, and then
 * stages, flushes and registers as plan_store_import_many does (all or
 * nothing; contents as there, by slot).  With abandon (the caller failed:
 * its error is on the context), nothing is registered and the work is
 * removed. */
typedef struct plan_import_stream plan_import_stream;
int plan_store_import_stream_begin(plan_store *store, size_t n, uint64_t total_bytes,
                                   const plan_strlist *expected, plan_import_stream **out);
int plan_store_import_stream_add(plan_import_stream *st, size_t slot, const char *file);
/* The same for an archive held in memory (its compressed bytes; data is
 * taken, and left empty); name says where it came from in messages. */
int plan_store_import_stream_add_memory(plan_import_stream *st, size_t slot, const char *name,
                                        plan_buf *data);
int plan_store_import_stream_finish(plan_import_stream *st, bool abandon,
                                    plan_strlist *contents, plan_import_result *out);

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

/* ---- roots of the garbage collector (docs/gc.md) ----
 * A plan_store handle has a session: a locked file under var/gc/sessions
 * that lists the paths it holds.  Paths it adds, imports, builds or finds
 * realised are held automatically; the collector never deletes a path a
 * live session holds, nor anything in its closure.  The session ends with
 * plan_store_close, or when the last process that inherited its descriptor
 * (plan_store_session_fd) exits. */

/* Hold registered paths (basenames) for the life of the session.
 * PLAN_ERR_NOT_FOUND if one is not (or no longer) in the store. */
int plan_store_hold(plan_store *store, const char *basename);
int plan_store_hold_many(plan_store *store, const char *const *basenames, size_t n);
/* Hold those of the basenames that are in the store; present[i] says
 * which.  Paths this session holds already are not looked up again. */
int plan_store_hold_present(plan_store *store, const char *const *basenames, size_t n,
                            bool *present);
/* Describe the session for 'plan ps': key is "command", "plan" or "run". */
int plan_store_session_note(plan_store *store, const char *key, const char *value);
/* The session's locked descriptor, or -1 before anything was held.  A
 * child that inherits it keeps the session (and its run root) alive. */
int plan_store_session_fd(const plan_store *store);

typedef struct plan_session {
    char *id;
    long pid;
    int64_t started;
    char *runroot;          /* the last run root it made, or NULL */
    plan_strlist runroots;  /* every run root it made */
    char *command;          /* from plan_store_session_note, or NULL */
    plan_strlist plans;     /* from plan_store_session_note */
    char *run;              /* the id of the plan run it belongs to, or NULL */
    plan_strlist roots;     /* basenames held */
    bool live;              /* its lock is held */
} plan_session;

/* Every other session (live or stale).  Free with plan_sessions_free. */
int plan_store_sessions(plan_store *store, plan_session **out, size_t *n);
void plan_sessions_free(plan_session *list, size_t n);
/* Remove stale sessions and their run roots; *removed counts them. */
int plan_store_reap_sessions(plan_store *store, unsigned *removed);

/* A run root: an empty private directory parent/plan-<id>, named in the
 * session before it exists, so the collector removes it if plan dies.
 * Free with plan_store_runroot_remove (deletes the directory). */
typedef struct plan_runroot plan_runroot;
int plan_store_runroot_new(plan_store *store, const char *parent, plan_runroot **out);
const char *plan_runroot_path(const plan_runroot *rr);
void plan_store_runroot_remove(plan_runroot *rr);
/* Free the handle only: the directory stays, and is the caller's. */
void plan_runroot_forget(plan_runroot *rr);

/* Explicit roots: var/gc/roots/<name> names a path (any form
 * plan_store_resolve takes); var/gc/links/ points at symlinks made by
 * 'plan build -o' (a root while the link points into the store). */
int plan_store_add_root(plan_store *store, const char *name, const char *arg);
int plan_store_remove_root(plan_store *store, const char *name);
int plan_store_add_link_root(plan_store *store, const char *link);

typedef struct plan_gc_root {
    char *kind;     /* "profile", "root", "link", "session" */
    char *source;   /* the generation, root name, link or session */
    char *basename;
} plan_gc_root;
/* Every root (live sessions included).  Free with plan_gc_roots_free. */
int plan_store_gc_roots(plan_store *store, plan_gc_root **out, size_t *n);
void plan_gc_roots_free(plan_gc_root *roots, size_t n);

typedef struct plan_gc_opts {
    bool dry_run;        /* report what would go; delete nothing */
    uint64_t max_freed;  /* stop once this many bytes are freed; 0: no limit */
} plan_gc_opts;

typedef struct plan_gc_result {
    plan_strlist deleted;   /* basenames deleted (or, dry run, to delete) */
    uint64_t freed;         /* bytes */
    uint64_t live;          /* paths kept */
    uint64_t skipped;       /* dead paths left because another process locked them */
    unsigned stale_sessions;/* stale sessions (and run roots) removed */
    plan_strlist unregistered; /* trees in the store with no row (left by a
                                  power cut during a DEFERRED registration),
                                  removed (or, dry run, to remove) */
} plan_gc_result;

/* Delete every registered path that no root reaches, and every tree in
 * the store that is not registered and that nobody is making; then flush
 * and settle (plan_store_settle).  Waits for running registrations; fails
 * with PLAN_ERR_BUSY if another collector runs.
 * Release the result with plan_gc_result_release. */
int plan_store_gc(plan_store *store, const plan_gc_opts *opts, plan_gc_result *out);
void plan_gc_result_release(plan_gc_result *r);

/* ---- the symlink farm (docs/farm.md) ---- */
typedef enum plan_collide {
    PLAN_COLLIDE_ERROR,        /* a real collision is an error (default) */
    PLAN_COLLIDE_PREFER_FIRST, /* the plan given first wins */
    PLAN_COLLIDE_PREFER_LAST,  /* the plan given last wins */
} plan_collide;

/* The bytes of .plan/manifest.json of the store path at path (absolute)
 * as this handle wrote them when it imported the path, or NULL (then it is
 * on the disk only): what a profile made just after an install reads
 * instead of the file.  Borrowed: valid while the handle is open. */
const char *plan_store_written_manifest(const plan_store *s, const char *path, size_t *len);

typedef struct plan_farm_plan {
    const char *name;     /* for messages, --prefer and per-path choices */
    const char *version;
    const char *path;     /* absolute store path */
} plan_farm_plan;

typedef struct plan_farm_opts {
    plan_collide strategy;
    const char *const *prefer;  /* names that win every collision, in order */
    size_t n_prefer;
    /* Per-path choices: choose_paths[i] (relative, e.g. "bin/tool") comes
     * from the plan named choose_names[i]. */
    const char *const *choose_paths;
    const char *const *choose_names;
    size_t n_choose;
    /* Optional: paths this store handle registered are listed from what
     * it recorded, not read from the disk. */
    const plan_store *store;
} plan_farm_opts;

typedef struct plan_farm_stats {
    uint64_t links, dirs;
    uint64_t identical;   /* paths several plans provide with the same content */
    uint64_t chosen;      /* collisions settled by a preference or strategy */
} plan_farm_stats;

/* Merge the plans into a new directory dest (which must not exist; its
 * parent must).  A name only one plan provides is one symlink (folded);
 * directories several provide are created and merged.  Link targets are
 * relative and short: dest/.plan/<i> points at plan i.  The plans' own
 * .plan directories are not merged.  On error dest is removed. */
int plan_farm_build(plan_ctx *ctx, const plan_farm_plan *plans, size_t n, const char *dest,
                    const plan_farm_opts *opts, plan_farm_stats *stats);
const char *plan_collide_name(plan_collide c);
int plan_collide_parse(const char *text, plan_collide *out); /* 0 or -1 */

/* ---- merging plans into a new store path (docs/commands/merge.md) ----
 * The union of the plans' trees (their own .plan directories left out):
 * files are hard links to the plans' files (a copy only where a link is
 * impossible), directories are made, symlinks are made with the same
 * target.  A name several plans provide follows the farm's rules
 * (docs/farm.md): identical content is no conflict; otherwise the
 * preferences, then the strategy, settle it, or it is a conflict. */

/* Structured merge of a regular file that several plans provide with
 * different content (files[i] is plan plans[i]'s copy, in plan order).
 * Return 0 with the merged bytes in out; 0 with lines appended to
 * conflicts when the contents clash; a positive value to decline (the
 * ordinary rules then apply); a plan_err on failure. */
typedef int (*plan_merge_file_fn)(void *arg, const char *rel, const char *const *files,
                                  const size_t *plans, size_t n, plan_buf *out,
                                  plan_strlist *conflicts);

typedef struct plan_merge_opts {
    plan_collide strategy;
    const char *const *prefer;  /* names that win every conflict, in order */
    size_t n_prefer;
    plan_merge_file_fn merge_file; /* NULL: no structured merge */
    void *merge_arg;
} plan_merge_opts;

typedef struct plan_merge_stats {
    uint64_t linked;     /* files that are hard links to a plan's file */
    uint64_t copied;     /* files copied because a link was impossible */
    uint64_t identical;  /* names several plans provide with the same content */
    uint64_t chosen;     /* conflicts settled by a preference or the strategy */
    uint64_t merged;     /* files merged structurally */
} plan_merge_stats;

typedef struct plan_merge plan_merge;

/* Make the union of the n plans (registered, held by the caller) in a
 * work directory of the store.  Every unsettled conflict is appended to
 * conflicts, one line per path ("'bin/tool' is provided by a 1.0.0 and
 * b 1.0.0 with different content"); the caller then aborts.  0 unless the
 * union could not be made.  Free with plan_store_merge_finish or
 * plan_store_merge_abort. */
int plan_store_merge_begin(plan_store *store, const plan_farm_plan *plans, size_t n,
                           const plan_merge_opts *opts, plan_strlist *conflicts,
                           plan_merge **out);
/* Basenames the union refers to, sorted: every plan's own references,
 * plus the plans whose digest occurs in the union's files, links or
 * names (a self-reference of a plan keeps referring to that plan). */
const plan_strlist *plan_merge_references(const plan_merge *m);
const plan_merge_stats *plan_merge_get_stats(const plan_merge *m);
/* Add a file of mode 0444 at rel (".plan/manifest.json"), making its
 * directories; rel must not exist in the union yet. */
int plan_merge_add_file(plan_merge *m, const char *rel, const void *data, size_t len);
/* Hash the union, name it <digest>-name-version and register it with
 * plan_merge_references as its references.  The same union again is the
 * same path: then nothing is written (result->existed).  Consumes m. */
int plan_store_merge_finish(plan_store *store, plan_merge *m, const char *name,
                            const char *version, plan_output_result *result);
void plan_store_merge_abort(plan_merge *m);

/* ---- profiles and generations (docs/formats/profile.md) ----
 * <root>/profiles/<name>/generations/<N>/     the merged tree (a farm)
 * <root>/profiles/<name>/generations/<N>.json what it holds and why
 * <root>/profiles/<name>/current -> generations/<N>   switched by rename */
typedef struct plan_generation {
    unsigned number;
    int64_t created;          /* unix time */
    bool current;
    plan_strlist req_names, req_ranges;              /* what was asked for */
    plan_strlist pkg_names, pkg_versions, pkg_paths; /* what it holds (basenames) */
    plan_strlist prefer;      /* collision preferences in effect */
    char *strategy;           /* plan_collide_name(); NULL means "error" */
    plan_strlist recipes;     /* the recipe repositories it came from */
} plan_generation;

void plan_generation_init(plan_generation *g);
void plan_generation_release(plan_generation *g);

typedef struct plan_profile plan_profile;
/* Open (creating it if create) the profile name, locked against other
 * writers until plan_profile_close.  PLAN_ERR_NOT_FOUND if it does not
 * exist and create is false.  Leftovers of an interrupted commit are
 * removed.  The profile uses store: close it before the store. */
int plan_profile_open(plan_store *store, const char *name, bool create, plan_profile **out);
void plan_profile_close(plan_profile *p);
const char *plan_profile_name(const plan_profile *p);
const char *plan_profile_dir(const plan_profile *p);
/* Generations in ascending order.  Free with plan_generations_free. */
int plan_profile_generations(plan_profile *p, plan_generation **out, size_t *n);
void plan_generations_free(plan_generation *list, size_t n);
/* The current generation's number; 0 when there is none. */
unsigned plan_profile_current(plan_profile *p);
/* Make spec (packages held by the caller) a new generation and switch to
 * it: the farm is built aside, then 'current' is replaced by one rename.
 * env_sh/env_fish, if not NULL, are written to <generation>/.plan/.
 * On any failure the current generation is untouched. */
int plan_profile_commit(plan_profile *p, const plan_generation *spec,
                        const plan_farm_opts *farm, const char *env_sh, const char *env_fish,
                        plan_farm_stats *stats, unsigned *number);
/* Point 'current' at an existing generation (rollback). */
int plan_profile_switch(plan_profile *p, unsigned number);
/* Delete a generation that is not the current one. */
int plan_profile_delete_generation(plan_profile *p, unsigned number);
/* Names of every profile, sorted. */
int plan_profile_names(plan_store *store, plan_strlist *out);
int plan_profile_check_name(const char *name); /* 0 or -1 */

/* ---- plans' dynamic configuration (docs/formats/database.md#configuration-schema-version-2) ----
 * Per plan name (so it survives upgrades), versioned: every set, unset and
 * rollback is a new version (1, 2, ... per name) that records its time and,
 * per key it changes, the old and the new value.  Secret values live apart,
 * in <root>/var/secrets/config.db (mode 0600 in a 0700 folder); the main
 * database records only that a value is secret.  The store does not know
 * schemas: callers validate (recipes/recipes.h). */
typedef struct plan_config_value {
    char *key;
    char *value;      /* NULL for a secret unless asked for (with_secrets) */
    bool secret;
    int64_t version;  /* the version that gave the key this value */
} plan_config_value;

typedef struct plan_config_state {
    int64_t version;          /* the name's latest version; 0 when it has none */
    plan_config_value *items; /* the keys that have a value, sorted by key */
    size_t n;
} plan_config_state;

typedef struct plan_config_change {
    char *key;
    char *old_value, *new_value; /* NULL: no value; and always NULL for a secret */
    bool old_secret, new_secret;
} plan_config_change;

typedef struct plan_config_version {
    int64_t version;
    int64_t created;          /* unix time */
    char *action;             /* "set", "unset" or "rollback" */
    int64_t target;           /* rollback: the version returned to */
    plan_config_change *changes; /* sorted by key; empty for a rollback that changed nothing */
    size_t n;
} plan_config_version;

typedef struct plan_config_history {
    plan_config_version *items; /* oldest first */
    size_t n;
} plan_config_history;

/* Set key of name to value (a new version, into *version if not NULL).
 * A secret value goes to the secrets database.  A key whose value is a
 * secret stays secret when it is set again, until it is unset. */
int plan_store_config_set(plan_store *store, const char *name, const char *key,
                          const char *value, bool secret, int64_t *version);
/* Remove key's value (a new version).  PLAN_ERR_NOT_FOUND if it has none. */
int plan_store_config_unset(plan_store *store, const char *name, const char *key,
                            int64_t *version);
/* Make the values of version `to` (0: none at all) current again, as a
 * new version.  PLAN_ERR_NOT_FOUND if name has no version `to`. */
int plan_store_config_rollback(plan_store *store, const char *name, int64_t to,
                               int64_t *version);
/* The values now (at == 0) or as of version at.  with_secrets reads the
 * secret values too (for materialising a run, never for display).
 * Release with plan_config_state_release. */
int plan_store_config_state(plan_store *store, const char *name, int64_t at, bool with_secrets,
                            plan_config_state *out);
void plan_config_state_release(plan_config_state *s);
/* The value of key in s, or NULL. */
const plan_config_value *plan_config_state_get(const plan_config_state *s, const char *key);
/* Every version of name.  Release with plan_config_history_release. */
int plan_store_config_history(plan_store *store, const char *name, plan_config_history *out);
void plan_config_history_release(plan_config_history *h);

#endif
