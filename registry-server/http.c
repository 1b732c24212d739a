/* plan-registry serve: the read side from DATA/static (ETag, Range,
 * sendfile) and the write API, over libmicrohttpd.
 *
 * Reads touch only files, on every thread of the pool; anything that
 * touches the database or the registry key holds the server's lock, so
 * writes happen one at a time. */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Past the limit an upload is drained (so the client reads the 413) only
 * up to this much more; then the connection is closed. */
#define DRAIN_MAX (16ull << 20)

typedef struct server {
    reg *r;
    const reg_serve_opts *o;
    pthread_mutex_t lock;
    _Atomic int64_t next_refresh;
    int static_fd;
} server;

enum part { PART_PACKAGE, PART_SIGNATURE, PART_RECIPE, PART_ARCHIVE, N_PARTS };
static const char *const PART_NAMES[N_PARTS] = {"package", "signature", "recipe", "archive"};

typedef struct request {
    server *s;
    bool publish;            /* else yank */
    int early;               /* a status decided from the headers, or 0 */
    char *early_msg;
    reg_token token;
    uint64_t received;
    bool oversize;
    struct MHD_PostProcessor *pp;
    reg_upload up;
    int archive_fd;
    crypto_generichash_state hs;
    plan_buf body;           /* a yank's JSON */
    int part_status;         /* the first problem with the parts (400, 413) */
    char *part_msg;
    unsigned seen;           /* bit per part */
} request;

static void request_free(request *q)
{
    if (!q)
        return;
    if (q->pp)
        MHD_destroy_post_processor(q->pp);
    if (q->archive_fd >= 0)
        close(q->archive_fd);
    reg_upload_release(&q->up);
    reg_token_release(&q->token);
    plan_buf_release(&q->body);
    free(q->early_msg);
    free(q->part_msg);
    free(q);
}

/* The state of a GET between its two calls: nothing to keep. */
static const char GET_PENDING = 0;

static void completed(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    if (*state != &GET_PENDING)
        request_free(*state);
    *state = NULL;
}

/* ---------- responses ---------- */

static void log_request(server *s, const char *method, const char *url, int status)
{
    if (s->o->verbose)
        fprintf(stderr, "%s %s %d\n", method, url, status);
}

static enum MHD_Result reply(server *s, struct MHD_Connection *c, const char *method,
                             const char *url, int status, struct MHD_Response *resp)
{
    log_request(s, method, url, status);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_json(server *s, struct MHD_Connection *c, const char *method,
                                  const char *url, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(body);
    size_t len = strlen(text);
    text = plan_xrealloc(text, len + 2);
    text[len++] = '\n';
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"plan-registry\"");
    return reply(s, c, method, url, status, resp);
}

static enum MHD_Result reply_error(server *s, struct MHD_Connection *c, const char *method,
                                   const char *url, int status, const char *msg)
{
    return reply_json(s, c, method, url, status, json_pack("{s:s}", "error", msg));
}

/* ---------- the read side ---------- */

/* Only names the layout can hold: no '..', no hidden or temporary files. */
static bool path_ok(const char *url)
{
    if (url[0] != '/' || !url[1])
        return false;
    for (const char *p = url + 1; *p;) {
        const char *e = strchrnul(p, '/');
        if (e == p || *p == '.' || (*e == '/' && !e[1]))
            return false;
        for (const char *q = p; q < e; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                  (*q >= '0' && *q <= '9') || strchr("._+-", *q)))
                return false;
        p = *e ? e + 1 : e;
    }
    return true;
}

static const char *content_type(const char *url)
{
    size_t n = strlen(url);
#define ENDS(s) (n >= sizeof(s) - 1 && !strcmp(url + n - (sizeof(s) - 1), s))
    if (ENDS(".json"))
        return "application/json";
    if (ENDS(".yaml"))
        return "application/yaml";
    if (ENDS(".tar.zst"))
        return "application/zstd";
#undef ENDS
    return "application/octet-stream";
}

/* An archive's name is its hash: no need to read it. */
static bool archive_etag(const char *url, char *hex)
{
    static const char prefix[] = "/archives/", suffix[] = ".tar.zst";
    const char *h = url + sizeof(prefix) - 1;
    if (strncmp(url, prefix, sizeof(prefix) - 1) != 0 || strlen(h) != 64 + sizeof(suffix) - 1 ||
        strcmp(h + 64, suffix) != 0)
        return false;
    memcpy(hex, h, 64);
    hex[64] = 0;
    return true;
}

static int hash_fd(int fd, char *hex)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PLAN_HASH_BYTES);
    uint8_t buf[65536], h[PLAN_HASH_BYTES];
    off_t off = 0;
    ssize_t n;
    while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
        crypto_generichash_update(&st, buf, (size_t)n);
        off += n;
    }
    crypto_generichash_final(&st, h, sizeof(h));
    plan_hex_encode(h, sizeof(h), hex);
    return n < 0 ? -1 : 0;
}

/* If-None-Match: a list of entity tags, or "*". */
static bool etag_matches(const char *header, const char *etag)
{
    if (!header)
        return false;
    size_t n = strlen(etag);
    for (const char *p = header; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!strncmp(p, "W/", 2))
            p += 2;
        if (*p == '*' || (!strncmp(p, etag, n) && (p[n] == 0 || p[n] == ',' || p[n] == ' ')))
            return true;
        p = strchrnul(p, ',');
    }
    return false;
}

enum range_kind { RANGE_NONE, RANGE_OK, RANGE_BAD };

/* One "bytes=A-B", "bytes=A-" or "bytes=-N"; anything else (several
 * ranges, other units) is served whole, as RFC 9110 allows. */
static enum range_kind parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *len)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return RANGE_NONE;
    const char *p = h + 6;
    char *end;
    uint64_t a = 0, b = 0;
    bool suffix = *p == '-';
    if (!suffix) {
        if (*p < '0' || *p > '9')
            return RANGE_NONE;
        a = strtoull(p, &end, 10);
        if (*end != '-')
            return RANGE_NONE;
        p = end + 1;
    } else {
        p++;
    }
    bool open_end = !*p;
    if (!open_end) {
        if (*p < '0' || *p > '9')
            return RANGE_NONE;
        b = strtoull(p, &end, 10);
        if (*end)
            return RANGE_NONE;
    }
    if (suffix) {
        if (open_end || b == 0)
            return open_end ? RANGE_NONE : RANGE_BAD;
        *from = b >= size ? 0 : size - b;
        *len = size - *from;
        return size ? RANGE_OK : RANGE_BAD;
    }
    if (!open_end && b < a)
        return RANGE_NONE;
    if (a >= size)
        return RANGE_BAD;
    *from = a;
    *len = (open_end || b >= size ? size - 1 : b) - a + 1;
    return RANGE_OK;
}

static void maybe_refresh(server *s)
{
    int64_t now = (int64_t)time(NULL);
    if (now < atomic_load(&s->next_refresh))
        return;
    pthread_mutex_lock(&s->lock);
    int64_t next = 0;
    if (now >= atomic_load(&s->next_refresh)) {
        if (reg_refresh(s->r, now, false, &next) == 0)
            atomic_store(&s->next_refresh, next);
        else /* try again in a minute; the old files stay valid meanwhile */
            atomic_store(&s->next_refresh, now + 60);
    }
    pthread_mutex_unlock(&s->lock);
}

static void static_headers(struct MHD_Response *resp, const char *url, const char *etag)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(url));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    /* Metadata changes under the same name; everything else never does. */
    bool meta = !strncmp(url, "/index/", 7) || !strcmp(url, "/timestamp.json") ||
                !strcmp(url, "/snapshot.json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            meta ? "no-cache" : "public, max-age=31536000, immutable");
}

static enum MHD_Result send_file(server *s, struct MHD_Connection *c, const char *method,
                                 const char *url, int fd, uint64_t size, const char *etag)
{
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    if (if_range && strcmp(if_range, etag) != 0)
        range = NULL; /* the client's partial copy is of another version */
    uint64_t from = 0, len = size;
    enum range_kind k = parse_range(range, size, &from, &len);
    char cr[96];
    if (k == RANGE_BAD) {
        close(fd);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        static_headers(resp, url, etag);
        return reply(s, c, method, url, 416, resp);
    }
    if (k == RANGE_NONE)
        from = 0, len = size;
    struct MHD_Response *resp;
    if (len) {
        resp = MHD_create_response_from_fd_at_offset64(len, fd, from); /* takes fd */
    } else {
        close(fd);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    static_headers(resp, url, etag);
    if (k == RANGE_OK) {
        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from,
                 from + len - 1, size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    return reply(s, c, method, url, k == RANGE_OK ? 206 : 200, resp);
}

static enum MHD_Result serve_file(server *s, struct MHD_Connection *c, const char *method,
                                  const char *url)
{
    if (!path_ok(url))
        return reply_error(s, c, method, url, strcmp(url, "/") ? 400 : 404,
                           "no such file: the read side holds timestamp.json, snapshot.json, "
                           "index/NAME.json, archives/HASH.tar.zst and "
                           "recipes/NAME/VERSION.yaml");
    maybe_refresh(s);
    int fd = openat(s->static_fd, url + 1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        return reply_error(s, c, method, url, 404, "no such file in this registry");
    char hex[65], etag[70];
    if (!archive_etag(url, hex) && hash_fd(fd, hex) != 0) {
        close(fd);
        return reply_error(s, c, method, url, 500, "cannot read the file");
    }
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    if (etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        close(fd);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        static_headers(resp, url, etag);
        return reply(s, c, method, url, 304, resp);
    }
    return send_file(s, c, method, url, fd, (uint64_t)st.st_size, etag);
}

/* ---------- uploads ---------- */

static void part_fail(request *q, int status, char *msg)
{
    if (!q->part_status) {
        q->part_status = status;
        q->part_msg = msg;
    } else {
        free(msg);
    }
}

static int archive_chunk(server *s, request *q, const char *data, size_t size)
{
    if (q->archive_fd < 0) {
        q->up.archive_tmp = plan_xasprintf("%s/upload-XXXXXX", s->r->tmp_dir);
        q->archive_fd = mkstemp(q->up.archive_tmp);
        if (q->archive_fd < 0) {
            free(q->up.archive_tmp);
            q->up.archive_tmp = NULL;
            return -1;
        }
        crypto_generichash_init(&q->hs, NULL, 0, PLAN_HASH_BYTES);
    }
    crypto_generichash_update(&q->hs, (const uint8_t *)data, size);
    q->up.archive_size += size;
    for (size_t done = 0; done < size;) {
        ssize_t n = write(q->archive_fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *ctype, const char *enc,
                               const char *data, uint64_t off, size_t size)
{
    (void)kind, (void)filename, (void)ctype, (void)enc;
    request *q = cls;
    if (q->part_status)
        return MHD_YES;
    int i = 0;
    while (i < N_PARTS && strcmp(key, PART_NAMES[i]) != 0)
        i++;
    if (i == N_PARTS) {
        part_fail(q, 400, plan_xasprintf("unknown part '%s': a publish has the parts package, "
                                         "signature, archive and recipe", key));
        return MHD_YES;
    }
    plan_buf *text[] = {&q->up.package, &q->up.signature, &q->up.recipe};
    uint64_t have = i == PART_ARCHIVE ? q->up.archive_size : text[i]->len;
    if (off != have) {
        part_fail(q, 400, plan_xasprintf("the part '%s' appears twice", key));
        return MHD_YES;
    }
    q->seen |= 1u << i;
    if (i == PART_ARCHIVE) {
        /* Straight to a temporary file, hashed on the way. */
        if (size && archive_chunk(q->s, q, data, size) != 0)
            part_fail(q, 500, plan_xasprintf("cannot store the upload in '%s': %s",
                                             q->s->r->tmp_dir, strerror(errno)));
        return MHD_YES;
    }
    size_t max = i == PART_RECIPE ? REG_RECIPE_MAX : REG_PART_MAX;
    if (text[i]->len + size > max)
        part_fail(q, 413, plan_xasprintf("the part '%s' is over its limit of %zu bytes", key,
                                         max));
    else
        plan_buf_add(text[i], data, size);
    return MHD_YES;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The token, before any of the body is read. */
static void check_token(server *s, struct MHD_Connection *c, request *q)
{
    const char *auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
        q->early = 401;
        q->early_msg = plan_xstrdup("no token: send 'Authorization: Bearer TOKEN' with a token "
                                    "from 'plan-registry token create'");
        return;
    }
    pthread_mutex_lock(&s->lock);
    int rc = reg_token_find(s->r, auth + 7, &q->token);
    if (rc < 0) {
        q->early = 500;
        q->early_msg = plan_xstrdup(plan_ctx_error(s->r->ctx));
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == 1) {
        q->early = 401;
        q->early_msg = plan_xstrdup("this registry does not know the token (revoked, mistyped, "
                                    "or made for another registry): ask its operator for one");
    }
}

static void check_length(server *s, struct MHD_Connection *c, request *q)
{
    const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t max = q->publish ? s->o->max_upload : REG_PART_MAX;
    if (!q->early && cl && strtoull(cl, NULL, 10) > max) {
        q->early = 413;
        q->early_msg = plan_xasprintf("the upload is %s bytes, over this registry's limit of "
                                      "%" PRIu64 " bytes: ask its operator to raise "
                                      "--max-upload", cl, max);
    }
}

/* A request refused before the registry looked at it still goes to the
 * audit log: failed attempts are what an operator looks for. */
static enum MHD_Result refuse(server *s, struct MHD_Connection *c, const char *url, request *q,
                              int status, const char *msg)
{
    pthread_mutex_lock(&s->lock);
    reg_audit_append(s->r, json_pack("{s:I, s:s, s:o, s:i, s:s}", "time",
                                     (json_int_t)time(NULL), "action",
                                     q->publish ? "publish" : "yank", "token",
                                     q->token.id ? json_integer(q->token.id) : json_null(),
                                     "status", status, "error", msg));
    pthread_mutex_unlock(&s->lock);
    return reply_error(s, c, "POST", url, status, msg);
}

static enum MHD_Result post_start(server *s, struct MHD_Connection *c, const char *url,
                                  void **state)
{
    request *q = plan_xcalloc(1, sizeof(*q));
    q->s = s;
    q->archive_fd = -1;
    reg_upload_init(&q->up);
    plan_buf_init(&q->body);
    *state = q;
    q->publish = !strcmp(url, "/api/v1/publish");
    if (!q->publish && strcmp(url, "/api/v1/yank") != 0) {
        q->early = 404;
        q->early_msg = plan_xstrdup("no such API: POST /api/v1/publish or /api/v1/yank");
    }
    if (!q->early)
        check_token(s, c, q);
    check_length(s, c, q);
    const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!q->early && q->publish) {
        if (ctype && !strncasecmp(ctype, "multipart/form-data", 19))
            q->pp = MHD_create_post_processor(c, 65536, on_part, q);
        if (!q->pp) {
            q->early = 400;
            q->early_msg = plan_xstrdup("a publish is multipart/form-data with the parts "
                                        "package, signature, archive and recipe");
        }
    }
    /* A client waiting for "100 Continue" hears the refusal before it sends
     * the body; any other is read to the end first, so that it sees the
     * answer rather than a reset connection. */
    const char *expect = header(c, MHD_HTTP_HEADER_EXPECT);
    if (q->early && expect && !strcasecmp(expect, "100-continue"))
        return refuse(s, c, url, q, q->early, q->early_msg);
    return MHD_YES;
}

static enum MHD_Result post_data(server *s, request *q, const char *data, size_t size)
{
    uint64_t max = q->publish ? s->o->max_upload : REG_PART_MAX;
    q->received += size;
    if (q->early || q->oversize)
        return q->received > max + DRAIN_MAX ? MHD_NO : MHD_YES;
    if (q->received > max) {
        q->oversize = true;
        return MHD_YES;
    }
    if (!q->publish) {
        plan_buf_add(&q->body, data, size);
        return MHD_YES;
    }
    return MHD_post_process(q->pp, data, size);
}

static int finish_parts(request *q)
{
    MHD_destroy_post_processor(q->pp);
    q->pp = NULL;
    if (q->archive_fd < 0 && (q->seen & (1u << PART_ARCHIVE)))
        archive_chunk(q->s, q, "", 0); /* an empty archive still has a hash */
    if (q->archive_fd >= 0) {
        uint8_t h[PLAN_HASH_BYTES];
        crypto_generichash_final(&q->hs, h, sizeof(h));
        plan_hash ph;
        memcpy(ph.bytes, h, sizeof(h));
        plan_hash_format(&ph, q->up.archive_hash);
        if (fsync(q->archive_fd) != 0)
            part_fail(q, 500, plan_xasprintf("cannot store the upload: %s", strerror(errno)));
        close(q->archive_fd);
        q->archive_fd = -1;
    }
    /* The recipe is optional (a plan made by 'plan merge' or 'plan store
     * add' has none); the package object says whether one comes. */
    q->up.has_recipe = (q->seen & (1u << PART_RECIPE)) != 0;
    for (int i = 0; i < N_PARTS && !q->part_status; i++)
        if (!(q->seen & (1u << i)) && i != PART_RECIPE)
            part_fail(q, 400, plan_xasprintf("the part '%s' is missing: a publish has the parts "
                                             "package, signature, archive and, optionally, "
                                             "recipe",
                                             PART_NAMES[i]));
    return q->part_status;
}

static enum MHD_Result post_finish(server *s, struct MHD_Connection *c, const char *url,
                                   request *q)
{
    if (q->early)
        return refuse(s, c, url, q, q->early, q->early_msg);
    if (q->oversize) {
        char *msg = plan_xasprintf("the upload is over this registry's limit of %" PRIu64
                                   " bytes: ask its operator to raise --max-upload",
                                   q->publish ? s->o->max_upload : (uint64_t)REG_PART_MAX);
        enum MHD_Result ret = refuse(s, c, url, q, 413, msg);
        free(msg);
        return ret;
    }
    if (q->publish && finish_parts(q))
        return refuse(s, c, url, q, q->part_status, q->part_msg);
    json_t *result = NULL;
    int64_t retry = 0, now = (int64_t)time(NULL);
    pthread_mutex_lock(&s->lock);
    int status = q->publish ? reg_publish(s->r, &q->token, &q->up, now, &result, &retry)
                            : reg_yank(s->r, &q->token, q->body.data, q->body.len, now, &result);
    char *msg = status >= 300 ? plan_xstrdup(plan_ctx_error(s->r->ctx)) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (status < 300) /* everything was re-signed: the next request recomputes when */
        atomic_store(&s->next_refresh, now);
    if (!msg)
        return reply_json(s, c, "POST", url, status, result);
    struct MHD_Response *resp;
    json_t *body = json_pack("{s:s}", "error", msg);
    free(msg);
    if (status != 429)
        return reply_json(s, c, "POST", url, status, body);
    char *text = json_dumps(body, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(body);
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    char ra[32];
    snprintf(ra, sizeof(ra), "%lld", (long long)retry);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return reply(s, c, "POST", url, 429, resp);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)version;
    server *s = cls;
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
        /* Answering on the first call, before MHD has read the whole
         * request, would make it close the connection: no keep-alive. */
        if (!*state) {
            *state = (void *)&GET_PENDING;
            return MHD_YES;
        }
        return serve_file(s, c, method, url);
    }
    if (strcmp(method, "POST") != 0) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL,
                                                                    MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
        return reply(s, c, method, url, 405, resp);
    }
    if (!*state)
        return post_start(s, c, url, state);
    if (*size) {
        enum MHD_Result ret = post_data(s, *state, data, *size);
        *size = 0;
        return ret;
    }
    return post_finish(s, c, url, *state);
}

/* ---------- the daemon ---------- */

static int parse_listen(plan_ctx *ctx, const char *text, struct sockaddr_storage *addr,
                        bool *v6)
{
    const char *colon = strrchr(text, ':');
    if (!colon || !colon[1])
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "--listen '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:8080)", text);
    char *host = plan_xstrndup(text, (size_t)(colon - text));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int e = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res);
    free(host);
    if (e != 0)
        return plan_fail(ctx, PLAN_ERR_INVALID, "--listen '%s': %s", text, gai_strerror(e));
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static void print_listening(struct MHD_Daemon *d, const char *listen, bool v6)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    const char *colon = strrchr(listen, ':');
    printf("listening on %.*s:%u\n", (int)(colon - listen), listen,
           info ? (unsigned)info->port : 0u);
    (void)v6;
    fflush(stdout);
}

static int wait_for_signal(server *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        struct timespec tick = {.tv_sec = 30};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM)
            return sig;
        /* Keep the timestamp fresh even when nobody asks for it. */
        maybe_refresh(s);
    }
}

int reg_serve(reg *r, const reg_serve_opts *o)
{
    struct sockaddr_storage addr;
    bool v6 = false;
    if (parse_listen(r->ctx, o->listen, &addr, &v6))
        return PLAN_ERR_INVALID;
    server s = {.r = r, .o = o};
    pthread_mutex_init(&s.lock, NULL);
    s.static_fd = open(r->static_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s.static_fd < 0)
        return plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", r->static_dir);
    int64_t next = 0;
    int rc = reg_refresh(r, (int64_t)time(NULL), false, &next);
    atomic_store(&s.next_refresh, next);
    /* Signals go to sigtimedwait on this thread, never to a server thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = NULL;
    if (!rc)
        d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | (v6 ? MHD_USE_IPv6 : 0), 0, NULL,
                             NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                             MHD_OPTION_THREAD_POOL_SIZE, o->threads,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!rc && !d)
        rc = plan_fail(r->ctx, PLAN_ERR_IO,
                       "cannot listen on '%s' (in use, or not an address of this host): "
                       "choose another --listen", o->listen);
    if (!rc) {
        print_listening(d, o->listen, v6);
        wait_for_signal(&s);
        MHD_stop_daemon(d);
    }
    close(s.static_fd);
    pthread_mutex_destroy(&s.lock);
    return rc;
}
