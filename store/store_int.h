/* store_int.h - private to store/: the walked tree, the database layer and
 * the helpers the store's files share.  Never included outside store/. */
#ifndef PLAN_STORE_INT_H
#define PLAN_STORE_INT_H

#include "store.h"

#include <stdatomic.h>

#include <sqlite3.h>

typedef enum tree_type { TREE_DIR, TREE_FILE, TREE_SYMLINK } tree_type;

typedef struct tree_entry {
    char *path;        /* relative to the tree's root, '/'-separated */
    tree_type type;
    bool exec;         /* files: any execute bit set */
    uint64_t size;     /* files: bytes; symlinks: target length */
    char *target;      /* symlinks */
    ino_t ino;         /* files: identity and change times, for optimise */
    dev_t dev;         /* and for the hash cache */
    int64_t mtime_ns;
    int64_t ctime_ns;
    bool hashed;       /* digest is already known (from the hash cache) */
    plan_hash digest;  /* files: BLAKE2b-256 of the (masked) contents */
} tree_entry;

typedef struct tree {
    tree_entry *items;
    size_t len, cap;
} tree;

/* Walk dir (which must be a directory) into out, sorted bytewise by path.
 * Anything that is not a file, directory or symlink is refused. */
int tree_walk(plan_ctx *ctx, const char *dir, tree *out);
void tree_release(tree *t);
/* Hash every file of t (read below root) on threads threads. */
int tree_hash_files(plan_ctx *ctx, const char *root, tree *t, const char *mask,
                    unsigned threads);
/* Run fn on every file entry of t on threads threads (0: one per core).
 * fn gets a private scratch buffer of TREE_SCRATCH_BYTES; on failure it
 * returns a plan_err and sets *msg (malloc'd).  phase, if not NULL, names
 * the progress events. */
#define TREE_SCRATCH_BYTES (256 * 1024 + 64)
typedef int (*tree_file_fn)(void *arg, tree_entry *e, uint8_t *scratch, char **msg);
int tree_for_each_file(plan_ctx *ctx, tree *t, unsigned threads, const char *phase,
                       tree_file_fn fn, void *arg);
/* Hashing a stream with a mask (see plan_store_hash_tree), as it arrives. */
typedef struct masked_hasher {
    void *state;      /* crypto_generichash_state, allocated */
    const char *mask; /* NULL: no masking */
    char carry[PLAN_DIGEST_CHARS];
    size_t have;
} masked_hasher;
void masked_hasher_init(masked_hasher *h, const char *mask);
void masked_hasher_update(masked_hasher *h, const void *data, size_t len);
void masked_hasher_final(masked_hasher *h, plan_hash *out); /* frees the state */
/* Append an entry to t; strings copied.  Sort with tree_sort. */
tree_entry *tree_add(tree *t, const char *path, tree_type type);
void tree_sort(tree *t);
/* The canonical serialization of t, hashed. */
void tree_hash(const tree *t, const char *mask, plan_hash *out);
void tree_stats(const tree *t, plan_tree_stats *stats);
/* Mask: copy of s with every occurrence of mask replaced by '0's. */
char *mask_string(const char *s, const char *mask);

struct plan_store {
    plan_ctx *ctx;
    char *root;
    char *store_dir;
    char *tmp_dir;
    char *links_dir;
    char *locks_dir;
    char *pending_dir;
    char *gc_dir;        /* <root>/var/gc: gc.lock, sessions, roots, links */
    char *unsettled_dir; /* <root>/var/unsettled: generations not yet on disk */
    sqlite3 *db;
    /* Durability (settle.c): DEFERRED only when the boot is known. */
    plan_durability durability;
    char boot_id[48];    /* "" when unknown */
    int64_t flushed_before; /* this handle flushed everything written before
                               this unix time (0: nothing yet) */
    unsigned threads;
    /* Prepared statements kept for the store's life (db_prepare). */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[24];
    size_t n_stmts;
    int gc_fd;           /* gc.lock, opened on first use; -1 before */
    int session_fd;      /* this handle's session file, locked; -1 before */
    char *session_path, *session_id;
    plan_strlist held;   /* basenames this session holds */
    plan_strmap held_at; /* the same, for lookups */
    /* Listings of the paths this handle registered (store_listing_keep). */
    struct store_listing *listings;
    size_t n_listings, cap_listings, listed_entries;
    plan_strmap listing_at; /* basename -> its index in listings */
};

/* ---- listings of what this process registered ----
 * A tree registered by this handle is known entry by entry (the import
 * recorded every entry it made): the farm of the profile that follows
 * reads these names rather than the directories just written. */
typedef struct store_listing {
    plan_strlist paths;  /* below the path's root, sorted bytewise */
    char *types;         /* per path: 'd' directory, 'f' file, 'l' symlink */
    plan_buf manifest;   /* .plan/manifest.json as written; empty when not kept */
} store_listing;
/* Keep the names of t (sorted) as the listing of basename, and manifest
 * (taken, when not empty), within a budget of entries for the handle's
 * life (past it, the disk is read). */
void store_listing_keep(plan_store *s, const char *basename, const tree *t,
                        plan_buf *manifest);
/* The listing of the store path at path (absolute), or NULL. */
const store_listing *store_listing_of(const plan_store *s, const char *path);

/* ---- collector roots (roots.c) ---- */
/* flock the gc lock (LOCK_SH, LOCK_EX, optionally | LOCK_NB). */
int gc_lock(plan_store *s, int how);
void gc_unlock(plan_store *s);
/* Record basenames as roots of this handle's session; gc lock held shared. */
int session_hold_locked(plan_store *s, const char *const *basenames, size_t n);
void session_close(plan_store *s);
/* path_present, and if present, held by this session: 1, 0 or <0. */
int hold_if_present(plan_store *s, const char *basename);
/* Finish deletions an interrupted collector decided on (gc.c). */
void gc_resume(plan_store *s);
/* Every session but our own; stale ones removed with their run roots when
 * reap is set. */
int sessions_scan(plan_store *s, bool reap, plan_session **out, size_t *n, unsigned *reaped);
/* Roots recorded in profiles (profile.c): fn is called per basename. */
typedef void (*root_fn)(void *arg, const char *kind, const char *source, const char *basename);
int profile_roots(plan_store *s, root_fn fn, void *arg);

/* ---- database (db.c) ---- */
int db_open(plan_store *s, const char *path);
void db_close(plan_store *s);
int db_begin(plan_store *s);
int db_commit(plan_store *s);
void db_rollback(plan_store *s);
/* Many reads in a row as one read transaction, so the database's locks
 * are taken once rather than once per statement.  Returns whether one was
 * begun (none inside a transaction already, or when BEGIN fails: the
 * reads then simply run on their own); pass that to db_read_end. */
bool db_read_begin(plan_store *s);
void db_read_end(plan_store *s, bool begun);
/* 1 if registered, 0 if not, <0 on error. */
int db_has_path(plan_store *s, const char *basename);
typedef struct db_path_row {
    const char *basename, *digest, *name, *version;
    const char *content_hash;
    uint64_t size;
    const char *realisation; /* recipe hash to record for this path, or NULL */
} db_path_row;
/* Insert a path and its references (basenames, must be registered or in
 * the same transaction). */
int db_insert_path(plan_store *s, const db_path_row *row, const plan_strlist *refs);
int db_insert_refs(plan_store *s, const char *basename, const plan_strlist *refs);
int db_fail(plan_store *s, const char *what);
/* A prepared statement for sql (which must outlive the store: a string
 * literal), reused across calls: parsing SQL is most of a point query.
 * Give it back with db_release.  NULL (message on the context) on error. */
sqlite3_stmt *db_prepare(plan_store *s, const char *sql, const char *what);
void db_release(plan_store *s, sqlite3_stmt *st);
int db_set_realisation(plan_store *s, const char *recipe_hash, const char *basename);

/* ---- symlink rules (archive.c) ----
 * A store path is self-contained: its symlinks point inside it or, by an
 * absolute target, into another store path; chains of links included. */
const char *link_target_problem(const char *store_dir, const char *rel, const char *target);
/* 0, or -1 with *why and *entry (borrowed) naming the first bad link. */
int links_confined(plan_store *s, const char *dir, const tree *t, const char **why,
                   const char **entry);

/* ---- threaded zstd decompression for imports (zread.c) ---- */
struct archive;
typedef struct zread zread;
/* 1 if file starts with the zstd frame magic and is at least
 * ZREAD_MIN_SIZE bytes long (worth a thread of its own). */
#define ZREAD_MIN_SIZE (256 * 1024)
int zread_is_zstd(const char *file);
/* Open file for libarchive's a through a decompressing thread.  On error
 * *out may still be set: free it with zread_free after archive_read_free. */
int zread_open(plan_ctx *ctx, const char *file, struct archive *a, zread **out);
uint64_t zread_consumed(zread *z); /* compressed bytes read so far */
void zread_free(zread *z);
/* Do the 4 bytes at p open a zstd frame? */
bool zread_magic(const uint8_t *p);
/* A zstd decompression context that refuses frames asking for a window
 * over 128 MiB (NULL if none could be made; free with ZSTD_freeDCtx). */
struct ZSTD_DCtx_s;
struct ZSTD_DCtx_s *zread_dctx_new(void);

/* ---- hash cache (hashcache.c) ----
 * Remembers file digests of trees added from outside the store, keyed by
 * the source directory, so re-adding an unchanged tree reads no file. */
void hashcache_apply(plan_store *s, const char *source, tree *t);
void hashcache_save(plan_store *s, const char *source, const tree *t);

/* ---- shared by farm.c and merge.c ---- */
/* Same symlink target, or (following links) regular files with the same
 * size, executable bit and bytes. */
bool same_content(const char *a, const char *b);

/* ---- store.c helpers shared with archive/verify/optimise/merge ---- */
/* Copy size bytes from in to out (copy_file_range, so a reflink where the
 * filesystem can; read/write otherwise); scratch holds TREE_SCRATCH_BYTES. */
int copy_fd_data(int in, int out, uint64_t size, uint8_t *scratch, uint64_t *copied);
/* A work directory in <store>/.tmp, locked for as long as it lives so that
 * the cleanup of another process never removes it. */
typedef struct work_dir {
    char *path;
    int lock_fd;
    /* Directories made in it with their sealed mode (0555) can still be
     * filled: this process may write where a mode says it may not (root,
     * by CAP_DAC_OVERRIDE).  Asked of the kernel when it is created; an
     * import then saves one chmod per directory. */
    bool sealed_dirs_writable;
} work_dir;
int work_dir_create(plan_store *s, work_dir *w);
void work_dir_remove(work_dir *w);

/* Per-digest lock, held while a path is being registered or replaced. */
int digest_lock(plan_store *s, const char *digest, int *fd_out);
void digest_unlock(int fd);
/* The same without waiting: the descriptor, or -1 when busy. */
int digest_trylock(plan_store *s, const char *digest);

/* ---- reference scanning as data arrives (refs.c) ----
 * A scanner looks for a fixed set of 32-character digests; found[i] is set
 * for digests[i].  The scanner points into digests, which must outlive it. */
typedef struct ref_scanner ref_scanner;
ref_scanner *ref_scanner_new(const plan_strlist *digests);
void ref_scanner_free(ref_scanner *sc);
size_t ref_scanner_size(const ref_scanner *sc);
/* One whole piece of text (a name, a link target). */
void ref_scan_text(const ref_scanner *sc, const char *text, size_t len, atomic_uchar *found);
/* One file's bytes, fed in pieces of any size. */
typedef struct ref_stream {
    const ref_scanner *sc;
    atomic_uchar *found;
    char carry[PLAN_DIGEST_CHARS];
    size_t carry_len;
} ref_stream;
void ref_stream_start(ref_stream *st, const ref_scanner *sc, atomic_uchar *found);
void ref_stream_feed(ref_stream *st, const char *buf, size_t len);
/* Add the basenames of the found candidates (but self_digest's) to refs. */
void refs_from_found(const plan_strlist *cand_digests, const plan_strlist *cand_basenames,
                     const atomic_uchar *found, const char *self_digest, plan_strlist *refs);

/* Make a freshly written tree read-only with normalised mtimes, and (with
 * IMMEDIATE durability) flush it to disk. */
int tree_seal(plan_store *s, const char *dir, const tree *t, bool files_sealed);
/* tree_seal in two halves: modes and times, then store_flush (which a
 * batch of trees on one file system needs only once). */
int tree_normalise(plan_ctx *ctx, const char *dir, const tree *t, unsigned born_sealed);
/* born_sealed of tree_normalise: what was created with its final mode
 * already (files: and their mtime too). */
#define SEALED_FILES 1u
#define SEALED_DIRS 2u
/* One syncfs of the file system that holds dir, remembered in
 * flushed_before; *started (if not NULL) gets the second it started in. */
int store_syncfs(plan_store *s, const char *dir, int64_t *started);
/* IMMEDIATE: store_syncfs.  DEFERRED: nothing. */
int store_flush(plan_store *s, const char *dir);
/* Does the store wait for the disk (IMMEDIATE)? */
bool store_flushes(const plan_store *s);
/* Ask the kernel to start writing a finished file back now (it does not
 * wait): the one syncfs before registration then finds most of the data
 * on its way already, instead of starting all of it at once.  Only worth a
 * system call for files of some size, and only when a flush will follow. */
void start_writeback(int fd, uint64_t size);

/* ---- durability (settle.c) ---- */
/* The running kernel's boot id into out (48 bytes); "" when unknown. */
void settle_read_boot_id(char *out);
/* In a registration's transaction: the rows just inserted are unsettled
 * (DEFERRED), or everything registered before the last flush is settled
 * (IMMEDIATE). */
int settle_mark_paths(plan_store *s, const db_path_row *rows, size_t n);
/* Before a DEFERRED registration: unsettled records of this boot older than
 * the kernel's write-back window are flushed and settled. */
void settle_due(plan_store *s);
/* At open: what an earlier boot left unsettled is checked (paths
 * re-hashed, generations inspected); what did not reach the disk whole is
 * removed.  Warnings name it. */
void settle_recover(plan_store *s);
/* A DEFERRED profile generation, recorded before its first byte is
 * written (profile.c); settle_forget_generation drops the record. */
int settle_mark_generation(plan_store *s, const char *profile, unsigned number);
void settle_forget_generation(plan_store *s, const char *profile, unsigned number);
/* Is generation number of profile whole on disk (profile.c)?  When not, it
 * is removed and 'current' moves to the newest whole one. */
void profile_recover_generation(plan_store *s, const char *profile, unsigned number);
/* Move a sealed tree into the store and register it, atomically (see
 * store.c for the protocol). The caller holds the digest lock. */
int register_tree(plan_store *s, const char *tmp_path, const db_path_row *row,
                  const plan_strlist *refs);
/* The same for n trees in one transaction (refs: n lists, or NULL). */
int register_trees(plan_store *s, size_t n, char *const *tmp_paths, const db_path_row *rows,
                   const plan_strlist *refs);
/* A line of an intent file (a registration's or gc's) is used as a path
 * below the store only when it has the shape of a basename: the file
 * could be damaged. */
bool intent_line_ok(const char *line);
char *store_path_of(const plan_store *s, const char *basename);
/* 1 if registered and on disk, 0 if not, <0 on a database error. */
int path_present(plan_store *s, const char *basename);
char *make_basename(const char *digest, const char *name, const char *version);
/* Append the digest and basename of every registered path. */
int registered_candidates(plan_store *s, plan_strlist *digests, plan_strlist *basenames);
/* Scan dir's tree for the given candidate digests; appends the basenames
 * (cand_basenames[i]) of the found ones to refs. */
int find_references(plan_store *s, const char *dir, const plan_strlist *cand_digests,
                    const plan_strlist *cand_basenames, const char *self_digest,
                    plan_strlist *refs);

#endif
