/* Bounded transfers into memory, several at once (libcurl multi).
 *
 * Metadata is small and hostile until verified: every transfer has a cap
 * (a response that runs past it is cut off and refused), redirects are
 * refused rather than followed (a registry never needs one, and following
 * one to another host is how a mirror would be swapped), and a transfer
 * that stalls is timed out. */
#include "fetch.h"

#include "curl_api.h"
#include <stdlib.h>
#include <string.h>

typedef struct transfer {
    plan_http_get *req;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    bool too_big;
} transfer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t n = size * nmemb;
    if (t->req->body.len + n > t->req->max_bytes) {
        t->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    plan_buf_add(&t->req->body, data, n);
    return n;
}

static void setup(transfer *t)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->req->url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 15L);
    /* Slower than 1 KiB/s for 30 s: stalled. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "plan/" PLAN_VERSION);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->req->max_bytes);
}

static void finish(transfer *t, CURLcode code)
{
    plan_http_get *r = t->req;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    bool is_file = !strncmp(r->url, "file://", 7);
    if (t->too_big || code == CURLE_FILESIZE_EXCEEDED) {
        r->error = plan_xasprintf("'%s' is larger than the %zu bytes it may be: refused",
                                  r->url, r->max_bytes);
        r->refused = true;
    }
    else if (code == CURLE_OK && !is_file && status >= 300 && status < 400) {
        char *to = NULL;
        curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &to);
        r->error = plan_xasprintf("'%s' redirects to '%s': plan does not follow redirects; add "
                                  "the registry by its final URL",
                                  r->url, to ? to : "?");
        r->refused = true;
    } else if (code == CURLE_OK && !is_file && status != 200)
        r->error = status == 404 ? NULL
                                 : plan_xasprintf("'%s' answered HTTP %ld", r->url, status);
    else if (code != CURLE_OK && !(is_file && code == CURLE_FILE_COULDNT_READ_FILE))
        r->error = plan_xasprintf("cannot fetch '%s': %s", r->url,
                                  t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    r->found = code == CURLE_OK && !r->error && (is_file || status == 200);
    if (!r->found && !r->error)
        r->error = NULL; /* 404 or a missing file: found = false, no error */
}

int plan_http_get_many(plan_ctx *ctx, plan_http_get *reqs, size_t n, unsigned parallel)
{
    if (!n)
        return 0;
    int ready = curl_api_ready(ctx);
    if (ready)
        return ready;
    /* Reference-counted and thread-safe since libcurl 7.84: no global
     * flag of ours. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    if (!multi) {
        curl_global_cleanup();
        return plan_fail(ctx, PLAN_ERR_FAILED, "libcurl failed to initialise");
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)(parallel ? parallel : 8));
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)(parallel ? parallel : 8));
    transfer *ts = plan_xcalloc(n, sizeof(*ts));
    for (size_t i = 0; i < n; i++) {
        plan_buf_init(&reqs[i].body);
        reqs[i].found = false;
        reqs[i].status = 0;
        reqs[i].error = NULL;
        reqs[i].refused = false;
        ts[i].req = &reqs[i];
        ts[i].easy = curl_easy_init();
        setup(&ts[i]);
        curl_easy_setopt(ts[i].easy, CURLOPT_PRIVATE, &ts[i]);
        curl_multi_add_handle(multi, ts[i].easy);
    }
    int running = 1;
    while (running) {
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            finish(t, msg->data.result);
        }
        /* Short waits: a transfer libcurl starts from its queue does not
         * always wake the poll (see artifacts.c). */
        if (running)
            curl_multi_poll(multi, NULL, 0, 20, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        curl_multi_remove_handle(multi, ts[i].easy);
        curl_easy_cleanup(ts[i].easy);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(ts);
    return 0;
}

void plan_http_get_release(plan_http_get *r)
{
    plan_buf_release(&r->body);
    free(r->error);
    r->error = NULL;
}
