/* The hash cache: file digests of source trees, reused when a file's
 * identity and change times are unchanged (the way git's index avoids
 * re-reading files).  A file matches its record only if device, inode,
 * size, mtime and ctime (nanoseconds) are all equal; ctime cannot be set
 * by a user, so an edited file never matches.  Files changed in the last
 * two seconds are not cached, because a second write within the same
 * timestamp tick would go unseen (git's "racy" entries).
 *
 * A record per source directory, one blob:
 *   repeated { u32 path length, path, u64 dev, u64 ino, u64 size,
 *              i64 mtime_ns, i64 ctime_ns, u8 exec, 32-byte digest }
 * all little-endian.  A malformed blob is ignored, never trusted. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RACY_NS (2LL * 1000000000LL)
#define RECORD_FIXED (8 * 5 + 1 + PLAN_HASH_BYTES)

static void put64(plan_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    plan_buf_add(b, x, 8);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static bool same_file(const tree_entry *e, const uint8_t *rec)
{
    return get64(rec) == (uint64_t)e->dev && get64(rec + 8) == (uint64_t)e->ino &&
           get64(rec + 16) == e->size && (int64_t)get64(rec + 24) == e->mtime_ns &&
           (int64_t)get64(rec + 32) == e->ctime_ns && rec[40] == (e->exec ? 1 : 0);
}

void hashcache_apply(plan_store *s, const char *source, tree *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT entries FROM hash_cache WHERE source = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        size_t off = 0, i = 0;
        /* Both lists are sorted by path: walk them together. */
        while (p && off + 4 <= len && i < t->len) {
            uint32_t plen = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
                            (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
            if (plen > len - off - 4 || RECORD_FIXED > len - off - 4 - plen)
                break; /* malformed: stop trusting it */
            const char *path = (const char *)p + off + 4;
            const uint8_t *rec = p + off + 4 + plen;
            int cmp = 0;
            while (i < t->len) {
                size_t elen = strlen(t->items[i].path);
                size_t n = elen < plen ? elen : plen;
                cmp = memcmp(t->items[i].path, path, n);
                if (cmp == 0)
                    cmp = elen < plen ? -1 : elen > plen ? 1 : 0;
                if (cmp >= 0)
                    break;
                i++;
            }
            if (i < t->len && cmp == 0) {
                tree_entry *e = &t->items[i];
                if (e->type == TREE_FILE && same_file(e, rec)) {
                    memcpy(e->digest.bytes, rec + 41, PLAN_HASH_BYTES);
                    e->hashed = true;
                }
            }
            off += 4 + plen + RECORD_FIXED;
        }
    }
    sqlite3_finalize(st);
}

void hashcache_save(plan_store *s, const char *source, const tree *t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t limit = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - RACY_NS;
    plan_buf b;
    plan_buf_init(&b);
    bool changed = false;
    for (size_t i = 0; i < t->len; i++) {
        const tree_entry *e = &t->items[i];
        if (e->type != TREE_FILE || e->mtime_ns > limit || e->ctime_ns > limit)
            continue;
        changed |= !e->hashed; /* a record the cache did not have */
        uint32_t plen = (uint32_t)strlen(e->path);
        uint8_t l[4] = {(uint8_t)plen, (uint8_t)(plen >> 8), (uint8_t)(plen >> 16),
                        (uint8_t)(plen >> 24)};
        plan_buf_add(&b, l, 4);
        plan_buf_add(&b, e->path, plen);
        put64(&b, (uint64_t)e->dev);
        put64(&b, (uint64_t)e->ino);
        put64(&b, e->size);
        put64(&b, (uint64_t)e->mtime_ns);
        put64(&b, (uint64_t)e->ctime_ns);
        plan_buf_addc(&b, e->exec ? 1 : 0);
        plan_buf_add(&b, e->digest.bytes, PLAN_HASH_BYTES);
    }
    /* Nothing new to remember: write nothing. */
    if (changed) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db,
                               "INSERT OR REPLACE INTO hash_cache (source, entries, updated)"
                               " VALUES (?1, ?2, ?3)",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 2, b.data, (int)b.len, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)now.tv_sec);
            /* The cache is an optimisation: failing to write it is not an
             * error of the add. */
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }
    plan_buf_release(&b);
}
