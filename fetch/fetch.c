/* Source downloads through libcurl, verified while they arrive. */
#include "fetch.h"

#include "curl_api.h"
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int plan_hash_algo_parse(const char *name, plan_hash_algo *out)
{
    if (!strcmp(name, "blake2b"))
        *out = PLAN_ALGO_BLAKE2B;
    else if (!strcmp(name, "sha256"))
        *out = PLAN_ALGO_SHA256;
    else
        return -1;
    return 0;
}

const char *plan_hash_algo_name(plan_hash_algo algo)
{
    return algo == PLAN_ALGO_SHA256 ? "sha256" : "blake2b";
}

typedef struct hasher {
    plan_hash_algo algo;
    crypto_generichash_state b2;
    crypto_hash_sha256_state sha;
} hasher;

static void hasher_init(hasher *h, plan_hash_algo algo)
{
    h->algo = algo;
    if (algo == PLAN_ALGO_SHA256)
        crypto_hash_sha256_init(&h->sha);
    else
        crypto_generichash_init(&h->b2, NULL, 0, 32);
}

static void hasher_update(hasher *h, const void *p, size_t n)
{
    if (h->algo == PLAN_ALGO_SHA256)
        crypto_hash_sha256_update(&h->sha, p, n);
    else
        crypto_generichash_update(&h->b2, p, n);
}

static void hasher_final(hasher *h, char *hex)
{
    uint8_t out[32];
    if (h->algo == PLAN_ALGO_SHA256)
        crypto_hash_sha256_final(&h->sha, out);
    else
        crypto_generichash_final(&h->b2, out, 32);
    plan_hex_encode(out, 32, hex);
}

int plan_fetch_hash_file(plan_ctx *ctx, const char *path, plan_hash_algo algo, char *hex)
{
    if (sodium_init() < 0)
        return plan_fail(ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return plan_fail_errno(ctx, errno == ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO, errno,
                               "cannot open '%s'", path);
    hasher h;
    hasher_init(&h, algo);
    char *buf = plan_xmalloc(1 << 18);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 18);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot read '%s'", path);
            break;
        }
        if (n == 0)
            break;
        hasher_update(&h, buf, (size_t)n);
    }
    free(buf);
    close(fd);
    if (!rc)
        hasher_final(&h, hex);
    return rc;
}

typedef struct download {
    plan_ctx *ctx;
    FILE *out;
    hasher h;
    uint64_t bytes;
    bool write_failed;
} download;

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
    download *d = user;
    size_t n = size * nmemb;
    if (fwrite(data, 1, n, d->out) != n) {
        d->write_failed = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    hasher_update(&d->h, data, n);
    d->bytes += n;
    return n;
}

static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t ut,
                       curl_off_t un)
{
    (void)ut;
    (void)un;
    download *d = user;
    if (total > 0)
        plan_emit_progress(d->ctx, "downloading", (uint64_t)now, (uint64_t)total, true);
    return 0;
}

static bool valid_hex(const char *hex)
{
    if (strlen(hex) != 64)
        return false;
    for (const char *p = hex; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int plan_fetch_source(plan_ctx *ctx, const char *cache_dir, const char *url,
                      plan_hash_algo algo, const char *hex, char **path_out)
{
    if (!valid_hex(hex))
        return plan_fail(ctx, PLAN_ERR_INVALID, "'%s' is not a 64-character lower-case hex hash",
                         hex);
    if (strncmp(url, "file://", 7) && strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "'%s': only file://, http:// and https:// sources can be fetched", url);
    if (sodium_init() < 0)
        return plan_fail(ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    char *dir = plan_path_join(cache_dir, "sources");
    char *final = plan_xasprintf("%s/%s-%s", dir, plan_hash_algo_name(algo), hex);
    struct stat st;
    if (stat(final, &st) == 0) {
        /* Cached files were verified when they arrived, and the cache is
         * written only by rename after verification. */
        free(dir);
        *path_out = final;
        return 0;
    }
    int r = plan_fs_mkdirs(dir, 0755);
    if (!r && (r = curl_api_ready(ctx)) != 0) {
        free(dir);
        free(final);
        return r;
    }
    if (r) {
        int rc = plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot create the cache '%s'", dir);
        free(dir);
        free(final);
        return rc;
    }
    char *tmp = plan_xasprintf("%s/.part-%s-%ld", dir, hex, (long)getpid());
    download d = {.ctx = ctx};
    hasher_init(&d.h, algo);
    d.out = fopen(tmp, "wbe");
    int rc = 0;
    if (!d.out) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", tmp);
        goto out;
    }
    CURL *curl = curl_easy_init();
    if (!curl) {
        rc = plan_fail(ctx, PLAN_ERR_FAILED, "libcurl failed to initialise");
        fclose(d.out);
        goto out;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer (under 1 KiB/s for 60 s) is a failure, not a hang. */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "plan/" PLAN_VERSION);
    /* Redirects may not leave http(s) for file:// or anything else. */
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    plan_emit_phase(ctx, "downloading", 0, true);
    CURLcode cc = curl_easy_perform(curl);
    plan_emit_done(ctx, "downloading");
    curl_easy_cleanup(curl);
    if (fclose(d.out) != 0 && !cc)
        d.write_failed = true;
    if (cc != CURLE_OK || d.write_failed) {
        rc = plan_fail(ctx, PLAN_ERR_IO, "cannot fetch '%s': %s", url,
                       d.write_failed ? "writing to the cache failed"
                       : errbuf[0]    ? errbuf
                                      : curl_easy_strerror(cc));
        goto out;
    }
    char got[65];
    hasher_final(&d.h, got);
    if (strcmp(got, hex) != 0) {
        rc = plan_fail(ctx, PLAN_ERR_CORRUPT,
                       "'%s' has %s %s, but the recipe declares %s: the source changed or the "
                       "declared hash is wrong; check the source, then update the recipe",
                       url, plan_hash_algo_name(algo), got, hex);
        goto out;
    }
    if (rename(tmp, final) != 0) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot move '%s' into the cache", tmp);
        goto out;
    }
    *path_out = final;
    final = NULL;
out:
    unlink(tmp);
    free(tmp);
    free(final);
    free(dir);
    return rc;
}

int plan_fetch_source_offline(plan_ctx *ctx, const char *cache_dir, const char *url,
                              plan_hash_algo algo, const char *hex, char **path_out)
{
    if (strncmp(url, "file://", 7) != 0 && valid_hex(hex)) {
        char *cached = plan_xasprintf("%s/sources/%s-%s", cache_dir, plan_hash_algo_name(algo),
                                      hex);
        struct stat st;
        bool there = stat(cached, &st) == 0;
        free(cached);
        if (!there)
            return plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                             "'%s' is not in the source cache and this run may not use the "
                             "network (--frozen): run once without --frozen to fetch it",
                             url);
    }
    return plan_fetch_source(ctx, cache_dir, url, algo, hex, path_out);
}
