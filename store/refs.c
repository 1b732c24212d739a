/* Reference scanning and digest rewriting.
 *
 * A store path refers to another when the other's 32-character digest
 * occurs anywhere in it: file bytes, symlink targets or names.  That is
 * how Nix finds run-time dependencies, and it needs no cooperation from
 * the build: a compiler that bakes a library's path into a binary has
 * created a reference. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCAN_CHUNK (256 * 1024)

typedef struct digest_set {
    const char **sorted; /* points into the caller's strings */
    size_t *index;       /* original position of sorted[i] */
    size_t n;
    bool valid[256];
} digest_set;

static int compare_by_index(const void *a, const void *b, void *base)
{
    const char *const *digests = base;
    return strcmp(digests[*(const size_t *)a], digests[*(const size_t *)b]);
}

static void digest_set_init(digest_set *set, const char *const *digests, size_t n)
{
    set->n = n;
    set->index = plan_xmalloc(n * sizeof(size_t));
    set->sorted = plan_xmalloc(n * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        set->index[i] = i;
    qsort_r(set->index, n, sizeof(size_t), compare_by_index, (void *)digests);
    for (size_t i = 0; i < n; i++)
        set->sorted[i] = digests[set->index[i]];
    for (int c = 0; c < 256; c++)
        set->valid[c] = plan_base32_valid_char((char)c);
}

static void digest_set_release(digest_set *set)
{
    free(set->sorted);
    free(set->index);
}

/* Position of the digest equal to p[0..32) in the caller's list, or -1. */
static long digest_set_find(const digest_set *set, const char *p)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(p, set->sorted[mid], PLAN_DIGEST_CHARS);
        if (c == 0)
            return (long)set->index[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

/* Look at every window of 32 base32 characters in buf.  Windows that
 * contain any other character are skipped in one step, so text and
 * binaries are scanned at close to memory speed. */
static void scan_buffer(const digest_set *set, const char *buf, size_t len,
                        atomic_uchar *found)
{
    size_t i = 0;
    while (i + PLAN_DIGEST_CHARS <= len) {
        if (!set->valid[(unsigned char)buf[i + PLAN_DIGEST_CHARS - 1]]) {
            i += PLAN_DIGEST_CHARS;
            continue;
        }
        size_t j = i + PLAN_DIGEST_CHARS - 1;
        while (j > i && set->valid[(unsigned char)buf[j - 1]])
            j--;
        if (j > i) {
            i = j;
            continue;
        }
        long k = digest_set_find(set, buf + i);
        if (k >= 0)
            atomic_store(&found[k], 1);
        i++;
    }
}

/* ---------- scanning as data arrives (import) ---------- */

struct ref_scanner {
    digest_set set;
};

ref_scanner *ref_scanner_new(const plan_strlist *digests)
{
    ref_scanner *sc = plan_xcalloc(1, sizeof(*sc));
    digest_set_init(&sc->set, (const char *const *)digests->items, digests->len);
    return sc;
}

void ref_scanner_free(ref_scanner *sc)
{
    if (!sc)
        return;
    digest_set_release(&sc->set);
    free(sc);
}

size_t ref_scanner_size(const ref_scanner *sc)
{
    return sc->set.n;
}

void ref_scan_text(const ref_scanner *sc, const char *text, size_t len, atomic_uchar *found)
{
    scan_buffer(&sc->set, text, len, found);
}

void ref_stream_start(ref_stream *st, const ref_scanner *sc, atomic_uchar *found)
{
    st->sc = sc;
    st->found = found;
    st->carry_len = 0;
}

void ref_stream_feed(ref_stream *st, const char *buf, size_t len)
{
    /* A digest may straddle two pieces: the last 31 bytes of what came
     * before, joined with the start of this piece, are scanned first. */
    if (st->carry_len) {
        char joint[2 * PLAN_DIGEST_CHARS];
        size_t head = len < PLAN_DIGEST_CHARS - 1 ? len : PLAN_DIGEST_CHARS - 1;
        memcpy(joint, st->carry, st->carry_len);
        memcpy(joint + st->carry_len, buf, head);
        scan_buffer(&st->sc->set, joint, st->carry_len + head, st->found);
    }
    scan_buffer(&st->sc->set, buf, len, st->found);
    if (len >= PLAN_DIGEST_CHARS - 1) {
        memcpy(st->carry, buf + len - (PLAN_DIGEST_CHARS - 1), PLAN_DIGEST_CHARS - 1);
        st->carry_len = PLAN_DIGEST_CHARS - 1;
    } else {
        size_t keep = st->carry_len + len > PLAN_DIGEST_CHARS - 1
                          ? PLAN_DIGEST_CHARS - 1 - len
                          : st->carry_len;
        memmove(st->carry, st->carry + st->carry_len - keep, keep);
        memcpy(st->carry + keep, buf, len);
        st->carry_len = keep + len;
    }
}

typedef struct scan_arg {
    const char *root;
    int root_fd;
    const digest_set *set;
    atomic_uchar *found;
} scan_arg;

static int scan_one_file(void *p, tree_entry *e, uint8_t *scratch, char **msg)
{
    scan_arg *a = p;
    int fd = openat(a->root_fd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *msg = plan_xasprintf("cannot open '%s/%s': %s", a->root, e->path, strerror(errno));
        return PLAN_ERR_IO;
    }
    char *buf = (char *)scratch;
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, SCAN_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *msg = plan_xasprintf("cannot read '%s/%s': %s", a->root, e->path, strerror(errno));
            close(fd);
            return PLAN_ERR_IO;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        scan_buffer(a->set, buf, have, a->found);
        /* Keep the last 31 bytes: a digest may straddle two reads. */
        size_t keep = have < PLAN_DIGEST_CHARS - 1 ? have : PLAN_DIGEST_CHARS - 1;
        memmove(buf, buf + have - keep, keep);
        have = keep;
    }
    close(fd);
    return 0;
}

int plan_store_scan_refs(plan_ctx *ctx, const char *dir, const char *const *digests,
                         size_t n, bool *found)
{
    for (size_t i = 0; i < n; i++) {
        found[i] = false;
        if (strlen(digests[i]) != PLAN_DIGEST_CHARS)
            return plan_fail(ctx, PLAN_ERR_INVALID, "'%s' is not a %d-character digest",
                             digests[i], PLAN_DIGEST_CHARS);
    }
    if (n == 0)
        return 0;
    tree t = {0};
    int rc = tree_walk(ctx, dir, &t);
    if (rc)
        return rc;
    digest_set set;
    digest_set_init(&set, digests, n);
    atomic_uchar *hits = plan_xcalloc(n, sizeof(atomic_uchar));
    for (size_t i = 0; i < t.len; i++) {
        scan_buffer(&set, t.items[i].path, strlen(t.items[i].path), hits);
        if (t.items[i].type == TREE_SYMLINK)
            scan_buffer(&set, t.items[i].target, strlen(t.items[i].target), hits);
    }
    scan_arg a = {.root = dir, .set = &set, .found = hits};
    a.root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a.root_fd < 0) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'", dir);
    } else {
        rc = tree_for_each_file(ctx, &t, 0, "scanning", scan_one_file, &a);
        close(a.root_fd);
    }
    for (size_t i = 0; i < n; i++)
        found[i] = atomic_load(&hits[i]) != 0;
    free(hits);
    digest_set_release(&set);
    tree_release(&t);
    return rc;
}

/* ---------- rewriting ---------- */

/* Replace every occurrence of from by to, left to right.  *last_end gets
 * the offset just past the last replacement (0 if none). */
static uint64_t replace_all(char *buf, size_t len, const char *from, const char *to,
                            size_t *last_end)
{
    uint64_t count = 0;
    char *p = buf, *end = buf + len;
    *last_end = 0;
    while ((size_t)(end - p) >= PLAN_DIGEST_CHARS) {
        char *hit = memmem(p, (size_t)(end - p), from, PLAN_DIGEST_CHARS);
        if (!hit)
            break;
        memcpy(hit, to, PLAN_DIGEST_CHARS);
        count++;
        p = hit + PLAN_DIGEST_CHARS;
        *last_end = (size_t)(p - buf);
    }
    return count;
}

/* Rewrite one file in place.  Same-length replacement keeps every offset
 * valid, which is what lets a rewritten binary still run. */
static int rewrite_file(int dirfd, const tree_entry *e, const char *from, const char *to,
                        uint64_t *count)
{
    struct stat st;
    if (fstatat(dirfd, e->path, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    bool made_writable = false;
    if (!(st.st_mode & S_IWUSR)) {
        if (fchmodat(dirfd, e->path, st.st_mode | S_IWUSR, 0) != 0)
            return -errno;
        made_writable = true;
    }
    int fd = openat(dirfd, e->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd < 0 ? -errno : 0;
    char *buf = plan_xmalloc(SCAN_CHUNK + PLAN_DIGEST_CHARS);
    size_t have = 0;
    off_t base = 0; /* file offset of buf[0] */
    while (!rc) {
        ssize_t n = pread(fd, buf + have, SCAN_CHUNK, base + (off_t)have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        size_t final;
        uint64_t c = replace_all(buf, have, from, to, &final);
        if (c) {
            *count += c;
            if (pwrite(fd, buf, have, base) != (ssize_t)have) {
                rc = errno ? -errno : -EIO;
                break;
            }
        }
        /* Carry the tail that may start an occurrence, but never bytes a
         * replacement already produced. */
        size_t keep = have < PLAN_DIGEST_CHARS - 1 ? have : PLAN_DIGEST_CHARS - 1;
        if (have - keep < final)
            keep = have - final;
        memmove(buf, buf + have - keep, keep);
        base += (off_t)(have - keep);
        have = keep;
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    if (made_writable)
        fchmodat(dirfd, e->path, st.st_mode, 0);
    return rc;
}

static int rewrite_symlink(int dirfd, const tree_entry *e, const char *from, const char *to,
                           uint64_t *count)
{
    char *target = plan_xstrdup(e->target);
    size_t final;
    uint64_t c = replace_all(target, strlen(target), from, to, &final);
    int rc = 0;
    if (c) {
        if (unlinkat(dirfd, e->path, 0) != 0 || symlinkat(target, dirfd, e->path) != 0)
            rc = -errno;
        *count += c;
    }
    free(target);
    return rc;
}

static int rewrite_name(int dirfd, const tree_entry *e, const char *from, const char *to,
                        uint64_t *count)
{
    const char *slash = strrchr(e->path, '/');
    const char *last = slash ? slash + 1 : e->path;
    if (!memmem(last, strlen(last), from, PLAN_DIGEST_CHARS))
        return 0;
    char *renamed = plan_xstrdup(e->path);
    char *last_copy = renamed + (last - e->path);
    size_t final;
    *count += replace_all(last_copy, strlen(last_copy), from, to, &final);
    int rc = renameat(dirfd, e->path, dirfd, renamed) == 0 ? 0 : -errno;
    free(renamed);
    return rc;
}

int plan_store_rewrite_digest(plan_ctx *ctx, const char *dir, const char *from,
                              const char *to, uint64_t *count)
{
    if (strlen(from) != PLAN_DIGEST_CHARS || strlen(to) != PLAN_DIGEST_CHARS)
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "digest rewriting needs two %d-character digests ('%s', '%s')",
                         PLAN_DIGEST_CHARS, from, to);
    uint64_t total = 0;
    tree t = {0};
    int rc = tree_walk(ctx, dir, &t);
    if (rc)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        tree_release(&t);
        return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'", dir);
    }
    /* Contents first, then names deepest-first, so that every path used is
     * still the one the walk saw. */
    for (size_t i = 0; i < t.len && !rc; i++) {
        tree_entry *e = &t.items[i];
        int r = 0;
        if (e->type == TREE_FILE)
            r = rewrite_file(fd, e, from, to, &total);
        else if (e->type == TREE_SYMLINK)
            r = rewrite_symlink(fd, e, from, to, &total);
        if (r)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot rewrite '%s/%s'", dir, e->path);
    }
    for (size_t i = t.len; i-- > 0 && !rc;) {
        int r = rewrite_name(fd, &t.items[i], from, to, &total);
        if (r)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot rename '%s/%s'", dir,
                                 t.items[i].path);
    }
    close(fd);
    tree_release(&t);
    if (count)
        *count = total;
    return rc;
}
