/* Canonical serialization, parallel file hashing, the store digest and its
 * base32 alphabet.  The format is specified in docs/formats/serialization.md;
 * any change here that alters a hash needs a new format version there. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SERIAL_MAGIC "plan-tree-v1"
#define HASH_CHUNK (256 * 1024)

/* ---------- walking ---------- */

static tree_entry *tree_push(tree *t)
{
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->items = plan_xrealloc(t->items, t->cap * sizeof(*t->items));
    }
    tree_entry *e = &t->items[t->len++];
    memset(e, 0, sizeof(*e));
    return e;
}

void tree_release(tree *t)
{
    for (size_t i = 0; i < t->len; i++) {
        free(t->items[i].path);
        free(t->items[i].target);
    }
    free(t->items);
    t->items = NULL;
    t->len = t->cap = 0;
}

static const char *kind_of_mode(mode_t m)
{
    if (S_ISFIFO(m)) return "a fifo";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    return "an unsupported file type";
}

static int walk_dir(plan_ctx *ctx, const char *top, int fd, const char *prefix, tree *t)
{
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot read directory '%s/%s'",
                               top, prefix);
    }
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(dir)) != NULL) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        char *rel = prefix[0] ? plan_xasprintf("%s/%s", prefix, n) : plan_xstrdup(n);
        struct stat st;
        if (fstatat(dirfd(dir), n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot stat '%s/%s'", top, rel);
            free(rel);
            break;
        }
        tree_entry *e;
        if (S_ISDIR(st.st_mode)) {
            e = tree_push(t);
            e->type = TREE_DIR;
            e->path = rel;
            int sub = openat(dirfd(dir), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open directory '%s/%s'",
                                     top, rel);
                break;
            }
            char *rel_copy = plan_xstrdup(rel); /* t->items may move */
            rc = walk_dir(ctx, top, sub, rel_copy, t);
            free(rel_copy);
            if (rc)
                break;
        } else if (S_ISREG(st.st_mode)) {
            e = tree_push(t);
            e->type = TREE_FILE;
            e->path = rel;
            e->exec = (st.st_mode & 0111) != 0;
            e->size = (uint64_t)st.st_size;
            e->ino = st.st_ino;
            e->dev = st.st_dev;
            e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            e->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
        } else if (S_ISLNK(st.st_mode)) {
            size_t cap = (size_t)st.st_size + 2;
            char *target = plan_xmalloc(cap);
            ssize_t len = readlinkat(dirfd(dir), n, target, cap);
            if (len < 0 || (size_t)len >= cap - 1) {
                free(target);
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, len < 0 ? errno : EOVERFLOW,
                                     "cannot read symlink '%s/%s'", top, rel);
                free(rel);
                break;
            }
            target[len] = '\0';
            e = tree_push(t);
            e->type = TREE_SYMLINK;
            e->path = rel;
            e->target = target;
            e->size = (uint64_t)len;
        } else {
            rc = plan_fail(ctx, PLAN_ERR_INVALID,
                           "'%s/%s' is %s; a store path holds only files, directories "
                           "and symlinks: remove it from the tree and try again",
                           top, rel, kind_of_mode(st.st_mode));
            free(rel);
            break;
        }
        errno = 0;
    }
    if (!rc && errno)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot read directory '%s/%s'", top,
                             prefix);
    closedir(dir);
    return rc;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const tree_entry *)a)->path, ((const tree_entry *)b)->path);
}

tree_entry *tree_add(tree *t, const char *path, tree_type type)
{
    tree_entry *e = tree_push(t);
    e->path = plan_xstrdup(path);
    e->type = type;
    return e;
}

void tree_sort(tree *t)
{
    if (t->len > 1)
        qsort(t->items, t->len, sizeof(*t->items), compare_entries);
}

int tree_walk(plan_ctx *ctx, const char *dir, tree *out)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOTDIR)
            return plan_fail(ctx, PLAN_ERR_INVALID, "'%s' is not a directory", dir);
        return plan_fail_errno(ctx, e == ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO, e,
                               "cannot open '%s'", dir);
    }
    int rc = walk_dir(ctx, dir, fd, "", out);
    if (rc) {
        tree_release(out);
        return rc;
    }
    if (out->len > 1)
        qsort(out->items, out->len, sizeof(*out->items), compare_entries);
    return 0;
}

void tree_stats(const tree *t, plan_tree_stats *stats)
{
    memset(stats, 0, sizeof(*stats));
    for (size_t i = 0; i < t->len; i++) {
        const tree_entry *e = &t->items[i];
        if (e->type == TREE_DIR)
            stats->dirs++;
        else if (e->type == TREE_FILE)
            stats->files++;
        else
            stats->symlinks++;
        if (e->type != TREE_DIR)
            stats->bytes += e->size;
    }
}

/* ---------- masking ---------- */

/* Replace every occurrence of mask in buf[0..len) by '0's, in place, left
 * to right without overlaps.  Returns the offset just past the last
 * replacement (0 if none): bytes before it are final and must never be
 * searched again, or the zeros of one replacement could start another. */
static size_t mask_bytes(char *buf, size_t len, const char *mask)
{
    char *p = buf, *end = buf + len;
    size_t last = 0;
    while ((size_t)(end - p) >= PLAN_DIGEST_CHARS) {
        char *hit = memmem(p, (size_t)(end - p), mask, PLAN_DIGEST_CHARS);
        if (!hit)
            break;
        memset(hit, '0', PLAN_DIGEST_CHARS);
        p = hit + PLAN_DIGEST_CHARS;
        last = (size_t)(p - buf);
    }
    return last;
}

char *mask_string(const char *s, const char *mask)
{
    char *copy = plan_xstrdup(s);
    if (mask)
        mask_bytes(copy, strlen(copy), mask);
    return copy;
}

/* ---------- hashing a stream ---------- */

void masked_hasher_init(masked_hasher *h, const char *mask)
{
    h->state = plan_xmalloc(sizeof(crypto_generichash_state));
    crypto_generichash_init(h->state, NULL, 0, PLAN_HASH_BYTES);
    h->mask = mask;
    h->have = 0;
}

/* The same rule as hash_fd: the last DIGEST_CHARS-1 bytes wait for the
 * next piece (an occurrence may straddle), but never bytes a replacement
 * produced. */
void masked_hasher_update(masked_hasher *h, const void *data, size_t len)
{
    if (!h->mask) {
        crypto_generichash_update(h->state, data, len);
        return;
    }
    char *buf = plan_xmalloc(h->have + len);
    memcpy(buf, h->carry, h->have);
    memcpy(buf + h->have, data, len);
    size_t total = h->have + len;
    size_t final = mask_bytes(buf, total, h->mask);
    size_t keep = PLAN_DIGEST_CHARS - 1;
    size_t flush = total > keep ? total - keep : 0;
    if (final > flush)
        flush = final;
    crypto_generichash_update(h->state, (const uint8_t *)buf, flush);
    h->have = total - flush;
    memcpy(h->carry, buf + flush, h->have);
    free(buf);
}

void masked_hasher_final(masked_hasher *h, plan_hash *out)
{
    crypto_generichash_update(h->state, (const uint8_t *)h->carry, h->have);
    crypto_generichash_final(h->state, out->bytes, PLAN_HASH_BYTES);
    free(h->state);
    h->state = NULL;
}

/* ---------- file hashing ---------- */

/* Hash one open file.  With a mask, the last DIGEST_CHARS-1 bytes of each
 * chunk are held back so that an occurrence split across two reads is
 * still found. */
static int hash_fd(int fd, const char *mask, uint8_t *buf, plan_hash *out, uint64_t *total,
                   atomic_uint_fast64_t *progress)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PLAN_HASH_BYTES);
    size_t have = 0;
    const size_t keep = mask ? PLAN_DIGEST_CHARS - 1 : 0;
    *total = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, HASH_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        *total += (uint64_t)n;
        if (progress)
            atomic_fetch_add(progress, (uint64_t)n);
        size_t final = mask ? mask_bytes((char *)buf, have, mask) : 0;
        size_t flush = have > keep ? have - keep : 0;
        if (final > flush)
            flush = final;
        crypto_generichash_update(&st, buf, flush);
        memmove(buf, buf + flush, have - flush);
        have -= flush;
    }
    crypto_generichash_update(&st, buf, have);
    crypto_generichash_final(&st, out->bytes, PLAN_HASH_BYTES);
    return 0;
}

/* ---------- running a function over every file, on several threads ---------- */

typedef struct file_job {
    plan_ctx *ctx;
    tree *t;
    tree_file_fn fn;
    void *arg;
    const char *phase;
    atomic_size_t next;
    atomic_uint_fast64_t bytes_done;
    uint64_t bytes_total;
    plan_first_error err;
} file_job;

static void *file_worker(void *p)
{
    file_job *job = p;
    uint8_t *scratch = plan_xmalloc(TREE_SCRATCH_BYTES);
    uint64_t last_report = 0;
    while (!plan_first_error_failed(&job->err)) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->t->len)
            break;
        tree_entry *e = &job->t->items[i];
        if (e->type != TREE_FILE)
            continue;
        char *msg = NULL;
        int rc = job->fn(job->arg, e, scratch, &msg);
        if (rc) {
            plan_first_error_set(&job->err, rc, msg);
            free(msg);
            break;
        }
        uint64_t done = atomic_fetch_add(&job->bytes_done, e->size) + e->size;
        if (job->phase && done - last_report >= (8u << 20)) {
            last_report = done;
            plan_emit_progress(job->ctx, job->phase, done, job->bytes_total, true);
        }
    }
    free(scratch);
    return NULL;
}

int tree_for_each_file(plan_ctx *ctx, tree *t, unsigned threads, const char *phase,
                       tree_file_fn fn, void *arg)
{
    file_job job;
    memset(&job, 0, sizeof(job));
    job.ctx = ctx;
    job.t = t;
    job.fn = fn;
    job.arg = arg;
    job.phase = phase;
    atomic_init(&job.next, 0);
    atomic_init(&job.bytes_done, 0);
    plan_first_error_init(&job.err);
    size_t files = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (t->items[i].type == TREE_FILE && !t->items[i].hashed) {
            job.bytes_total += t->items[i].size;
            files++;
        }
    }
    if (threads == 0)
        threads = plan_cpu_count();
    if (threads > files)
        threads = files ? (unsigned)files : 1;
    /* A small tree is done before a thread would have started: imports of
     * many small plans spent more on clone() than on hashing. */
    if (job.bytes_total < (1u << 20) && files < 64)
        threads = 1;
    if (threads > 64)
        threads = 64;
    if (phase)
        plan_emit_phase(ctx, phase, job.bytes_total, true);
    plan_run_threads(threads, file_worker, &job);
    if (phase)
        plan_emit_done(ctx, phase);
    return plan_first_error_finish(&job.err, ctx);
}

typedef struct hash_arg {
    const char *root;
    int root_fd;
    const char *mask;
} hash_arg;

static int hash_one_file(void *p, tree_entry *e, uint8_t *scratch, char **msg)
{
    hash_arg *a = p;
    if (e->hashed)
        return 0;
    int fd = openat(a->root_fd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *msg = plan_xasprintf("cannot open '%s/%s': %s", a->root, e->path, strerror(errno));
        return PLAN_ERR_IO;
    }
    uint64_t got = 0;
    int rc = hash_fd(fd, a->mask, scratch, &e->digest, &got, NULL);
    close(fd);
    if (rc) {
        *msg = plan_xasprintf("cannot read '%s/%s': %s", a->root, e->path, strerror(-rc));
        return PLAN_ERR_IO;
    }
    if (got != e->size) {
        *msg = plan_xasprintf("'%s/%s' changed size while it was being read (%llu bytes, "
                              "then %llu): is something still writing to it?",
                              a->root, e->path, (unsigned long long)e->size,
                              (unsigned long long)got);
        return PLAN_ERR_FAILED;
    }
    return 0;
}

int tree_hash_files(plan_ctx *ctx, const char *root, tree *t, const char *mask,
                    unsigned threads)
{
    hash_arg a = {.root = root, .mask = mask};
    a.root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a.root_fd < 0)
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'", root);
    int rc = tree_for_each_file(ctx, t, threads, "hashing", hash_one_file, &a);
    close(a.root_fd);
    return rc;
}

/* ---------- serialization ---------- */

static void put_u64(crypto_generichash_state *st, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(st, b, 8);
}

static void put_bytes(crypto_generichash_state *st, const char *s, const char *mask)
{
    char *m = mask_string(s, mask);
    size_t n = strlen(m);
    put_u64(st, n);
    crypto_generichash_update(st, (const uint8_t *)m, n);
    free(m);
}

typedef struct masked_entry {
    char *path; /* the masked path: the order of the serialization */
    const tree_entry *e;
} masked_entry;

static int compare_masked(const void *a, const void *b)
{
    const masked_entry *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    /* Two names equal once masked (the digest and 32 '0's side by side)
     * keep the order of their real names, so the order is always defined. */
    return c ? c : strcmp(x->e->path, y->e->path);
}

static void hash_entry(crypto_generichash_state *st, const char *path, const tree_entry *e,
                       const char *mask)
{
    uint8_t tag = e->type == TREE_DIR ? 'D' : e->type == TREE_FILE ? 'F' : 'L';
    crypto_generichash_update(st, &tag, 1);
    put_bytes(st, path, NULL);
    if (e->type == TREE_FILE) {
        uint8_t exec = e->exec ? 1 : 0;
        crypto_generichash_update(st, &exec, 1);
        put_u64(st, e->size);
        crypto_generichash_update(st, e->digest.bytes, PLAN_HASH_BYTES);
    } else if (e->type == TREE_SYMLINK) {
        put_bytes(st, e->target, mask);
    }
}

void tree_hash(const tree *t, const char *mask, plan_hash *out)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PLAN_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)SERIAL_MAGIC, sizeof(SERIAL_MAGIC));
    /* Entries are serialised in the order of their masked paths, so that
     * two trees equal modulo the mask hash alike even when the digest is
     * part of a name. */
    masked_entry *order = plan_xmalloc((t->len ? t->len : 1) * sizeof(*order));
    for (size_t i = 0; i < t->len; i++) {
        order[i].path = mask_string(t->items[i].path, mask);
        order[i].e = &t->items[i];
    }
    if (mask && t->len > 1)
        qsort(order, t->len, sizeof(*order), compare_masked);
    for (size_t i = 0; i < t->len; i++) {
        hash_entry(&st, order[i].path, order[i].e, mask);
        free(order[i].path);
    }
    free(order);
    crypto_generichash_final(&st, out->bytes, PLAN_HASH_BYTES);
}

int plan_store_hash_tree(plan_ctx *ctx, const char *dir, const char *mask,
                         unsigned threads, plan_hash *out, plan_tree_stats *stats)
{
    if (sodium_init() < 0)
        return plan_fail(ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    bool valid = !mask || strlen(mask) == PLAN_DIGEST_CHARS;
    for (const char *p = mask; valid && p && *p; p++)
        valid = plan_base32_valid_char(*p);
    if (!valid)
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "mask '%s' is not a digest (%d characters of 0-9 and a-z without "
                         "e, i, o, u)",
                         mask, PLAN_DIGEST_CHARS);
    tree t = {0};
    int rc = tree_walk(ctx, dir, &t);
    if (rc)
        return rc;
    rc = tree_hash_files(ctx, dir, &t, mask, threads);
    if (!rc) {
        tree_hash(&t, mask, out);
        if (stats)
            tree_stats(&t, stats);
    }
    tree_release(&t);
    return rc;
}

/* ---------- text forms ---------- */

void plan_hash_format(const plan_hash *h, char *out)
{
    memcpy(out, "blake2b:", 8);
    plan_hex_encode(h->bytes, PLAN_HASH_BYTES, out + 8);
}

int plan_hash_parse(const char *text, plan_hash *out)
{
    if (strncmp(text, "blake2b:", 8) != 0)
        return -1;
    return plan_hex_decode(text + 8, out->bytes, PLAN_HASH_BYTES);
}

/* Digits and lower-case letters without the vowels e, i, o, u: no words
 * are spelt by accident and nothing is confused with 0 or 1. */
static const char base32_alphabet[] = "0123456789abcdfghjklmnpqrstvwxyz";

void plan_base32_encode(const uint8_t *in, size_t n, char *out)
{
    size_t bits = n * 8, chars = (bits + 4) / 5;
    for (size_t c = 0; c < chars; c++) {
        size_t bit = c * 5;
        unsigned v = 0;
        for (size_t k = 0; k < 5; k++, bit++) {
            v <<= 1;
            if (bit < bits)
                v |= (in[bit / 8] >> (7 - bit % 8)) & 1;
        }
        out[c] = base32_alphabet[v];
    }
    out[chars] = '\0';
}

bool plan_base32_valid_char(char c)
{
    return c && strchr(base32_alphabet, c) != NULL;
}

void plan_store_digest(const char *store_dir, const char *name, const char *version,
                       const plan_hash *content, char *out)
{
    char text[PLAN_HASH_TEXT_LEN + 1];
    plan_hash_format(content, text);
    plan_buf fp;
    plan_buf_init(&fp);
    /* NUL separators: none of the fields can contain a NUL. */
    plan_buf_adds(&fp, "plan-path-v1");
    plan_buf_addc(&fp, '\0');
    plan_buf_adds(&fp, store_dir);
    plan_buf_addc(&fp, '\0');
    plan_buf_printf(&fp, "%s-%s", name, version);
    plan_buf_addc(&fp, '\0');
    plan_buf_adds(&fp, text);
    uint8_t h[20];
    crypto_generichash(h, sizeof(h), (const uint8_t *)fp.data, fp.len, NULL, 0);
    plan_buf_release(&fp);
    plan_base32_encode(h, sizeof(h), out);
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static const char *check_token(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "it is empty";
    if (n > 100)
        return "it is longer than 100 characters";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '+' && c != '-')
            return "only letters, digits and . _ + - are allowed";
    }
    return NULL;
}

/* A basename is <digest>-<name>-<version>, and the version begins at the
 * first '-' followed by a digit: so a name never contains one, and a
 * version always starts with a digit.  Otherwise ("foo", "1-2") and
 * ("foo-1", "2") would be the same store path. */
const char *plan_store_check_name(const char *name)
{
    const char *why = check_token(name);
    if (why)
        return why;
    if (!is_alnum(name[0]))
        return "it must start with a letter or digit";
    for (const char *p = name; *p; p++)
        if (p[0] == '-' && p[1] >= '0' && p[1] <= '9')
            return "a '-' followed by a digit would start the version";
    return NULL;
}

const char *plan_store_check_version(const char *version)
{
    const char *why = check_token(version);
    if (why)
        return why;
    if (!(version[0] >= '0' && version[0] <= '9'))
        return "it must start with a digit";
    return NULL;
}
