/*
 * common.h - the small helpers every module shares: allocation that aborts on
 * out-of-memory, the one growable buffer type, the error/event context, and a
 * few filesystem helpers.
 *
 * Libraries never print and never exit.  They report failures by returning a
 * negative plan_err code after storing a message on the plan_ctx, and they
 * report progress by emitting events through the context's callback.
 */
#ifndef PLAN_COMMON_H
#define PLAN_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PLAN_VERSION "0.1.0"

#if defined(__GNUC__)
#define PLAN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PLAN_PRINTF(f, a)
#endif

/* ---- allocation: these never return NULL; they abort on exhaustion ---- */
void *plan_xmalloc(size_t n);
void *plan_xcalloc(size_t count, size_t size);
void *plan_xrealloc(void *p, size_t n);
char *plan_xstrdup(const char *s);
char *plan_xstrndup(const char *s, size_t n);
char *plan_xasprintf(const char *fmt, ...) PLAN_PRINTF(1, 2);

/* ---- growable buffer ----
 * After plan_buf_init the data pointer is never NULL and is always
 * NUL-terminated, so b.data can be used as a C string at any time.
 * The buffer owns its memory: release it with plan_buf_release, or take it
 * with plan_buf_detach (caller frees the returned pointer). */
typedef struct plan_buf {
    char *data;
    size_t len;
    size_t cap;
} plan_buf;

void plan_buf_init(plan_buf *b);
void plan_buf_release(plan_buf *b);
void plan_buf_reset(plan_buf *b);
void plan_buf_grow(plan_buf *b, size_t extra);
void plan_buf_add(plan_buf *b, const void *p, size_t n);
void plan_buf_adds(plan_buf *b, const char *s);
void plan_buf_addc(plan_buf *b, char c);
void plan_buf_printf(plan_buf *b, const char *fmt, ...) PLAN_PRINTF(2, 3);
void plan_buf_vprintf(plan_buf *b, const char *fmt, va_list ap);
void plan_buf_truncate(plan_buf *b, size_t len);
char *plan_buf_detach(plan_buf *b);

/* ---- string list (owned strings) ---- */
typedef struct plan_strlist {
    char **items;
    size_t len;
    size_t cap;
} plan_strlist;

void plan_strlist_init(plan_strlist *l);
void plan_strlist_release(plan_strlist *l);
void plan_strlist_add(plan_strlist *l, const char *s);   /* copies s */
void plan_strlist_take(plan_strlist *l, char *s);        /* takes ownership */
void plan_strlist_sort(plan_strlist *l);                 /* bytewise */
bool plan_strlist_contains(const plan_strlist *l, const char *s);
/* The same for a list sorted by plan_strlist_sort, in O(log n). */
bool plan_strlist_contains_sorted(const plan_strlist *l, const char *s);
ssize_t plan_strlist_index_sorted(const plan_strlist *l, const char *s); /* -1 if absent */
ssize_t plan_strlist_index(const plan_strlist *l, const char *s); /* -1 if absent */

/* ---- string map: owned keys to numbers, O(1) lookups ----
 * For the lists that grow with the request (hundreds of plans), where a
 * linear plan_strlist_index per item made loops quadratic.  Keys are
 * copied; values are whatever the caller counts (an index, a flag). */
typedef struct plan_strmap_slot {
    char *key;   /* NULL: empty */
    size_t value;
} plan_strmap_slot;
typedef struct plan_strmap {
    plan_strmap_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t len;
} plan_strmap;

void plan_strmap_init(plan_strmap *m);
void plan_strmap_release(plan_strmap *m);
/* key's value, or -1 when absent (a key set to (size_t)-1 reads as absent:
 * a way to forget one). */
ssize_t plan_strmap_get(const plan_strmap *m, const char *key);
/* Set key to value; returns whether key was absent before (never set, or
 * forgotten). */
bool plan_strmap_put(plan_strmap *m, const char *key, size_t value);

/* ---- errors ----
 * Every fallible library call returns 0 on success or one of these.  The
 * human-readable message (lower-case, object in quotes, next step named)
 * is kept on the context. */
typedef enum plan_err {
    PLAN_OK = 0,
    PLAN_ERR_FAILED = -1,    /* generic failure */
    PLAN_ERR_IO = -2,        /* the filesystem said no */
    PLAN_ERR_NOT_FOUND = -3, /* the named object does not exist */
    PLAN_ERR_INVALID = -4,   /* the caller's input is malformed */
    PLAN_ERR_CORRUPT = -5,   /* stored data does not match its hash */
    PLAN_ERR_HOSTILE = -6,   /* untrusted input broke a safety rule */
    PLAN_ERR_DB = -7,        /* sqlite failed */
    PLAN_ERR_BUSY = -8,      /* a lock is held elsewhere */
} plan_err;

/* ---- events ---- */
typedef enum plan_event_kind {
    PLAN_EV_PHASE,    /* a long step begins: phase names it, total is its size */
    PLAN_EV_PROGRESS, /* done of total units of the current phase */
    PLAN_EV_DONE,     /* the current phase ended */
    PLAN_EV_INFO,     /* something the user may want to know (-v) */
    PLAN_EV_WARN,     /* something went wrong but the operation goes on */
    PLAN_EV_LOG,      /* one line of a build's output (streamed on request) */
    PLAN_EV_WAIT,     /* the operation waits for another process, maybe long */
} plan_event_kind;

typedef struct plan_event {
    plan_event_kind kind;
    const char *phase;   /* short name of the step, e.g. "hashing" */
    const char *message; /* INFO, WARN and WAIT */
    uint64_t done;
    uint64_t total;
    bool bytes;          /* done/total are bytes rather than items */
} plan_event;

typedef void (*plan_event_fn)(const plan_event *ev, void *user);

/* The context is the one object a front end hands to the libraries: it
 * carries the event sink and the last error.  It is safe to emit events
 * from several threads; errors are set by the calling thread only. */
typedef struct plan_ctx plan_ctx;

plan_ctx *plan_ctx_new(void); /* free with plan_ctx_free */
void plan_ctx_free(plan_ctx *ctx);
void plan_ctx_set_events(plan_ctx *ctx, plan_event_fn fn, void *user);

/* Store a message and return code, so callers can write
 * `return plan_fail(ctx, PLAN_ERR_IO, "...")`.  A NULL ctx discards the
 * message. */
int plan_fail(plan_ctx *ctx, int code, const char *fmt, ...) PLAN_PRINTF(3, 4);
/* As plan_fail, appending ": strerror(errnum)" to the message. */
int plan_fail_errno(plan_ctx *ctx, int code, int errnum, const char *fmt, ...)
    PLAN_PRINTF(4, 5);
/* Prefix the current message with more context ("while X: <old>"). */
int plan_fail_wrap(plan_ctx *ctx, int code, const char *fmt, ...) PLAN_PRINTF(3, 4);
const char *plan_ctx_error(const plan_ctx *ctx);
int plan_ctx_error_code(const plan_ctx *ctx);
void plan_ctx_clear_error(plan_ctx *ctx);

void plan_emit(plan_ctx *ctx, const plan_event *ev);
void plan_emit_phase(plan_ctx *ctx, const char *phase, uint64_t total, bool bytes);
void plan_emit_progress(plan_ctx *ctx, const char *phase, uint64_t done, uint64_t total,
                        bool bytes);
void plan_emit_done(plan_ctx *ctx, const char *phase);
void plan_info(plan_ctx *ctx, const char *fmt, ...) PLAN_PRINTF(2, 3);
void plan_warn(plan_ctx *ctx, const char *fmt, ...) PLAN_PRINTF(2, 3);
/* Say that the operation now waits for another process (a lock it holds):
 * a wait with no end in sight must not be silent. */
void plan_waiting(plan_ctx *ctx, const char *fmt, ...) PLAN_PRINTF(2, 3);

/* ---- filesystem helpers ----
 * These return 0 or -errno and never touch a context, so that callers can
 * phrase the error for their own object. */
int plan_fs_mkdirs(const char *path, mode_t mode);
/* Remove a tree, first making read-only directories writable (store paths
 * are read-only).  Missing path is success. */
int plan_fs_rmtree(const char *path);
int plan_fs_rmtree_at(int dirfd, const char *name);
/* Write a whole file atomically: temp file in the same directory, fsync,
 * rename. */
int plan_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same, fsync only when flush: without it the file is either the old
 * or the new one if the process dies, but a power cut may lose it. */
int plan_fs_write_replace(const char *path, const void *data, size_t len, mode_t mode,
                          bool flush);
/* Read a whole (small) file into buf; fails with -EFBIG beyond max bytes.
 * plan_fs_read_fd reads what is left of an open descriptor the same way
 * (and leaves it open). */
int plan_fs_read_file(const char *path, size_t max, plan_buf *out);
int plan_fs_read_fd(int fd, size_t max, plan_buf *out);
/* Write all of data to fd, across short writes; 0 or -errno. */
int plan_fs_write_all(int fd, const void *data, size_t len);
int plan_fs_fsync_dir(const char *path);
/* The process's file mode creation mask, read without changing it (from
 * /proc/self/status); (mode_t)-1 when it cannot be known. */
mode_t plan_umask(void);
char *plan_path_join(const char *a, const char *b); /* caller frees */
/* Lexically, does a relative symlink target stay inside the tree that
 * holds the link at rel (a '/'-separated path below the tree's root)?
 * Absolute or empty targets do not. */
bool plan_path_link_inside(const char *rel, const char *target);
/* Absolute, lexically normalised form of path (no symlink resolution);
 * caller frees. */
char *plan_path_absolute(const char *path);

/* ---- small utilities ---- */
void plan_hex_encode(const uint8_t *in, size_t n, char *out); /* out: 2n+1 */
int plan_hex_decode(const char *in, uint8_t *out, size_t n);  /* 0 or -1 */
/* Human-readable size ("12.3 MiB") into out (at least 16 bytes). */
void plan_format_size(uint64_t bytes, char *out, size_t outlen);
/* Parse "10M", "1.5GiB", "4096" into bytes; 0 or -1. */
int plan_parse_size(const char *s, uint64_t *out);
unsigned plan_cpu_count(void);
/* Threads for n independent items: one per core, up to four, and one
 * alone below from items (a thread costs more than a few of them). */
unsigned plan_threads_for(size_t n, size_t from);
/* The same for work that makes many files and directories: one per core,
 * but at least four and at most eight.  Such work waits in the kernel (a
 * new inode's table block read, a buffer another writer holds, the
 * journal), and threads beyond the cores keep the cores busy meanwhile:
 * on two cores the profile farm of 200 plans took 10-12 ms with two
 * threads, 5-9 ms with four. */
unsigned plan_threads_for_files(size_t n, size_t from);
/* Run fn(arg) on `threads` threads at once, the calling thread being one
 * of them (so 1 starts none), and return when all have returned.  Fewer
 * run when a thread cannot be started. */
void plan_run_threads(unsigned threads, void *(*fn)(void *), void *arg);
/* The first failure among threads sharing a job: the others see it
 * (plan_first_error_failed) and stop; plan_first_error_finish puts its
 * message on ctx and returns its code (0 when nothing failed), and
 * releases e.  Init before the threads start, finish after they end. */
typedef struct plan_first_error {
    pthread_mutex_t lock;
    atomic_int failed;
    int code;
    char *msg;
} plan_first_error;
void plan_first_error_init(plan_first_error *e);
void plan_first_error_set(plan_first_error *e, int code, const char *msg); /* copies msg */
bool plan_first_error_failed(plan_first_error *e);
int plan_first_error_code(plan_first_error *e); /* 0 while nothing failed */
int plan_first_error_finish(plan_first_error *e, plan_ctx *ctx);
/* Levenshtein distance, for "did you mean". */
size_t plan_edit_distance(const char *a, const char *b);

#endif
