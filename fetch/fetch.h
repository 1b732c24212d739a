/*
 * fetch.h - transfers: downloading sources through libcurl into a cache
 * addressed by their declared hash, verified while they arrive.
 * (The registry client and signatures join this module with the registry.)
 */
#ifndef PLAN_FETCH_H
#define PLAN_FETCH_H

#include "../common/common.h"
#include "../resolver/resolver.h"
#include "../store/store.h"

#include <jansson.h>

typedef enum plan_hash_algo {
    PLAN_ALGO_BLAKE2B, /* BLAKE2b-256 */
    PLAN_ALGO_SHA256,
} plan_hash_algo;

/* Parse an algorithm name ("blake2b", "sha256"); -1 if unknown. */
int plan_hash_algo_parse(const char *name, plan_hash_algo *out);
const char *plan_hash_algo_name(plan_hash_algo algo);

/* Make sure the file at url is in the cache, with the given hash (64 hex
 * characters), and return its path there (caller frees).  url may be
 * file://, http:// or https://.  A cached copy is used without any
 * transfer; a download goes to a temporary file, is hashed as it arrives,
 * and is renamed into the cache only if the hash matches. */
int plan_fetch_source(plan_ctx *ctx, const char *cache_dir, const char *url,
                      plan_hash_algo algo, const char *hex, char **path_out);
/* The same, but never over the network: a source that is neither cached
 * nor a file:// URL is PLAN_ERR_NOT_FOUND with a message saying so. */
int plan_fetch_source_offline(plan_ctx *ctx, const char *cache_dir, const char *url,
                              plan_hash_algo algo, const char *hex, char **path_out);

/* Hash a local file with algo into hex (65 bytes). */
int plan_fetch_hash_file(plan_ctx *ctx, const char *path, plan_hash_algo algo, char *hex);

/* ---- keys and signatures (docs/formats/signatures.md) ---- */
#define PLAN_KEY_ID_CHARS 16   /* hex of the first 8 bytes of BLAKE2b(pk) */

typedef struct plan_pubkey {
    char *name;
    uint8_t pk[32];
    char id[PLAN_KEY_ID_CHARS + 1];
} plan_pubkey;

typedef struct plan_seckey {
    char *name;
    uint8_t sk[64];
    uint8_t pk[32];
    char id[PLAN_KEY_ID_CHARS + 1];
} plan_seckey;

/* Make a key pair: <dir>/<name>.secret (mode 0600, refused if it exists)
 * and <dir>/<name>.pub.  out receives the public half (release it). */
int plan_key_generate(plan_ctx *ctx, const char *dir, const char *name, plan_pubkey *out);
/* Read <dir>/<name>.secret; refused when others may read it.  Wipe with
 * plan_seckey_wipe. */
int plan_key_load_secret(plan_ctx *ctx, const char *dir, const char *name, plan_seckey *out);
void plan_seckey_wipe(plan_seckey *k);
/* "name:base64" <-> key. */
int plan_pubkey_parse(plan_ctx *ctx, const char *text, plan_pubkey *out);
char *plan_pubkey_format(const plan_pubkey *k); /* caller frees */
void plan_pubkey_release(plan_pubkey *k);

/* Sign msg for purpose (e.g. "package", "timestamp"): base64 of the
 * Ed25519 signature of "plan-signature-v1\0<purpose>\0<msg>" (caller
 * frees). */
char *plan_sign(const plan_seckey *k, const char *purpose, const void *msg, size_t len);
/* PLAN_ERR_HOSTILE, naming what and the key, unless sig verifies. */
int plan_verify(plan_ctx *ctx, const plan_pubkey *k, const char *purpose, const void *msg,
                size_t len, const char *sig_b64, const char *what);

/* A set of trusted public keys, kept in a text file of NAME:BASE64 lines. */
typedef struct plan_keyring {
    plan_pubkey *keys;
    size_t n, cap;
} plan_keyring;

/* A missing file is an empty keyring.  Release with plan_keyring_release. */
int plan_keyring_load(plan_ctx *ctx, const char *file, plan_keyring *out);
int plan_keyring_save(plan_ctx *ctx, const plan_keyring *r, const char *file);
void plan_keyring_release(plan_keyring *r);
/* Add a copy of k; the same key again is a no-op; another key under a
 * trusted name is an error. */
int plan_keyring_add(plan_ctx *ctx, plan_keyring *r, const plan_pubkey *k);
int plan_keyring_remove(plan_ctx *ctx, plan_keyring *r, const char *name_or_id);
const plan_pubkey *plan_keyring_find(const plan_keyring *r, const char *id);
/* The machine's secret for what the registry cache remembers about
 * publisher signatures (docs/formats/signatures.md#remembered-checks): 32
 * random bytes in file (hex, mode 0600, owned by this user).  Made on
 * first use, and made anew when the file is unreadable, malformed or open
 * to others (what it vouched for is then simply checked again). */
#define PLAN_CACHE_KEY_BYTES 32
int plan_cache_key_load(plan_ctx *ctx, const char *file, uint8_t key[PLAN_CACHE_KEY_BYTES]);

/* ---- signed JSON documents (docs/formats/registry.md) ---- */
/* The canonical text (sorted keys, compact, ASCII); NULL if j holds a
 * real number.  Caller frees. */
char *plan_canonical_json(json_t *j);
/* {"signed": signed_obj, "signatures": [by k]} with purpose = its "type";
 * takes signed_obj; NULL if it has no type or holds a real.  Caller frees. */
char *plan_signed_wrap(const plan_seckey *k, json_t *signed_obj);
/* Parse and verify a signed document of the given type with key; *out is
 * a new reference to "signed".  PLAN_ERR_HOSTILE with a message naming
 * what otherwise. */
int plan_signed_open(plan_ctx *ctx, const char *text, size_t len, const plan_pubkey *key,
                     const char *type, const char *what, json_t **out);
/* ---- bounded transfers into memory (http.c) ---- */
typedef struct plan_http_get {
    const char *url;     /* http://, https:// or file:// */
    size_t max_bytes;    /* a longer answer is refused */
    /* results */
    plan_buf body;
    bool found;          /* got it (HTTP 200, or the file exists) */
    long status;         /* HTTP status, 0 for file:// */
    char *error;         /* why it failed (not set for a plain 404) */
    bool refused;        /* the answer broke a rule (too long, a redirect) */
} plan_http_get;

/* Run the transfers, up to parallel at once (0: 8) over kept-alive
 * connections.  Each request's result is in its fields; the return value
 * is non-zero only when the transfers could not run at all.  Release each
 * with plan_http_get_release. */
int plan_http_get_many(plan_ctx *ctx, plan_http_get *reqs, size_t n, unsigned parallel);
void plan_http_get_release(plan_http_get *r);
/* ---- registries (docs/formats/registry.md) ---- */
typedef struct plan_registry {
    char *name;
    char *url;          /* no trailing slash */
    plan_pubkey key;    /* the pinned registry key */
} plan_registry;

typedef struct plan_registries {
    plan_registry *items; /* in priority order: the first wins a name */
    size_t n, cap;
} plan_registries;

/* The registries file (JSON, plan-registries-v1); missing: none. */
int plan_registries_load(plan_ctx *ctx, const char *file, plan_registries *out);
int plan_registries_save(plan_ctx *ctx, const plan_registries *r, const char *file);
void plan_registries_release(plan_registries *r);
/* key is "NAME:BASE64"; a name already there is an error. */
int plan_registries_add(plan_ctx *ctx, plan_registries *r, const char *name, const char *url,
                        const char *key);
int plan_registries_remove(plan_ctx *ctx, plan_registries *r, const char *name);

/* The client's cache of verified metadata and the highest versions seen
 * (sqlite).  With flush, every update is on disk when it returns;
 * without, the way the store's deferred durability works: an update is
 * atomic, and reaches the disk with the next checkpoint (a power cut may
 * take back the last ones, so the cache is as it was before them).
 * Close with plan_regdb_close. */
typedef struct plan_regdb plan_regdb;
int plan_regdb_open(plan_ctx *ctx, const char *path, bool flush, plan_regdb **out);
void plan_regdb_close(plan_regdb *d);

typedef struct plan_update_report {
    bool changed;              /* a new snapshot was taken */
    unsigned indexes_fetched;
    int64_t timestamp_version, snapshot_version;
    /* The registry rotated its key (rotations.json) and the pinned key
     * vouched for the new one: key is the one to pin now (the caller
     * saves it and releases it). */
    bool rotated;
    plan_pubkey key;
} plan_update_report;

/* timestamp -> snapshot -> changed indexes, each verified with the pinned
 * key (or the key a chain of rotations signed by it leads to: report), capped at its declared size, checked against the hash that signed
 * it, never older than what was seen before and never expired.  All or
 * nothing: the cache changes only when everything checked out. */
int plan_registry_update(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                         plan_update_report *report);
/* When the cache of reg was last updated (unix time; its timestamp
 * fetched and verified, changed or not); 0 when never, or with another
 * pinned key. */
int64_t plan_registry_checked(plan_regdb *d, const plan_registry *reg);
/* Many reads of the cache in a row: between begin and end they see one
 * state of it and take its locks once (no writes in between). */
void plan_regdb_read_begin(plan_regdb *d);
void plan_regdb_read_end(plan_regdb *d);
/* Remembered publisher signature checks, one row per cached index: tag
 * authenticates the index text the checks were made on (keyed BLAKE2b,
 * see regsource.c), passed lists "VERSION KEYID" lines of the entries whose
 * signature verified.  get: PLAN_ERR_NOT_FOUND without a row; put: all
 * rows in one transaction. */
#define PLAN_CHECKS_TAG_BYTES 32
typedef struct plan_checks_row {
    const char *registry, *name;
    const uint8_t *tag; /* PLAN_CHECKS_TAG_BYTES */
    const char *passed;
} plan_checks_row;
int plan_regdb_checks_get(plan_regdb *d, const char *registry, const char *name,
                          uint8_t tag[PLAN_CHECKS_TAG_BYTES], plan_buf *passed);
int plan_regdb_checks_put(plan_regdb *d, size_t n, const plan_checks_row *rows);
/* The cached index of name ("signed" part, verified again); caller
 * json_decref's.  PLAN_ERR_NOT_FOUND when the registry has no such name. */
int plan_registry_index(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                        const char *name, json_t **out);
/* The halves of plan_registry_index: the cached text (from the database;
 * PLAN_ERR_NOT_FOUND without one); the "indexes" of the registry's cached
 * snapshot, its signature verified (once per handle; NULL when there is
 * none that verifies; borrowed, valid until the next update or close);
 * and the verification of a text, which touches nothing shared and may
 * run on any thread: a text the snapshot declares by its hash needs no
 * signature check of its own, any other is checked by its signature. */
int plan_registry_index_text(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                             const char *name, plan_buf *text);
json_t *plan_registry_snapshot_indexes(plan_regdb *d, const plan_registry *reg);
int plan_registry_index_open(plan_ctx *ctx, const plan_registry *reg, const char *name,
                             const char *text, size_t len, json_t *snapshot_indexes,
                             json_t **out);
/* Load libcurl now rather than on first use (it takes milliseconds), so a
 * caller can have it done on another thread meanwhile.  Safe from any
 * thread; a failure is reported by the first transfer. */
void plan_fetch_preload(void);
/* Every package name in the cached snapshot, sorted. */
int plan_registry_names(plan_ctx *ctx, plan_regdb *d, const plan_registry *reg,
                        plan_strlist *out);
/* ---- published archives (artifacts.c) ---- */
typedef struct plan_artifact {
    const char *url;   /* where it is */
    const char *hex;   /* its BLAKE2b-256, 64 hex (signed) */
    uint64_t size;     /* its size (signed): never more is accepted */
    bool memory;       /* keep it in memory (body), not in the cache, unless
                          the cache has it already: for small archives used
                          at once */
    char *path;        /* result: <cache>/archives/<hex>.tar.zst; caller frees */
    plan_buf body;     /* result, with memory and no path: the verified bytes
                          (init it; the caller releases it) */
} plan_artifact;

/* Download what the cache lacks, up to parallel at once (0: 8), each
 * capped, hashed while it arrives, resumed and retried with backoff on
 * transient failures.  On success every path is set. */
int plan_fetch_artifacts(plan_ctx *ctx, const char *cache_dir, plan_artifact *arts, size_t n,
                         unsigned parallel);
/* The same, calling done(user, i) as soon as arts[i] is there (its path
 * set, or with memory its body filled; those already in the cache
 * first), on the calling thread, so that the caller can start on it while
 * the rest arrive.  A non-zero return (with its
 * error on ctx) stops the downloads and is returned. */
typedef int (*plan_artifact_fn)(void *user, size_t i);
int plan_fetch_artifacts_each(plan_ctx *ctx, const char *cache_dir, plan_artifact *arts,
                              size_t n, unsigned parallel, plan_artifact_fn done, void *user);
/* The download cache, <cache>/archives, is shared by every plan that
 * downloads into it and emptied by plan gc.  A user of what it downloaded
 * holds the cache's lock shared from the download until the import is done
 * (plan_download_cache_lock; release with plan_download_cache_unlock);
 * the pruner takes it exclusively, without waiting. */
int plan_download_cache_lock(plan_ctx *ctx, const char *cache_dir, int *fd);
void plan_download_cache_unlock(int fd);
typedef struct plan_prune_result {
    size_t files;   /* downloads (and partial downloads) removed, or that would be */
    uint64_t bytes; /* their size */
    bool busy;      /* a download or import holds the cache: nothing was removed */
} plan_prune_result;
/* Remove every download and partial download from the cache (with
 * dry_run, only count them).  A cache in use is left alone (busy). */
int plan_download_cache_prune(plan_ctx *ctx, const char *cache_dir, bool dry_run,
                              plan_prune_result *out);
/* ---- registries as a package source (regsource.c) ---- */
typedef struct plan_regsource plan_regsource;
/* regs, db and trusted must outlive the source.  Free with
 * plan_regsource_free. */
int plan_regsource_open(plan_ctx *ctx, const plan_registries *regs, plan_regdb *db,
                        const plan_keyring *trusted, plan_regsource **out);
void plan_regsource_free(plan_regsource *s);
/* A solver provider: a name comes from the first registry (in priority
 * order) whose cache has it; yanked versions are never offered. */
plan_resolver_provider plan_regsource_provider(plan_regsource *s);
bool plan_regsource_has(plan_regsource *s, const char *name);
/* Load the indexes of names ahead of the solver, verifying them and the
 * publisher signature of each one's newest version on several threads:
 * what the solver then asks for is already verified.  Only an
 * optimisation: anything it cannot do is left for the solver's own reads,
 * which report it. */
void plan_regsource_prefetch(plan_regsource *s, const plan_strlist *names);
/* Use key (plan_cache_key_load) to read and write the publisher signature
 * checks the registry cache remembers; without it every signature is
 * verified whenever it is needed. */
void plan_regsource_remember(plan_regsource *s, const uint8_t key[PLAN_CACHE_KEY_BYTES]);
/* After an update of reg brought new indexes: verify the publisher
 * signature of the newest version of each cached index the cache has no
 * remembered check for, on several threads, and remember those that
 * verify, so the commands that follow need not.  Signatures that do not
 * verify (an untrusted key, say) are simply not remembered: they are
 * reported when a command needs them. */
int plan_regsource_vouch(plan_regsource *s, const plan_registry *reg);
/* The index entry of name@version (borrowed) and its registry. */
int plan_regsource_find(plan_regsource *s, const char *name, const char *version,
                        const plan_registry **reg, json_t **entry);
/* Make the n packages present: each publisher signature must verify with
 * a trusted key; missing archives are downloaded together, imported (in
 * reference order) and must hold the indexed store path; everything ends
 * held by store's session.  With offline, nothing is downloaded: a
 * missing package is an error.  basenames[i] receive the store paths
 * (caller frees). */
int plan_regsource_realise(plan_regsource *s, plan_store *store, const char *cache_dir,
                           const char *const *names, const char *const *versions, size_t n,
                           bool offline, char **basenames);
/* The published archive of name@version, which must hold path (a
 * basename): publisher signature checked, downloaded (or cached) and
 * verified; *archive is its file (caller frees). */
int plan_regsource_archive(plan_regsource *s, const char *cache_dir, const char *name,
                           const char *version, const char *path, char **archive);
/* The store directory name@version was built for (borrowed). */
int plan_regsource_store_dir(plan_regsource *s, const char *name, const char *version,
                             const char **dir);
/* The recipe name@version was published with: publisher signature checked,
 * downloaded (capped at its signed size), its hash checked against the
 * signed one, written to <dir>/<name>-<version>.yaml; *file is that path
 * (caller frees).  For building a package whose archive was built for
 * another store directory. */
int plan_regsource_recipe(plan_regsource *s, const char *name, const char *version,
                          const char *dir, char **file);
/* Let name@version be chosen although it is yanked (a lock or profile has
 * it already). */
void plan_regsource_allow(plan_regsource *s, const char *name, const char *version);
/* ---- the write side, as a client (upload.c) ---- */
typedef struct plan_registry_answer {
    long status;      /* HTTP status */
    char *message;    /* the server's "error", or NULL */
    char *body;       /* the whole answer */
} plan_registry_answer;
void plan_registry_answer_release(plan_registry_answer *a);
/* POST a publish (multipart: package, signature, recipe, archive) with a
 * bearer token; recipe may be NULL (the package object then signs
 * "recipe": null).  The return value says whether the request was made; the
 * answer says what the registry decided. */
int plan_registry_publish(plan_ctx *ctx, const plan_registry *reg, const char *token,
                          const char *package, const char *signature, const char *archive,
                          const char *recipe, plan_registry_answer *out);
int plan_registry_yank(plan_ctx *ctx, const plan_registry *reg, const char *token,
                       const char *name, const char *version, plan_registry_answer *out);
#endif
