/* Downloading published archives: several at once over kept-alive
 * connections, each capped at its signed size, hashed while it arrives,
 * resumed with a Range request after an interruption, retried with
 * backoff, and moved into the cache only when size and hash match. */
#include "fetch.h"

#include "curl_api.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ATTEMPTS 4
#define POLL_MAX_MS 20

typedef struct job {
    plan_artifact *a;
    char *url, *part, *final;
    FILE *out;            /* NULL when it goes to a->body */
    crypto_generichash_state h;
    uint64_t have;        /* bytes in the partial file */
    bool too_big, write_failed, resumed;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    int64_t retry_at;     /* ms (monotonic) when a backed-off retry starts; 0: none */
} job;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
    job *j = user;
    size_t n = size * nmemb;
    if (j->have + n > j->a->size) {
        j->too_big = true;
        return 0;
    }
    if (!j->out)
        plan_buf_add(&j->a->body, data, n);
    else if (fwrite(data, 1, n, j->out) != n) {
        j->write_failed = true;
        return 0;
    }
    crypto_generichash_update(&j->h, (const uint8_t *)data, n);
    j->have += n;
    return n;
}

/* Open the partial file and hash what it already holds, so a resumed
 * download is hashed as a whole. */
static int job_open(plan_ctx *ctx, job *j)
{
    crypto_generichash_init(&j->h, NULL, 0, 32);
    j->have = 0;
    j->too_big = j->write_failed = j->resumed = false;
    if (j->a->memory) {
        /* What arrived before an interruption is resumed from, as a
         * partial file would be. */
        j->out = NULL;
        if (j->a->body.len >= j->a->size)
            plan_buf_reset(&j->a->body);
        crypto_generichash_update(&j->h, (const uint8_t *)j->a->body.data, j->a->body.len);
        j->have = j->a->body.len;
        j->resumed = j->have > 0;
        return 0;
    }
    FILE *old = fopen(j->part, "rbe");
    if (old) {
        uint8_t buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), old)) > 0 && j->have + n <= j->a->size) {
            crypto_generichash_update(&j->h, buf, n);
            j->have += n;
        }
        fclose(old);
        if (j->have >= j->a->size) {
            /* Complete (or too long) already: start over if it is wrong. */
            unlink(j->part);
            crypto_generichash_init(&j->h, NULL, 0, 32);
            j->have = 0;
        }
    }
    j->out = fopen(j->part, j->have ? "abe" : "wbe");
    if (!j->out)
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot write '%s'", j->part);
    j->resumed = j->have > 0;
    return 0;
}

static void job_setup(job *j)
{
    CURL *e = j->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "plan/" PLAN_VERSION);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    if (j->have)
        curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)j->have);
    j->errbuf[0] = '\0';
}

/* Start over: what arrived cannot be resumed from. */
static void job_discard(job *j)
{
    if (j->a->memory)
        plan_buf_reset(&j->a->body);
    else
        unlink(j->part);
}

/* After a transfer: 1 done, 0 retry, <0 failed for good. */
static int job_finish(plan_ctx *ctx, job *j, CURLcode code)
{
    if (j->out && fclose(j->out) != 0)
        j->write_failed = true;
    j->out = NULL;
    long status = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (j->too_big) {
        job_discard(j);
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "'%s' sent more than the %llu bytes signed for it: refused", j->url,
                         (unsigned long long)j->a->size);
    }
    if (j->write_failed)
        return plan_fail(ctx, PLAN_ERR_IO, "cannot write '%s' (disk full?)", j->part);
    if (code == CURLE_OK && status >= 300 && status < 400)
        return plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s' redirects elsewhere: refused", j->url);
    if (code == CURLE_RANGE_ERROR) {
        job_discard(j); /* the server cannot resume: start over */
        return 0;
    }
    if (code != CURLE_OK) {
        bool transient = code == CURLE_COULDNT_CONNECT || code == CURLE_OPERATION_TIMEDOUT ||
                         code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR ||
                         code == CURLE_GOT_NOTHING || code == CURLE_SEND_ERROR ||
                         (code == CURLE_HTTP_RETURNED_ERROR && status >= 500);
        if (transient)
            return 0;
        return plan_fail(ctx, PLAN_ERR_FAILED, "cannot download '%s': %s", j->url,
                         j->errbuf[0] ? j->errbuf : curl_easy_strerror(code));
    }
    /* A transfer that ended cleanly but short is the server's whole
     * answer (a cut-off one ends in CURLE_PARTIAL_FILE and is resumed):
     * the file there is not the one that was signed. */
    if (j->have != j->a->size) {
        job_discard(j);
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "'%s' is %llu bytes, not the %llu signed for it: the archive was "
                         "changed; refused", j->url, (unsigned long long)j->have,
                         (unsigned long long)j->a->size);
    }
    uint8_t h[32];
    crypto_generichash_final(&j->h, h, sizeof(h));
    char hex[65];
    plan_hex_encode(h, 32, hex);
    if (strcmp(hex, j->a->hex) != 0) {
        job_discard(j);
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "'%s' does not have the BLAKE2b-256 signed for it (got %s): the "
                         "archive was changed; refused", j->url, hex);
    }
    if (j->a->memory)
        return 1;
    if (rename(j->part, j->final) != 0)
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot move '%s' into the cache",
                               j->part);
    return 1;
}

/* Which transfers libcurl has, and the handles of finished ones. */
typedef struct starter {
    job *jobs;
    plan_artifact *arts;
    size_t n;
    CURLM *multi;
    size_t window;  /* transfers handed over at most at a time */
    size_t next;    /* the next job to hand over */
    size_t active;  /* handed over, not finished (retries waiting count) */
    CURL **idle;    /* handles to reuse */
    size_t n_idle;
} starter;

/* A finished transfer's handle, kept for the next one. */
static void handle_release(starter *st, job *j)
{
    st->idle = plan_xrealloc(st->idle, (st->n_idle + 1) * sizeof(CURL *));
    st->idle[st->n_idle++] = j->easy;
    j->easy = NULL;
    st->active--;
}

/* Hand transfers to libcurl until the window is full or none is left. */
static int start_more(plan_ctx *ctx, starter *st)
{
    for (; st->next < st->n && st->active < st->window; st->next++) {
        job *j = &st->jobs[st->next];
        if (st->arts[st->next].path)
            continue; /* in the cache already */
        j->easy = st->n_idle ? st->idle[--st->n_idle] : curl_easy_init();
        int rc = job_open(ctx, j);
        if (rc)
            return rc;
        job_setup(j); /* resets what the handle's last transfer set */
        curl_multi_add_handle(st->multi, j->easy);
        st->active++;
    }
    return 0;
}

static void jobs_free(job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].url);
        free(jobs[i].part);
        free(jobs[i].final);
    }
    free(jobs);
}

int plan_fetch_artifacts(plan_ctx *ctx, const char *cache_dir, plan_artifact *arts, size_t n,
                         unsigned parallel)
{
    return plan_fetch_artifacts_each(ctx, cache_dir, arts, n, parallel, NULL, NULL);
}

int plan_fetch_artifacts_each(plan_ctx *ctx, const char *cache_dir, plan_artifact *arts,
                              size_t n, unsigned parallel, plan_artifact_fn done, void *user)
{
    char *dir = plan_path_join(cache_dir, "archives");
    int e = plan_fs_mkdirs(dir, 0755);
    if (e) {
        int rc = plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot create '%s'", dir);
        free(dir);
        return rc;
    }
    job *jobs = plan_xcalloc(n ? n : 1, sizeof(*jobs));
    size_t pending = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        job *j = &jobs[i];
        j->a = &arts[i];
        j->final = plan_xasprintf("%s/%s.tar.zst", dir, arts[i].hex);
        j->part = plan_xasprintf("%s/.part-%s", dir, arts[i].hex);
        j->url = plan_xstrdup(arts[i].url);
        free(arts[i].path);
        arts[i].path = NULL;
        if (arts[i].memory)
            plan_buf_reset(&arts[i].body);
        struct stat st;
        if (stat(j->final, &st) == 0 && (uint64_t)st.st_size == arts[i].size) {
            arts[i].path = plan_xstrdup(j->final); /* verified when it arrived */
            continue;
        }
        pending++;
    }
    for (size_t i = 0; i < n && !rc && done; i++)
        if (arts[i].path)
            rc = done(user, i);
    if (rc) {
        jobs_free(jobs, n);
        free(dir);
        return rc;
    }
    if (pending && (rc = curl_api_ready(ctx))) {
        jobs_free(jobs, n);
        free(dir);
        return rc;
    }
    if (!pending) {
        jobs_free(jobs, n);
        free(dir);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    long conns = parallel ? (long)parallel : 8;
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    int *tries = plan_xcalloc(n ? n : 1, sizeof(int));
    /* Transfers are handed to libcurl a few at a time (twice as many as
     * there are connections, so none waits for the next request), not all
     * at once: the first bytes arrive sooner, and the handles of finished
     * transfers serve the next ones. */
    starter st = {.jobs = jobs, .arts = arts, .n = n, .multi = multi,
                  .window = 2 * (size_t)conns};
    rc = start_more(ctx, &st);
    uint64_t total = 0, done_bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (!arts[i].path)
            total += arts[i].size;
    plan_emit_phase(ctx, "downloading", total, true);
    int running = 1;
    while (!rc && pending) {
        /* Retries whose back-off is over start again; the others wait
         * without holding up the transfers still running. */
        int64_t now = now_ms(), next_retry = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            job *j = &jobs[i];
            if (!j->retry_at)
                continue;
            if (j->retry_at <= now) {
                j->retry_at = 0;
                if ((rc = job_open(ctx, j)) == 0) {
                    job_setup(j);
                    curl_multi_add_handle(multi, j->easy);
                }
            } else if (!next_retry || j->retry_at < next_retry) {
                next_retry = j->retry_at;
            }
        }
        if (rc)
            break;
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            rc = plan_fail(ctx, PLAN_ERR_FAILED, "libcurl failed while downloading");
            break;
        }
        CURLMsg *msg;
        int left;
        bool started_more = false;
        while (!rc && (msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            job *j = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            CURLcode code = msg->data.result;
            curl_multi_remove_handle(multi, j->easy);
            int r = job_finish(ctx, j, code);
            size_t i = (size_t)(j - jobs);
            if (r == 1) {
                if (!arts[i].memory)
                    arts[i].path = plan_xstrdup(j->final);
                done_bytes += arts[i].size;
                pending--;
                handle_release(&st, j);
                plan_emit_progress(ctx, "downloading", done_bytes, total, true);
                if (done)
                    rc = done(user, i);
                if (!rc)
                    rc = start_more(ctx, &st);
                started_more = true;
            } else if (r == 0 && ++tries[i] < ATTEMPTS) {
                /* Back off, then resume from what arrived. */
                j->retry_at = now_ms() + (200 << (tries[i] - 1));
            } else {
                rc = r < 0 ? r
                           : plan_fail(ctx, PLAN_ERR_FAILED,
                                       "cannot download '%s' after %d attempts: %s", j->url,
                                       ATTEMPTS, j->errbuf[0] ? j->errbuf : "short transfer");
            }
        }
        /* Finished transfers were taken out before waiting, so the ones
         * queued behind them start at the next perform; the wait is short
         * all the same, because a transfer libcurl moves from its queue
         * does not always wake the poll (a 500 ms wait once stalled 200
         * downloads for half a second). */
        int wait = next_retry ? (int)(next_retry - now_ms()) : POLL_MAX_MS;
        if (wait > POLL_MAX_MS)
            wait = POLL_MAX_MS;
        /* Transfers just handed over start at the next perform, at once. */
        if (!rc && pending && wait > 0 && !started_more)
            curl_multi_poll(multi, NULL, 0, wait, NULL);
    }
    plan_emit_done(ctx, "downloading");
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].easy) {
            curl_multi_remove_handle(multi, jobs[i].easy);
            curl_easy_cleanup(jobs[i].easy);
        }
        if (jobs[i].out)
            fclose(jobs[i].out);
    }
    for (size_t i = 0; i < st.n_idle; i++)
        curl_easy_cleanup(st.idle[i]);
    free(st.idle);
    jobs_free(jobs, n);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(tries);
    free(dir);
    return rc;
}

/* ---------- the cache's lock and its pruning ---------- */

static int open_cache_lock(plan_ctx *ctx, const char *cache_dir, int *fd)
{
    char *dir = plan_path_join(cache_dir, "archives");
    char *file = plan_path_join(dir, ".lock");
    int e = plan_fs_mkdirs(dir, 0755);
    int rc = 0;
    *fd = e ? -1 : open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, e ? -e : errno, "cannot open '%s'", file);
    free(file);
    free(dir);
    return rc;
}

int plan_download_cache_lock(plan_ctx *ctx, const char *cache_dir, int *fd)
{
    int rc = open_cache_lock(ctx, cache_dir, fd);
    if (rc)
        return rc;
    while (flock(*fd, LOCK_SH) != 0) {
        if (errno == EINTR)
            continue;
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot lock the download cache in '%s'",
                             cache_dir);
        close(*fd);
        *fd = -1;
        return rc;
    }
    return 0;
}

void plan_download_cache_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* A download: "<64 hex>.tar.zst", or a partial one ".part-<64 hex>". */
static bool is_download(const char *name)
{
    size_t n = strlen(name);
    if (!strncmp(name, ".part-", 6))
        return n == 6 + 64;
    return n == 64 + 8 && !strcmp(name + 64, ".tar.zst");
}

int plan_download_cache_prune(plan_ctx *ctx, const char *cache_dir, bool dry_run,
                              plan_prune_result *out)
{
    memset(out, 0, sizeof(*out));
    char *dir = plan_path_join(cache_dir, "archives");
    struct stat st;
    if (stat(dir, &st) != 0) { /* nothing was ever downloaded */
        free(dir);
        return 0;
    }
    int fd;
    int rc = open_cache_lock(ctx, cache_dir, &fd);
    if (rc) {
        free(dir);
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        out->busy = true;
        close(fd);
        free(dir);
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot read '%s'", dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!is_download(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
            !S_ISREG(st.st_mode))
            continue;
        if (!dry_run && unlinkat(dirfd(d), de->d_name, 0) != 0) {
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot remove '%s/%s'", dir,
                                 de->d_name);
            break;
        }
        out->files++;
        out->bytes += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    close(fd);
    free(dir);
    return rc;
}
