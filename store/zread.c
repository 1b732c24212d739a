/* Decompressing an export on a thread of its own.
 *
 * libarchive's zstd filter decompresses on the thread that also parses the
 * tar, writes the files and hashes them, so an import used one core where
 * 'zstd -d | tar -x' uses two.  Here a producer thread decompresses into a
 * small ring of buffers and libarchive reads them through its callback
 * interface.  The ring is bounded, so a decompression bomb produces only as
 * fast as the extractor (which enforces the declared sizes) consumes. */
#include "store_int.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define SLOTS 4
#define SLOT_BYTES (1u << 20)

struct zread {
    int fd;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *buf[SLOTS];
    size_t len[SLOTS];
    bool full[SLOTS];
    size_t head;         /* next slot the consumer reads */
    size_t tail;         /* next slot the producer fills */
    bool held;           /* the consumer holds slot head - 1 */
    bool eof, stop;
    char *error;         /* set by the producer */
    _Atomic uint64_t consumed; /* compressed bytes read from the file */
};

static void *produce(void *arg)
{
    zread *z = arg;
    ZSTD_DStream *ds = zread_dctx_new();
    size_t in_cap = ZSTD_DStreamInSize();
    uint8_t *in = plan_xmalloc(in_cap);
    ZSTD_inBuffer zin = {in, 0, 0};
    char *error = NULL;
    bool done = false, frame_open = false;
    while (!done) {
        pthread_mutex_lock(&z->mu);
        while (z->full[z->tail] && !z->stop)
            pthread_cond_wait(&z->cv, &z->mu);
        bool stop = z->stop;
        size_t slot = z->tail;
        pthread_mutex_unlock(&z->mu);
        if (stop)
            break;
        ZSTD_outBuffer out = {z->buf[slot], SLOT_BYTES, 0};
        while (out.pos < out.size && !done) {
            if (zin.pos == zin.size) {
                ssize_t r = read(z->fd, in, in_cap);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0) {
                    error = plan_xasprintf("read error: %s", strerror(errno));
                    done = true;
                    break;
                }
                if (r == 0) {
                    if (frame_open)
                        error = plan_xstrdup("truncated zstd data");
                    done = true;
                    break;
                }
                atomic_fetch_add(&z->consumed, (uint64_t)r);
                zin.src = in;
                zin.size = (size_t)r;
                zin.pos = 0;
            }
            size_t ret = ZSTD_decompressStream(ds, &out, &zin);
            if (ZSTD_isError(ret)) {
                error = plan_xasprintf("zstd: %s", ZSTD_getErrorName(ret));
                done = true;
                break;
            }
            frame_open = ret != 0;
        }
        pthread_mutex_lock(&z->mu);
        if (out.pos) {
            z->len[slot] = out.pos;
            z->full[slot] = true;
            z->tail = (slot + 1) % SLOTS;
        }
        if (done) {
            z->eof = true;
            z->error = error;
        }
        pthread_cond_broadcast(&z->cv);
        pthread_mutex_unlock(&z->mu);
    }
    free(in);
    ZSTD_freeDStream(ds);
    return NULL;
}

static la_ssize_t consume(struct archive *a, void *client, const void **out)
{
    zread *z = client;
    pthread_mutex_lock(&z->mu);
    if (z->held) {
        /* libarchive is done with the slot it had. */
        size_t prev = (z->head + SLOTS - 1) % SLOTS;
        z->full[prev] = false;
        z->held = false;
        pthread_cond_broadcast(&z->cv);
    }
    while (!z->full[z->head] && !z->eof)
        pthread_cond_wait(&z->cv, &z->mu);
    la_ssize_t n;
    if (z->full[z->head]) {
        *out = z->buf[z->head];
        n = (la_ssize_t)z->len[z->head];
        z->head = (z->head + 1) % SLOTS;
        z->held = true;
    } else if (z->error) {
        archive_set_error(a, EILSEQ, "%s", z->error);
        n = -1;
    } else {
        n = 0;
    }
    pthread_mutex_unlock(&z->mu);
    return n;
}

bool zread_magic(const uint8_t *p)
{
    return p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd;
}

ZSTD_DCtx *zread_dctx_new(void)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    /* A frame that asks for a huge window is refused, not obeyed. */
    if (d)
        ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
    return d;
}

int zread_is_zstd(const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* A small archive decompresses faster than a thread starts and hands
     * over its buffers: only large ones get a thread. */
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < ZREAD_MIN_SIZE) {
        close(fd);
        return 0;
    }
    uint8_t magic[4];
    bool yes = read(fd, magic, 4) == 4 && zread_magic(magic);
    close(fd);
    return yes;
}

int zread_open(plan_ctx *ctx, const char *file, struct archive *a, zread **out)
{
    zread *z = plan_xcalloc(1, sizeof(*z));
    z->fd = open(file, O_RDONLY | O_CLOEXEC);
    if (z->fd < 0) {
        int e = errno;
        free(z);
        return plan_fail_errno(ctx, e == ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO, e,
                               "cannot read '%s'", file);
    }
    posix_fadvise(z->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv, NULL);
    for (size_t i = 0; i < SLOTS; i++)
        z->buf[i] = plan_xmalloc(SLOT_BYTES);
    if (pthread_create(&z->thread, NULL, produce, z) != 0) {
        zread_free(z);
        return plan_fail(ctx, PLAN_ERR_FAILED, "cannot start a decompression thread");
    }
    z->started = true;
    *out = z;
    if (archive_read_open(a, z, NULL, consume, NULL) != ARCHIVE_OK)
        return plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s' is not a plan export: %s", file,
                         archive_error_string(a));
    return 0;
}

uint64_t zread_consumed(zread *z)
{
    return z ? atomic_load(&z->consumed) : 0;
}

void zread_free(zread *z)
{
    if (!z)
        return;
    if (z->started) {
        pthread_mutex_lock(&z->mu);
        z->stop = true;
        pthread_cond_broadcast(&z->cv);
        pthread_mutex_unlock(&z->mu);
        pthread_join(z->thread, NULL);
    }
    for (size_t i = 0; i < SLOTS; i++)
        free(z->buf[i]);
    free(z->error);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv);
    close(z->fd);
    free(z);
}
