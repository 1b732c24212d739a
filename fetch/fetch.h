/*
 * fetch.h - transfers: downloading sources through libcurl into a cache
 * addressed by their declared hash, verified while they arrive.
 * (The registry client and signatures join this module with the registry.)
 */
#ifndef PLAN_FETCH_H
#define PLAN_FETCH_H

#include "../common/common.h"

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

#endif
