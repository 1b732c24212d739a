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

#endif
