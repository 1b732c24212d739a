/* Export and import of store paths as deterministic tar.zst archives, and
 * repair from such an archive.  Format: docs/formats/export.md.
 *
 * Export writes, in this order: plan-export.json (the metadata), then for
 * each store path in bytewise order its root directory and every entry in
 * the canonical order.  Owners are 0, names empty, mtimes 1, modes 0444,
 * 0555 or 0777 (symlinks), so the same paths always give the same bytes.
 *
 * Import trusts nothing in the archive.  Each entry is checked before it is
 * written; entries are created with openat/mkdirat relative to directories
 * opened with O_NOFOLLOW, so no symlink is ever followed; sizes are capped
 * by what the metadata declares; and every path is re-hashed and its
 * digest recomputed before anything is registered. */
#include "store_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define EXPORT_FORMAT "plan-export-v1"
#define META_NAME "plan-export.json"
#define META_MAX (16u << 20)
#define MAX_PATHS 100000
/* Entries of one store path: bounds the inodes a hostile archive can make
 * before its hash is checked, together with the declared count. */
#define MAX_ENTRIES 2000000
#define IO_CHUNK (256 * 1024)

/* ---------- export ---------- */

static int arch_fail(plan_ctx *ctx, struct archive *a, const char *what, const char *file)
{
    return plan_fail(ctx, PLAN_ERR_IO, "%s '%s': %s", what, file,
                     archive_error_string(a) ? archive_error_string(a) : "unknown error");
}

static void entry_defaults(struct archive_entry *e, const char *path)
{
    archive_entry_clear(e);
    archive_entry_set_pathname(e, path);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, 1, 0);
}

static json_t *export_metadata(plan_store *s, const plan_strlist *basenames, const tree *trees)
{
    json_t *paths = json_array();
    for (size_t i = 0; i < basenames->len; i++) {
        plan_path_info *info;
        if (plan_store_path_info(s, basenames->items[i], &info)) {
            json_decref(paths);
            return NULL;
        }
        json_t *refs = json_array();
        for (size_t r = 0; r < info->references.len; r++)
            json_array_append_new(refs, json_string(info->references.items[r]));
        json_array_append_new(
            paths, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "basename",
                             info->basename, "name", info->name, "version", info->version,
                             "digest", info->digest, "content_hash", info->content_hash, "size",
                             (json_int_t)info->size, "entries", (json_int_t)(trees[i].len + 1),
                             "references", refs));
        plan_path_info_free(info);
    }
    return json_pack("{s:s, s:s, s:o}", "format", EXPORT_FORMAT, "store_dir", s->store_dir,
                     "paths", paths);
}

static int write_file_data(plan_ctx *ctx, struct archive *a, int fd, const char *path,
                           uint64_t size, char *buf)
{
    uint64_t done = 0;
    for (;;) {
        ssize_t n = read(fd, buf, IO_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot read '%s'", path);
        }
        if (n == 0)
            break;
        done += (uint64_t)n;
        if (done > size)
            break;
        if (archive_write_data(a, buf, (size_t)n) != n)
            return plan_fail(ctx, PLAN_ERR_IO, "cannot write '%s' to the archive: %s", path,
                             archive_error_string(a));
    }
    if (done != size)
        return plan_fail(ctx, PLAN_ERR_CORRUPT,
                         "'%s' changed size while it was exported: run 'plan store verify "
                         "--check-contents'",
                         path);
    return 0;
}

static int export_one(plan_store *s, struct archive *a, struct archive_entry *ae,
                      const char *basename, const tree *tp, char *buf)
{
    plan_ctx *ctx = s->ctx;
    char *root = store_path_of(s, basename);
    const tree t = *tp;
    int rc = 0;
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && rootfd < 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'", root);
    if (!rc) {
        entry_defaults(ae, basename);
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_perm(ae, 0555);
        if (archive_write_header(a, ae) != ARCHIVE_OK)
            rc = plan_fail(ctx, PLAN_ERR_IO, "cannot write the archive: %s",
                           archive_error_string(a));
    }
    for (size_t i = 0; i < t.len && !rc; i++) {
        const tree_entry *e = &t.items[i];
        char *name = plan_xasprintf("%s/%s", basename, e->path);
        entry_defaults(ae, name);
        if (e->type == TREE_DIR) {
            archive_entry_set_filetype(ae, AE_IFDIR);
            archive_entry_set_perm(ae, 0555);
        } else if (e->type == TREE_SYMLINK) {
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_perm(ae, 0777);
            archive_entry_set_symlink(ae, e->target);
        } else {
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, e->exec ? 0555 : 0444);
            archive_entry_set_size(ae, (la_int64_t)e->size);
        }
        if (archive_write_header(a, ae) != ARCHIVE_OK) {
            rc = plan_fail(ctx, PLAN_ERR_IO, "cannot write '%s' to the archive: %s", name,
                           archive_error_string(a));
        } else if (e->type == TREE_FILE) {
            int fd = openat(rootfd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s/%s'", root,
                                     e->path);
            } else {
                rc = write_file_data(ctx, a, fd, name, e->size, buf);
                close(fd);
            }
        }
        free(name);
    }
    if (rootfd >= 0)
        close(rootfd);
    free(root);
    return rc;
}

int plan_store_export(plan_store *s, const char *const *paths, size_t n, bool closure,
                      const char *file)
{
    plan_ctx *ctx = s->ctx;
    plan_strlist chosen, all;
    plan_strlist_init(&chosen);
    plan_strlist_init(&all);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *b;
        if ((rc = plan_store_resolve(s, paths[i], &b)))
            break;
        if (!plan_strlist_contains(&chosen, b))
            plan_strlist_take(&chosen, b);
        else
            free(b);
    }
    if (!rc && closure)
        rc = plan_store_closure(s, &chosen, &all);
    if (rc) {
        plan_strlist_release(&chosen);
        plan_strlist_release(&all);
        return rc;
    }
    plan_strlist *set = closure ? &all : &chosen;
    plan_strlist_sort(set);

    /* Walk every path first: the metadata, written first, counts entries. */
    tree *trees = plan_xcalloc(set->len ? set->len : 1, sizeof(tree));
    for (size_t i = 0; i < set->len && !rc; i++) {
        char *root = store_path_of(s, set->items[i]);
        rc = tree_walk(ctx, root, &trees[i]);
        free(root);
    }
    json_t *meta = rc ? NULL : export_metadata(s, set, trees);
    if (!meta) {
        for (size_t i = 0; i < set->len; i++)
            tree_release(&trees[i]);
        free(trees);
        plan_strlist_release(&chosen);
        plan_strlist_release(&all);
        return plan_ctx_error_code(ctx);
    }
    char *meta_text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);

    bool to_stdout = !strcmp(file, "-");
    char *tmp = to_stdout ? NULL : plan_xasprintf("%s.tmp.%ld", file, (long)getpid());
    struct archive *a = archive_write_new();
    struct archive_entry *ae = archive_entry_new();
    char *buf = plan_xmalloc(IO_CHUNK);
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_zstd(a);
    archive_write_set_filter_option(a, "zstd", "compression-level", "3");
    /* zstd's multi-threaded mode writes the same bytes for any number of
     * workers (but not the same as its single-threaded mode), so it is
     * always on, even on one core: exports stay identical everywhere. */
    char threads[16];
    snprintf(threads, sizeof(threads), "%u", plan_cpu_count() < 8 ? plan_cpu_count() : 8);
    if (archive_write_set_filter_option(a, "zstd", "threads", threads) != ARCHIVE_OK)
        plan_info(ctx, "zstd threads unavailable: compressing on one thread");
    /* Whole tar blocks per write: a larger unit only saves syscalls. */
    archive_write_set_bytes_per_block(a, 64 * 1024);
    archive_write_set_bytes_in_last_block(a, 1);
    if ((to_stdout ? archive_write_open_fd(a, 1) : archive_write_open_filename(a, tmp)) !=
        ARCHIVE_OK) {
        rc = arch_fail(ctx, a, "cannot create", file);
    } else {
        entry_defaults(ae, META_NAME);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0444);
        archive_entry_set_size(ae, (la_int64_t)strlen(meta_text));
        if (archive_write_header(a, ae) != ARCHIVE_OK ||
            archive_write_data(a, meta_text, strlen(meta_text)) < 0)
            rc = arch_fail(ctx, a, "cannot write", file);
        plan_emit_phase(ctx, "exporting", set->len, false);
        for (size_t i = 0; i < set->len && !rc; i++) {
            rc = export_one(s, a, ae, set->items[i], &trees[i], buf);
            plan_emit_progress(ctx, "exporting", i + 1, set->len, false);
        }
        plan_emit_done(ctx, "exporting");
        if (archive_write_close(a) != ARCHIVE_OK && !rc)
            rc = arch_fail(ctx, a, "cannot finish", file);
    }
    archive_write_free(a);
    archive_entry_free(ae);
    free(buf);
    free(meta_text);
    for (size_t i = 0; i < set->len; i++)
        tree_release(&trees[i]);
    free(trees);
    if (tmp) {
        if (!rc) {
            int fd = open(tmp, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
            if (rename(tmp, file) != 0)
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", file);
        }
        if (rc)
            unlink(tmp);
        free(tmp);
    }
    plan_strlist_release(&chosen);
    plan_strlist_release(&all);
    return rc;
}

/* ---------- import: the metadata ---------- */

/* What reading an export needs of the store: where errors go (a worker
 * thread has a context of its own) and the store directory the paths
 * must be bound to.  Nothing else of the store is touched while reading,
 * so archives can be read on several threads at once. */
typedef struct import_env {
    plan_ctx *ctx;
    const char *store_dir;
    bool writeback; /* start writing large files back early: a flush follows */
} import_env;

typedef struct import_path {
    char *basename, *name, *version, *digest;
    plan_hash content;
    uint64_t size;      /* declared */
    uint64_t written;   /* file and symlink bytes seen so far */
    plan_strlist refs;
    tree extracted;     /* what was extracted (paths below the root), hashed
                           while it arrived */
    plan_buf manifest;  /* its .plan/manifest.json as written (when small) */
    bool has_manifest;
    bool verified;      /* extracted matches the metadata (verify_extracted) */
    uint64_t entries;   /* declared number of entries, its root included */
    uint64_t seen;      /* entries read so far */
    bool has_root;      /* its root directory entry was seen */
    bool wanted;        /* extract it (not already present, or the repair target) */
    atomic_uchar *found;/* with a scanner: which candidate digests it holds */
} import_path;

typedef struct import_meta {
    import_path *paths;
    size_t n;
} import_meta;

static void import_meta_release(import_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->paths[i].basename);
        free(m->paths[i].name);
        free(m->paths[i].version);
        free(m->paths[i].digest);
        plan_strlist_release(&m->paths[i].refs);
        tree_release(&m->paths[i].extracted);
        plan_buf_release(&m->paths[i].manifest);
        free(m->paths[i].found);
    }
    free(m->paths);
    m->paths = NULL;
    m->n = 0;
}

static int bad_meta(plan_ctx *ctx, const char *file, const char *what)
{
    return plan_fail(ctx, PLAN_ERR_HOSTILE,
                     "'%s' is not a valid plan export: its metadata %s; the file is damaged "
                     "or was not written by 'plan store export'",
                     file, what);
}

static const char *json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_path(const import_env *env, const char *file, json_t *p, import_path *out)
{
    plan_ctx *ctx = env->ctx;
    const char *basename = json_str(p, "basename"), *name = json_str(p, "name");
    const char *version = json_str(p, "version"), *digest = json_str(p, "digest");
    const char *content = json_str(p, "content_hash");
    json_t *size = json_object_get(p, "size"), *refs = json_object_get(p, "references");
    json_t *entries = json_object_get(p, "entries");
    if (!json_is_object(p) || !basename || !name || !version || !digest || !content ||
        !json_is_integer(size) || json_integer_value(size) < 0 || !json_is_array(refs) ||
        !json_is_integer(entries) || json_integer_value(entries) < 1 ||
        json_integer_value(entries) > MAX_ENTRIES)
        return bad_meta(ctx, file, "has a path entry with missing or mistyped fields");
    if (plan_store_check_name(name) || plan_store_check_version(version))
        return bad_meta(ctx, file, "names an invalid name or version");
    if (plan_hash_parse(content, &out->content) != 0)
        return bad_meta(ctx, file, "has a malformed content hash");
    char expect[PLAN_DIGEST_CHARS + 1];
    plan_store_digest(env->store_dir, name, version, &out->content, expect);
    char *want = make_basename(expect, name, version);
    bool match = !strcmp(want, basename) && !strcmp(expect, digest);
    free(want);
    if (!match)
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "'%s': the digest of '%s' does not match its name, version and "
                         "content hash; the metadata was tampered with",
                         file, basename);
    out->basename = plan_xstrdup(basename);
    out->name = plan_xstrdup(name);
    out->version = plan_xstrdup(version);
    out->digest = plan_xstrdup(digest);
    out->size = (uint64_t)json_integer_value(size);
    out->entries = (uint64_t)json_integer_value(entries);
    plan_strlist_init(&out->refs);
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        if (!json_is_string(r) || strlen(json_string_value(r)) <= PLAN_DIGEST_CHARS + 1 ||
            strchr(json_string_value(r), '/'))
            return bad_meta(ctx, file, "has a malformed reference");
        plan_strlist_add(&out->refs, json_string_value(r));
    }
    return 0;
}

static int parse_meta(const import_env *env, const char *file, const char *text, size_t len,
                      import_meta *m)
{
    plan_ctx *ctx = env->ctx;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "'%s' is not a valid plan export: its metadata is not JSON (%s at "
                         "line %d)",
                         file, jerr.text, jerr.line);
    int rc = 0;
    const char *format = json_str(root, "format"), *store_dir = json_str(root, "store_dir");
    json_t *paths = json_object_get(root, "paths");
    if (!format || strcmp(format, EXPORT_FORMAT) != 0) {
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "'%s' has export format '%s'; this plan reads '%s': use the plan "
                       "that wrote it, or a newer one",
                       file, format ? format : "(none)", EXPORT_FORMAT);
    } else if (!store_dir) {
        rc = bad_meta(ctx, file, "names no store directory");
    } else if (strcmp(store_dir, env->store_dir) != 0) {
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "'%s' holds paths for the store '%s', but this store is '%s'; store "
                       "paths are bound to their store directory: import into a root whose "
                       "store is '%s'",
                       file, store_dir, env->store_dir, store_dir);
    } else if (!json_is_array(paths) || json_array_size(paths) == 0 ||
               json_array_size(paths) > MAX_PATHS) {
        rc = bad_meta(ctx, file, "lists no paths, or too many");
    }
    if (!rc) {
        m->n = json_array_size(paths);
        m->paths = plan_xcalloc(m->n, sizeof(*m->paths));
        for (size_t i = 0; i < m->n && !rc; i++) {
            rc = parse_path(env, file, json_array_get(paths, i), &m->paths[i]);
            for (size_t j = 0; j < i && !rc; j++)
                if (!strcmp(m->paths[j].basename, m->paths[i].basename))
                    rc = bad_meta(ctx, file, "lists a path twice");
        }
    }
    json_decref(root);
    return rc;
}

static import_path *find_import_path(import_meta *m, const char *basename, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->paths[i].basename) == len && !memcmp(m->paths[i].basename, basename, len))
            return &m->paths[i];
    return NULL;
}

/* ---------- import: entries ---------- */

/* Manifests kept in memory for the profile that follows, at most this big. */
#define MANIFEST_KEPT_MAX (256u << 10)

/* How new entries get their modes. */
typedef struct entry_modes {
    mode_t umask;      /* the process's, or (mode_t)-1 when unknown */
    bool sealed_dirs;  /* directories are made 0555 at once (work_dir) */
} entry_modes;

/* The modes for extracting into w: a directory is born sealed when it can
 * still be filled and the umask leaves 0555 whole. */
static entry_modes modes_for(const work_dir *w)
{
    mode_t mask = plan_umask(); /* once: it is the process's, not the thread's */
    return (entry_modes){.umask = mask,
                         .sealed_dirs = w->sealed_dirs_writable && mask != (mode_t)-1 &&
                                        !(mask & 0555)};
}

typedef struct extractor {
    const import_env *env;
    const char *file;
    import_meta *meta;
    int root_fd;         /* the work directory */
    /* The directories of the last parent opened, one descriptor per
     * component: entries come parents first, so the next entry's parent
     * shares most of them and only the rest is opened. */
    plan_buf open_path;  /* that parent, relative to the work directory */
    int *open_fds;       /* open_fds[i]: its first i + 1 components */
    size_t *open_ends;   /* open_ends[i]: where component i ends in open_path */
    size_t depth, cap;
    int deep_fd;         /* a parent deeper than OPEN_DIRS_MAX, opened for one
                            entry; -1 when none */
    entry_modes modes;
    char *buf;
    const ref_scanner *scanner; /* NULL: no reference scan */
} extractor;

static int refuse(extractor *x, const char *entry, const char *why)
{
    return plan_fail(x->env->ctx, PLAN_ERR_HOSTILE,
                     "refusing '%s': entry '%s' %s; nothing was imported", x->file, entry, why);
}

/* Check an entry name: relative, no empty, '.' or '..' components. */
static const char *check_entry_name(const char *name)
{
    if (!name || !*name)
        return "has an empty name";
    if (name[0] == '/')
        return "has an absolute path";
    if (strlen(name) > 4096)
        return "has a name longer than 4096 bytes";
    const char *p = name;
    while (*p) {
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0)
            return "has an empty path component ('//')";
        if (n == 1 && start[0] == '.')
            return "has a '.' component";
        if (n == 2 && start[0] == '.' && start[1] == '.')
            return "has a '..' component";
        if (*p == '/') {
            p++;
            if (!*p)
                break; /* one trailing slash, as tar writes for directories */
        }
    }
    return NULL;
}

/* A symlink may point inside its own store path (relative target that
 * never climbs above the path's root) or into the store (absolute target
 * below the store directory, without '..'). */
const char *link_target_problem(const char *store_dir, const char *rel, const char *target)
{
    if (!target || !*target)
        return "is a symlink with an empty target";
    if (strlen(target) > 4095)
        return "is a symlink with a target longer than 4095 bytes";
    if (target[0] == '/') {
        size_t n = strlen(store_dir);
        if (strncmp(target, store_dir, n) != 0 || target[n] != '/')
            return "is a symlink that points outside the store";
        const char *rest = target + n;
        if (strstr(rest, "/../") || (strlen(rest) >= 3 && !strcmp(rest + strlen(rest) - 3, "/..")))
            return "is a symlink that climbs out of the store with '..'";
        if (rest[1] == '.' || rest[1] == '/' || rest[1] == '\0')
            return "is a symlink into the store's private directories";
        return NULL;
    }
    return plan_path_link_inside(rel, target) ? NULL
                                              : "is a symlink that escapes its store path";
}

static const char *check_link_target(extractor *x, const char *entry, const char *target)
{
    const char *slash = strchr(entry, '/');
    return link_target_problem(x->env->store_dir, slash ? slash + 1 : "", target);
}

/* Close the open directories deeper than depth components. */
static void close_open_dirs(extractor *x, size_t depth)
{
    while (x->depth > depth)
        close(x->open_fds[--x->depth]);
    plan_buf_truncate(&x->open_path, depth ? x->open_ends[depth - 1] : 0);
}

/* Directory descriptors an extractor keeps open at most (each of up to
 * four workers has its own): deeper levels are walked again per entry. */
#define OPEN_DIRS_MAX 32

/* Open the directory that will hold entry name (relative to the work
 * directory), component by component, never following a symlink.  The
 * descriptor stays owned by x.  -1 with errno on failure. */
static int open_parent(extractor *x, const char *name, const char **last)
{
    if (x->deep_fd >= 0) {
        close(x->deep_fd);
        x->deep_fd = -1;
    }
    const char *slash = strrchr(name, '/');
    *last = slash ? slash + 1 : name;
    size_t plen = slash ? (size_t)(slash - name) : 0;
    /* Keep the open components that are a prefix of this parent. */
    size_t keep = 0;
    while (keep < x->depth) {
        size_t end = x->open_ends[keep];
        if (end > plen || memcmp(x->open_path.data, name, end) != 0 ||
            (end < plen && name[end] != '/'))
            break;
        keep++;
    }
    close_open_dirs(x, keep);
    int fd = keep ? x->open_fds[keep - 1] : x->root_fd;
    const char *p = name + (keep ? x->open_ends[keep - 1] + 1 : 0);
    while (p < name + plen) {
        const char *end = memchr(p, '/', (size_t)(name + plen - p));
        if (!end)
            end = name + plen;
        char *comp = plan_xstrndup(p, (size_t)(end - p));
        int parent = fd;
        fd = openat(parent, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        free(comp);
        if (x->depth >= OPEN_DIRS_MAX) {
            /* Past the kept levels: only the last one opened stays, for
             * this entry alone. */
            if (parent == x->deep_fd) {
                int e = errno;
                close(parent);
                errno = e;
            }
            x->deep_fd = fd;
            if (fd < 0)
                return -1;
            p = end + 1;
            continue;
        }
        if (fd < 0)
            return -1;
        if (x->depth == x->cap) {
            x->cap = x->cap ? 2 * x->cap : 16;
            x->open_fds = plan_xrealloc(x->open_fds, x->cap * sizeof(*x->open_fds));
            x->open_ends = plan_xrealloc(x->open_ends, x->cap * sizeof(*x->open_ends));
        }
        if (x->depth)
            plan_buf_add(&x->open_path, "/", 1);
        plan_buf_add(&x->open_path, p, (size_t)(end - p));
        x->open_fds[x->depth] = fd;
        x->open_ends[x->depth++] = x->open_path.len;
        p = end + 1;
    }
    return fd;
}

static int extract_data(extractor *x, struct archive *a, const char *entry, int fd,
                        import_path *ip, masked_hasher *h, ref_stream *refs, plan_buf *copy)
{
    for (;;) {
        la_ssize_t n = archive_read_data(a, x->buf, IO_CHUNK);
        if (n < 0)
            return plan_fail(x->env->ctx, PLAN_ERR_HOSTILE,
                             "'%s' is damaged or truncated at entry '%s': %s", x->file, entry,
                             archive_error_string(a));
        if (n == 0)
            return 0;
        ip->written += (uint64_t)n;
        if (ip->written > ip->size)
            return refuse(x, entry, "holds more data than its store path declares");
        if (fd < 0)
            continue; /* a path we are not extracting: read through it */
        masked_hasher_update(h, x->buf, (size_t)n);
        if (refs)
            ref_stream_feed(refs, x->buf, (size_t)n);
        if (copy)
            plan_buf_add(copy, x->buf, (size_t)n);
        for (la_ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, x->buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return plan_fail_errno(x->env->ctx, PLAN_ERR_IO, errno,
                                       "cannot write '%s' while importing", entry);
            }
            off += w;
        }
    }
}

static int extract_entry(extractor *x, struct archive *a, struct archive_entry *ae)
{
    plan_ctx *ctx = x->env->ctx;
    const char *name = archive_entry_pathname(ae);
    const char *why = check_entry_name(name);
    if (why)
        return refuse(x, name ? name : "(no name)", why);
    char *clean = plan_xstrdup(name);
    size_t len = strlen(clean);
    if (clean[len - 1] == '/')
        clean[--len] = '\0';
    const char *slash = strchr(clean, '/');
    size_t blen = slash ? (size_t)(slash - clean) : len;
    import_path *ip = find_import_path(x->meta, clean, blen);
    int rc = 0;
    mode_t type = archive_entry_filetype(ae);
    mode_t mode = archive_entry_mode(ae);
    if (!ip)
        rc = refuse(x, clean, "belongs to no store path listed in the metadata");
    else if (archive_entry_hardlink(ae))
        rc = refuse(x, clean, "is a hard link; plan archives never contain hard links");
    else if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        rc = refuse(x, clean,
                    type == AE_IFCHR || type == AE_IFBLK ? "is a device node"
                    : type == AE_IFIFO                   ? "is a fifo"
                    : type == AE_IFSOCK                  ? "is a socket"
                                                         : "has an unsupported type");
    else if (mode & (S_ISUID | S_ISGID))
        rc = refuse(x, clean, "has the setuid or setgid bit; store paths never carry them");
    else if (!slash && type != AE_IFDIR)
        rc = refuse(x, clean, "is the root of a store path but not a directory");
    else if (slash && !ip->has_root)
        rc = refuse(x, clean, "comes before the root directory of its store path");
    else if (!slash && ip->has_root)
        rc = refuse(x, clean, "appears twice");
    else if (type == AE_IFREG && archive_entry_size_is_set(ae) &&
             (uint64_t)archive_entry_size(ae) > ip->size - ip->written)
        rc = refuse(x, clean, "is larger than its store path's declared size");
    if (rc) {
        free(clean);
        return rc;
    }
    if (!slash)
        ip->has_root = true;

    const char *last = NULL;
    int pfd = ip->wanted ? open_parent(x, clean, &last) : -1;
    if (ip->wanted && pfd < 0) {
        int e = errno;
        /* Only what the archive can cause is its fault; anything else
         * (out of descriptors, say) is the machine's. */
        rc = e == ENOENT ? refuse(x, clean, "comes before its parent directory")
             : e == ELOOP || e == ENOTDIR
                 ? refuse(x, clean, "goes through a symlink or a non-directory")
                 : plan_fail_errno(x->env->ctx, PLAN_ERR_IO, e,
                                   "cannot open the directory of '%s' while importing", clean);
        free(clean);
        return rc;
    }
    const char *rel = slash ? slash + 1 : NULL; /* below the path's root */
    /* Names count as references too (as plan_store_scan_refs reads them). */
    if (rel && ip->found)
        ref_scan_text(x->scanner, rel, strlen(rel), ip->found);
    if (type == AE_IFDIR) {
        if (ip->wanted && mkdirat(pfd, last, x->modes.sealed_dirs ? 0555 : 0700) != 0)
            rc = errno == EEXIST ? refuse(x, clean, "appears twice")
                                 : plan_fail_errno(ctx, PLAN_ERR_IO, errno,
                                                   "cannot create '%s' while importing", clean);
        if (!rc && ip->wanted && rel)
            tree_add(&ip->extracted, rel, TREE_DIR);
    } else if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(ae);
        why = check_link_target(x, clean, target);
        if (why)
            rc = refuse(x, clean, why);
        else if ((ip->written += strlen(target)) > ip->size)
            rc = refuse(x, clean, "holds more data than its store path declares");
        else if (ip->wanted && symlinkat(target, pfd, last) != 0)
            rc = errno == EEXIST ? refuse(x, clean, "appears twice")
                                 : plan_fail_errno(ctx, PLAN_ERR_IO, errno,
                                                   "cannot create '%s' while importing", clean);
        if (!rc && ip->wanted) {
            tree_entry *e = tree_add(&ip->extracted, rel, TREE_SYMLINK);
            e->target = plan_xstrdup(target);
            e->size = strlen(target);
        }
        if (!rc && ip->found)
            ref_scan_text(x->scanner, target, strlen(target), ip->found);
    } else {
        int fd = -1;
        mode_t sealed = (mode & 0111) ? 0555 : 0444;
        /* Created with its final mode when the umask leaves that intact (a
         * new file is writable through the descriptor that created it). */
        bool born_sealed = x->modes.umask != (mode_t)-1 && !(x->modes.umask & sealed);
        if (ip->wanted) {
            fd = openat(pfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        born_sealed ? sealed : (mode & 0111) ? 0700 : 0600);
            if (fd < 0)
                rc = errno == EEXIST ? refuse(x, clean, "appears twice")
                                     : plan_fail_errno(ctx, PLAN_ERR_IO, errno,
                                                       "cannot create '%s' while importing",
                                                       clean);
        }
        uint64_t before = ip->written;
        masked_hasher h;
        masked_hasher_init(&h, ip->digest);
        ref_stream refs;
        if (ip->found)
            ref_stream_start(&refs, x->scanner, ip->found);
        /* The manifest is kept as it is written: the profile that follows
         * reads it from here (store_listing_keep), not from the disk. */
        bool keep = fd >= 0 && rel && !strcmp(rel, ".plan/manifest.json") &&
                    archive_entry_size_is_set(ae) && archive_entry_size(ae) <= MANIFEST_KEPT_MAX;
        if (keep)
            plan_buf_reset(&ip->manifest);
        if (!rc)
            rc = extract_data(x, a, clean, fd, ip, &h, ip->found ? &refs : NULL,
                              keep ? &ip->manifest : NULL);
        if (keep)
            ip->has_manifest = !rc;
        plan_hash digest;
        masked_hasher_final(&h, &digest);
        if (!rc && ip->wanted) {
            tree_entry *e = tree_add(&ip->extracted, rel, TREE_FILE);
            e->exec = (mode & 0111) != 0;
            e->size = ip->written - before;
            e->digest = digest;
            e->hashed = true;
        }
        if (fd >= 0) {
            /* Sealed here, while its descriptor is open: the seal of the
             * whole tree then touches only directories and links. */
            struct timespec times[2] = {{1, 0}, {1, 0}};
            if (!rc && ((!born_sealed && fchmod(fd, sealed) != 0) || futimens(fd, times) != 0))
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot seal '%s' while importing",
                                     clean);
            if (!rc && x->env->writeback)
                start_writeback(fd, ip->written - before);
            close(fd);
        }
    }
    /* Counted after the entry's own checks, so those name the problem
     * first; at most one entry beyond the declared count is ever made. */
    if (!rc && ++ip->seen > ip->entries)
        rc = refuse(x, clean, "is one entry more than its store path declares");
    free(clean);
    return rc;
}

/* An export being read: the archive, and the thread that decompresses it. */
typedef struct export_reader {
    struct archive *a;
    zread *z;
} export_reader;

static void export_close(export_reader *r)
{
    archive_read_free(r->a);
    zread_free(r->z); /* after libarchive: it may read until it is freed */
    r->a = NULL;
    r->z = NULL;
}

/* A small export, decompressed into memory once: a batch reads its
 * metadata first and extracts it later, and a file of a few kilobytes
 * costs more in opens and decompressor set-ups than in bytes.  Whatever
 * does not qualify (large, not zstd, damaged, or expanding beyond
 * SMALL_TAR_MAX) is left empty and read from its file, whose reader
 * reports any damage. */
#define SMALL_TAR_MAX (8u << 20)

static void decompress_small(const plan_buf *in, ZSTD_DCtx *dctx, plan_buf *tar);

static void load_small(const char *file, ZSTD_DCtx *dctx, plan_buf *tar, uint64_t *size_out)
{
    plan_buf_release(tar);
    *size_out = 0;
    /* O_NONBLOCK: a fifo in place of the file must not hang the open. */
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return;
    }
    *size_out = (uint64_t)st.st_size;
    if (!S_ISREG(st.st_mode) || st.st_size < 4 || st.st_size >= ZREAD_MIN_SIZE) {
        close(fd);
        return;
    }
    plan_buf in;
    plan_buf_init(&in);
    bool ok = plan_fs_read_fd(fd, ZREAD_MIN_SIZE, &in) == 0;
    close(fd);
    if (ok)
        decompress_small(&in, dctx, tar);
    plan_buf_release(&in);
}

/* Decompress a small zstd archive held in memory into tar; tar is left
 * empty when it is not zstd, is damaged, or decompresses past
 * SMALL_TAR_MAX (its reader then goes the file's way). */
static void decompress_small(const plan_buf *in, ZSTD_DCtx *dctx, plan_buf *tar)
{
    plan_buf_release(tar);
    bool ok = dctx && in->len >= 4 && zread_magic((const uint8_t *)in->data);
    if (ok)
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer zin = {in->data, in->len, 0};
    size_t ret = 1;
    while (ok && (zin.pos < zin.size || ret != 0)) {
        if (tar->cap - tar->len < 2) { /* plan_buf keeps one byte for a NUL */
            if (tar->cap >= SMALL_TAR_MAX) {
                ok = false;
                break;
            }
            plan_buf_grow(tar, tar->cap ? tar->cap : 64 * 1024);
        }
        ZSTD_outBuffer out = {tar->data, tar->cap - 1, tar->len};
        ret = ZSTD_decompressStream(dctx, &out, &zin);
        tar->len = out.pos;
        /* No progress with input left and room to write: a frame that
         * never ends, or garbage after it. */
        if (ZSTD_isError(ret) || (ret != 0 && zin.pos == zin.size && out.pos < out.size))
            ok = false;
    }
    if (ok)
        tar->data[tar->len] = '\0'; /* what plan_buf promises */
    else
        plan_buf_release(tar); /* what was decompressed so far must not stay held */
}

/* Open an export and read its metadata (the first entry) into meta; the
 * entries that follow are then read from r->a.  tar, when not NULL and not
 * empty, is the export already decompressed (load_small).  buf is IO_CHUNK
 * bytes of scratch.  Close r with export_close, also after a failure. */
static int export_open(const import_env *env, const char *file, const plan_buf *tar,
                       char *buf, export_reader *r, import_meta *meta)
{
    plan_ctx *ctx = env->ctx;
    struct archive *a = r->a = archive_read_new();
    bool in_memory = tar && tar->len;
    /* An export is zstd: decompressed on a thread of its own (zread.c) when
     * it is large.  Anything else goes through libarchive's own filters. */
    bool threaded = !in_memory && zread_is_zstd(file);
    if (!threaded && !in_memory)
        archive_read_support_filter_zstd(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
    struct archive_entry *ae;
    plan_buf text;
    plan_buf_init(&text);
    int rc = 0;
    if (in_memory) {
        if (archive_read_open_memory(a, tar->data, tar->len) != ARCHIVE_OK) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s' is not a plan export: %s", file,
                           archive_error_string(a));
            goto out;
        }
    } else if (threaded) {
        if ((rc = zread_open(ctx, file, a, &r->z)))
            goto out;
    } else if (archive_read_open_filename(a, file, IO_CHUNK) != ARCHIVE_OK) {
        if (archive_errno(a) == ENOENT || archive_errno(a) == EACCES)
            rc = plan_fail(ctx, archive_errno(a) == ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO,
                           "cannot read '%s': %s", file, strerror(archive_errno(a)));
        else
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                           "'%s' is not a plan export (a tar.zst written by 'plan store "
                           "export'): %s",
                           file, archive_error_string(a));
        goto out;
    }
    /* The metadata comes first and is small; anything else is not ours. */
    int got = archive_read_next_header(a, &ae);
    if (got != ARCHIVE_OK) {
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s' is not a plan export: %s", file,
                       got == ARCHIVE_EOF ? "it is empty" : archive_error_string(a));
        goto out;
    }
    if (!archive_entry_pathname(ae) || strcmp(archive_entry_pathname(ae), META_NAME) != 0 ||
        archive_entry_filetype(ae) != AE_IFREG || archive_entry_size(ae) > (la_int64_t)META_MAX) {
        rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                       "'%s' is not a plan export: it does not start with a %s of at most "
                       "16 MiB",
                       file, META_NAME);
        goto out;
    }
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, IO_CHUNK);
        if (n < 0) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s' is damaged or truncated: %s", file,
                           archive_error_string(a));
            goto out;
        }
        if (n == 0)
            break;
        if (text.len + (size_t)n > META_MAX) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s': metadata larger than 16 MiB", file);
            goto out;
        }
        plan_buf_add(&text, buf, (size_t)n);
    }
    rc = parse_meta(env, file, text.data, text.len, meta);
out:
    plan_buf_release(&text);
    return rc;
}

/* The metadata of an export alone (a batch learns every digest it holds
 * before it extracts anything). */
static int export_read_meta(const import_env *env, const char *file, const plan_buf *tar,
                            import_meta *meta)
{
    export_reader r = {0};
    char *buf = plan_xmalloc(IO_CHUNK);
    int rc = export_open(env, file, tar, buf, &r, meta);
    export_close(&r);
    free(buf);
    return rc;
}

/* Read the whole archive into the work directory.  Paths for which
 * want(ip, want_arg) is false are read through (and checked) but not
 * written.  With a scanner, every wanted path gets found[] (one flag per
 * digest of the scanner) set for what its names, link targets and bytes
 * contain.  In a batch (in_batch), progress is the batch's to report. */
/* Extract what want picks of the export file (or tar, its bytes) into
 * workdir, reading its metadata into meta; or, with opened, go on from a
 * reader that read the metadata into meta already (it is taken). */
static int extract_archive(const import_env *env, const char *file, const plan_buf *tar,
                           const char *workdir, import_meta *meta,
                           bool (*want)(import_path *, void *), void *want_arg,
                           const ref_scanner *scanner, entry_modes modes, bool in_batch,
                           export_reader *opened)
{
    plan_ctx *ctx = env->ctx;
    extractor x = {.env = env, .file = file, .meta = meta, .root_fd = -1, .scanner = scanner,
                   .deep_fd = -1, .modes = modes};
    plan_buf_init(&x.open_path);
    x.buf = plan_xmalloc(IO_CHUNK);
    struct archive_entry *ae;
    export_reader rd = {0};
    int rc = 0;
    if (opened) {
        rd = *opened;
        memset(opened, 0, sizeof(*opened));
    } else {
        rc = export_open(env, file, tar, x.buf, &rd, meta);
    }
    struct archive *a = rd.a;
    zread *z = rd.z;
    int r;
    if (rc)
        goto out;
    for (size_t i = 0; i < meta->n; i++)
        meta->paths[i].wanted = want(&meta->paths[i], want_arg);
    for (size_t i = 0; i < meta->n && scanner; i++)
        if (meta->paths[i].wanted)
            meta->paths[i].found = plan_xcalloc(ref_scanner_size(scanner) + 1,
                                                sizeof(atomic_uchar));
    x.root_fd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x.root_fd < 0) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot open '%s'", workdir);
        goto out;
    }
    uint64_t total = 0;
    if (!in_batch) {
        struct stat fst;
        total = stat(file, &fst) == 0 ? (uint64_t)fst.st_size : 0;
        plan_emit_phase(ctx, "unpacking", total, true);
    }
    uint64_t entries = 0;
    while (!rc) {
        r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "'%s' is damaged or truncated: %s", file,
                           archive_error_string(a));
            break;
        }
        rc = extract_entry(&x, a, ae);
        if (!in_batch && ++entries % 256 == 0)
            plan_emit_progress(ctx, "unpacking",
                               z ? zread_consumed(z) : (uint64_t)archive_filter_bytes(a, -1),
                               total, true);
    }
    if (!in_batch)
        plan_emit_done(ctx, "unpacking");
    for (size_t i = 0; i < meta->n && !rc; i++)
        if (!meta->paths[i].has_root)
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                           "'%s' is incomplete: it declares '%s' but holds none of it", file,
                           meta->paths[i].basename);
out:
    close_open_dirs(&x, 0);
    if (x.deep_fd >= 0)
        close(x.deep_fd);
    free(x.open_fds);
    free(x.open_ends);
    plan_buf_release(&x.open_path);
    if (x.root_fd >= 0)
        close(x.root_fd);
    free(x.buf);
    export_close(&rd);
    return rc;
}

/* ---------- import: symlinks, resolved for real ----------
 * Each target was checked lexically when its entry was read, but a chain
 * of links can escape even when every single target stays inside
 * ("up -> ..", then "s -> sub/up/.."). Once the tree is complete, every
 * link is therefore resolved the way the kernel would, against the
 * extracted tree, without ever following a link on disk: lstat and
 * readlink only. */

#define MAX_LINK_HOPS 40

typedef struct link_walk {
    const char *dir;   /* the extracted store path */
    int hops;
} link_walk;

/* Append the components of text to the list (NUL-separated, in order). */
static void split_components(const char *text, plan_strlist *out)
{
    const char *p = text;
    while (*p) {
        while (*p == '/')
            p++;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        if (p > start)
            plan_strlist_take(out, plan_xstrndup(start, (size_t)(p - start)));
    }
}

static char *joined(const plan_strlist *stack, size_t n)
{
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (i)
            plan_buf_addc(&b, '/');
        plan_buf_adds(&b, stack->items[i]);
    }
    return plan_buf_detach(&b);
}

/* Resolve the components parts[from..] starting at directory stack.
 * Returns NULL if the result stays inside the store path (or leaves it
 * only for an absolute target below the store directory), else why not. */
static const char *resolve_inside(link_walk *w, plan_strlist *stack, plan_strlist *parts,
                                  size_t from)
{
    for (size_t i = from; i < parts->len; i++) {
        const char *c = parts->items[i];
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..")) {
            if (stack->len == 0)
                return "is a symlink whose chain of links escapes its store path";
            free(stack->items[--stack->len]);
            continue;
        }
        plan_strlist_add(stack, c);
        char *rel = joined(stack, stack->len);
        char *full = plan_path_join(w->dir, rel);
        free(rel);
        struct stat st;
        if (lstat(full, &st) != 0) {
            free(full);
            return NULL; /* dangling: it leads nowhere */
        }
        if (!S_ISLNK(st.st_mode)) {
            free(full);
            if (!S_ISDIR(st.st_mode))
                return NULL; /* a file: nothing can be reached through it */
            continue;
        }
        if (++w->hops > MAX_LINK_HOPS) {
            free(full);
            return "is a symlink in a loop of links";
        }
        char target[4096];
        ssize_t n = readlink(full, target, sizeof(target) - 1);
        free(full);
        if (n <= 0)
            return "is a symlink that cannot be read back";
        target[n] = '\0';
        free(stack->items[--stack->len]); /* replaced by its target */
        if (target[0] == '/') {
            /* Absolute targets were confined to a store path by the entry
             * check; '..' after one would climb out from there. */
            for (size_t k = i + 1; k < parts->len; k++)
                if (!strcmp(parts->items[k], ".."))
                    return "is a symlink whose chain of links climbs out of the store "
                           "through an absolute link";
            return NULL;
        }
        plan_strlist rest;
        plan_strlist_init(&rest);
        split_components(target, &rest);
        for (size_t k = i + 1; k < parts->len; k++)
            plan_strlist_add(&rest, parts->items[k]);
        const char *why = resolve_inside(w, stack, &rest, 0);
        plan_strlist_release(&rest);
        return why;
    }
    return NULL;
}

int links_confined(plan_store *s, const char *dir, const tree *t, const char **why_out,
                   const char **entry_out)
{
    for (size_t i = 0; i < t->len; i++) {
        const tree_entry *e = &t->items[i];
        if (e->type != TREE_SYMLINK)
            continue;
        const char *why = link_target_problem(s->store_dir, e->path, e->target);
        if (!why && e->target[0] != '/') {
            link_walk w = {.dir = dir};
            plan_strlist stack, parts;
            plan_strlist_init(&stack);
            plan_strlist_init(&parts);
            split_components(e->path, &stack);
            free(stack.items[--stack.len]);
            split_components(e->target, &parts);
            why = resolve_inside(&w, &stack, &parts, 0);
            plan_strlist_release(&stack);
            plan_strlist_release(&parts);
        }
        if (why) {
            *why_out = why;
            *entry_out = e->path;
            return -1;
        }
    }
    return 0;
}

static int check_links_confined(plan_ctx *ctx, const char *file, const char *dir,
                                const char *basename, const tree *t)
{
    for (size_t i = 0; i < t->len; i++) {
        const tree_entry *e = &t->items[i];
        if (e->type != TREE_SYMLINK || e->target[0] == '/')
            continue;
        link_walk w = {.dir = dir};
        plan_strlist stack, parts;
        plan_strlist_init(&stack);
        plan_strlist_init(&parts);
        split_components(e->path, &stack);
        free(stack.items[--stack.len]); /* start in the link's directory */
        split_components(e->target, &parts);
        const char *why = resolve_inside(&w, &stack, &parts, 0);
        plan_strlist_release(&stack);
        plan_strlist_release(&parts);
        if (why)
            return plan_fail(ctx, PLAN_ERR_HOSTILE,
                             "refusing '%s': entry '%s/%s' %s; nothing was imported", file,
                             basename, e->path, why);
    }
    return 0;
}

/* Re-hash an extracted path and compare it with what the metadata claims. */
/* The tree extracted for ip (sorted) is the one its metadata declares:
 * content hash, size, and links that stay inside.  On any thread (ctx is
 * the caller's). */
static int verify_extracted(plan_ctx *ctx, const char *file, const char *dir, import_path *ip)
{
    /* Every file was hashed as it was written, and the tree on disk is
     * exactly the entries recorded (each made with O_EXCL, none twice), so
     * nothing is read again. */
    plan_hash h;
    tree_hash(&ip->extracted, ip->digest, &h);
    plan_tree_stats st;
    tree_stats(&ip->extracted, &st);
    if (memcmp(h.bytes, ip->content.bytes, PLAN_HASH_BYTES) != 0 || st.bytes != ip->size)
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "refusing '%s': the contents of '%s' do not match its content hash; "
                         "the archive was tampered with or damaged; nothing was imported",
                         file, ip->basename);
    int rc = check_links_confined(ctx, file, dir, ip->basename, &ip->extracted);
    ip->verified = rc == 0;
    return rc;
}

/* Verify ip's tree (unless a worker did already) and take it into t. */
static int check_extracted(plan_store *s, const char *file, const char *dir,
                           import_path *ip, tree *t)
{
    int rc = 0;
    if (!ip->verified) {
        tree_sort(&ip->extracted);
        rc = verify_extracted(s->ctx, file, dir, ip);
    }
    *t = ip->extracted;
    memset(&ip->extracted, 0, sizeof(ip->extracted));
    return rc;
}

/* ---------- import ---------- */

/* One archive of a batch: its bytes, decompressed when it is small (and
 * the batch's memory budget allows), its metadata as first read, and as
 * read again by the extraction. */
typedef struct batch_archive {
    const char *file;
    uint64_t size;      /* of the file, for the progress */
    plan_buf tar;
    import_meta pre, meta;
    /* A stream's archive held in memory is read once: its reader stays
     * open after the metadata, and the extraction goes on from there. */
    export_reader reader;
} batch_archive;

/* What a batch holds in memory of its small archives at most. */
#define BATCH_MEMORY (64u << 20)

static bool batch_has(const batch_archive *arcs, size_t n, const char *basename)
{
    for (size_t f = 0; f < n; f++)
        if (find_import_path((import_meta *)&arcs[f].meta, basename, strlen(basename)))
            return true;
    return false;
}

/* A batch of archives may share paths (each closure brings its
 * dependencies): a path is extracted from the first archive that has it,
 * and only when the store lacks it.  Decided from the metadata before
 * anything is extracted, so the archives can be extracted in any order. */
static void plan_wanted(plan_store *s, batch_archive *arcs, size_t n)
{
    plan_strmap chosen;
    plan_strmap_init(&chosen);
    bool txn = db_read_begin(s);
    for (size_t f = 0; f < n; f++)
        for (size_t i = 0; i < arcs[f].pre.n; i++) {
            import_path *ip = &arcs[f].pre.paths[i];
            ip->wanted = plan_strmap_get(&chosen, ip->basename) < 0 &&
                         path_present(s, ip->basename) != 1;
            if (ip->wanted)
                plan_strmap_put(&chosen, ip->basename, 1);
        }
    db_read_end(s, txn);
    plan_strmap_release(&chosen);
}

/* The extraction's choice: what plan_wanted chose from the first reading
 * (arg) of the same archive. */
static bool want_planned(import_path *ip, void *arg)
{
    import_path *first = find_import_path(arg, ip->basename, strlen(ip->basename));
    return first && first->wanted;
}

/* Take the digest locks of the rows, in stripe order so two importers
 * cannot deadlock. */
static int lock_all(plan_store *s, const db_path_row *rows, size_t n, int *fds, size_t *nfds)
{
    plan_strlist stripes;
    plan_strlist_init(&stripes);
    for (size_t i = 0; i < n; i++) {
        char two[3] = {rows[i].digest[0], rows[i].digest[1], 0};
        if (!plan_strlist_contains(&stripes, two))
            plan_strlist_add(&stripes, two);
    }
    plan_strlist_sort(&stripes);
    int rc = 0;
    *nfds = 0;
    for (size_t i = 0; i < stripes.len && !rc; i++)
        if (!(rc = digest_lock(s, stripes.items[i], &fds[*nfds])))
            (*nfds)++;
    plan_strlist_release(&stripes);
    return rc;
}

void plan_import_result_release(plan_import_result *r)
{
    plan_strlist_release(&r->added);
    plan_strlist_release(&r->present);
}

/* What one import collects about the paths it extracted. */
typedef struct staged {
    tree *trees;
    plan_buf *manifests; /* empty when not kept */
    char **tmp_paths;
    db_path_row *rows;
    plan_strlist *refs;
    /* The rows' content hashes, one allocation each: the rows point at
     * them, so they must not move when the arrays grow. */
    char **texts;
    size_t n, cap;
} staged;

static void staged_release(staged *g)
{
    for (size_t i = 0; i < g->n; i++) {
        tree_release(&g->trees[i]);
        plan_buf_release(&g->manifests[i]);
        free(g->tmp_paths[i]);
        plan_strlist_release(&g->refs[i]);
        free(g->texts[i]);
    }
    free(g->trees);
    free(g->manifests);
    free(g->tmp_paths);
    free(g->rows);
    free(g->refs);
    free(g->texts);
}

/* Running a step over every archive of a batch on several threads: the
 * archives are independent (once plan_wanted has chosen who extracts
 * what), so the threads take them in turn, each with a context of its own
 * for its errors and a decompressor of its own; the first failure stops
 * them all and is the one reported. */
typedef struct batch_worker {
    plan_ctx *ctx;
    import_env env;
    ZSTD_DCtx *dctx;
} batch_worker;

typedef int (*batch_step)(batch_worker *w, batch_archive *ba, void *arg);

typedef struct batch_job {
    const char *store_dir;
    bool writeback;
    batch_archive *arcs;
    size_t n;
    batch_step step;
    void *arg;
    atomic_size_t next;
    plan_first_error err;
} batch_job;

static void *batch_worker_run(void *p)
{
    batch_job *job = p;
    /* Without a decompressor, small archives are read from their files. */
    batch_worker w = {.ctx = plan_ctx_new(), .dctx = zread_dctx_new()};
    w.env = (import_env){.ctx = w.ctx, .store_dir = job->store_dir, .writeback = job->writeback};
    while (!plan_first_error_failed(&job->err)) {
        size_t f = atomic_fetch_add(&job->next, 1);
        if (f >= job->n)
            break;
        int rc = job->step(&w, &job->arcs[f], job->arg);
        if (rc) {
            plan_first_error_set(&job->err, rc, plan_ctx_error(w.ctx));
            break;
        }
    }
    ZSTD_freeDCtx(w.dctx);
    plan_ctx_free(w.ctx);
    return NULL;
}

#define BATCH_THREADS_MAX 4

/* Threads for n archives: the store's setting (else
 * plan_threads_for_files: four on a machine of two cores, since an import
 * waits in the kernel), up to BATCH_THREADS_MAX, never more than archives. */
static unsigned batch_threads(const plan_store *s, size_t n)
{
    unsigned threads = s->threads ? s->threads : plan_threads_for_files(n, 1);
    if (threads > BATCH_THREADS_MAX)
        threads = BATCH_THREADS_MAX;
    return threads > n ? (n ? (unsigned)n : 1) : threads;
}

static int batch_run(plan_store *s, batch_archive *arcs, size_t n, batch_step step, void *arg)
{
    batch_job job;
    memset(&job, 0, sizeof(job));
    job.store_dir = s->store_dir;
    job.writeback = store_flushes(s);
    job.arcs = arcs;
    job.n = n;
    job.step = step;
    job.arg = arg;
    atomic_init(&job.next, 0);
    plan_first_error_init(&job.err);
    plan_run_threads(batch_threads(s, n), batch_worker_run, &job); /* one archive: no thread */
    return plan_first_error_finish(&job.err, s->ctx);
}

/* Every reference must be in the batch (in any of its archives) or
 * already registered. */
static int check_batch_refs(plan_store *s, const batch_archive *arcs, size_t n)
{
    for (size_t f = 0; f < n; f++)
        for (size_t i = 0; i < arcs[f].meta.n; i++) {
            const import_path *ip = &arcs[f].meta.paths[i];
            for (size_t r = 0; r < ip->refs.len; r++) {
                const char *ref = ip->refs.items[r];
                if (!batch_has(arcs, n, ref) && db_has_path(s, ref) != 1)
                    return plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                                     "'%s' refers to '%s', which is neither in '%s' nor in "
                                     "the store: export with --closure, or import that path "
                                     "first",
                                     ip->basename, ref, arcs[f].file);
            }
        }
    return 0;
}

/* What an import scans for: the digests (and basenames) of every
 * registered path and of every path the batch's archives declare. */
typedef struct candidates {
    plan_strlist digests, basenames;
    plan_strmap known;   /* basenames, for lookups: a store may hold thousands */
    ref_scanner *scanner;
} candidates;

static void candidates_release(candidates *c)
{
    ref_scanner_free(c->scanner);
    plan_strlist_release(&c->digests);
    plan_strlist_release(&c->basenames);
    plan_strmap_release(&c->known);
}

/* The store's registered paths as the first candidates. */
static int candidates_start(plan_store *s, candidates *c)
{
    plan_strlist_init(&c->digests);
    plan_strlist_init(&c->basenames);
    plan_strmap_init(&c->known);
    int rc = registered_candidates(s, &c->digests, &c->basenames);
    for (size_t i = 0; i < c->basenames.len; i++)
        plan_strmap_put(&c->known, c->basenames.items[i], i);
    return rc;
}

/* Count bytes against a batch's memory (kept); false, and nothing
 * counted, when they would take it past BATCH_MEMORY. */
static bool memory_take(atomic_size_t *kept, size_t bytes)
{
    if (atomic_fetch_add(kept, bytes) + bytes <= BATCH_MEMORY)
        return true;
    atomic_fetch_sub(kept, bytes);
    return false;
}

/* The first reading of an archive: decompressed into memory when small
 * and the batch's budget allows, and its metadata. */
static int read_first_step(batch_worker *w, batch_archive *ba, void *arg)
{
    atomic_size_t *kept = arg;
    load_small(ba->file, w->dctx, &ba->tar, &ba->size);
    int rc = export_read_meta(&w->env, ba->file, &ba->tar, &ba->pre);
    /* What is held is the allocation, not the bytes used. */
    if (!memory_take(kept, ba->tar.cap))
        plan_buf_release(&ba->tar); /* read from its file again */
    return rc;
}

/* A path the scan of a batch looks for (its digest is the start of its
 * basename), once. */
static void candidates_add(candidates *c, const char *basename)
{
    if (!plan_strmap_put(&c->known, basename, c->basenames.len))
        return;
    char digest[PLAN_DIGEST_CHARS + 1];
    memcpy(digest, basename, PLAN_DIGEST_CHARS);
    digest[PLAN_DIGEST_CHARS] = '\0';
    plan_strlist_add(&c->digests, digest);
    plan_strlist_add(&c->basenames, basename);
}

/* Read every archive's metadata first (on several threads), so that the
 * scan during extraction knows every digest of the batch, also of
 * archives not yet extracted. */
static int candidates_collect(plan_store *s, batch_archive *arcs, size_t n, candidates *c)
{
    int rc = candidates_start(s, c);
    atomic_size_t kept;
    atomic_init(&kept, 0);
    if (!rc)
        rc = batch_run(s, arcs, n, read_first_step, &kept);
    for (size_t f = 0; f < n && !rc; f++)
        for (size_t i = 0; i < arcs[f].pre.n; i++)
            candidates_add(c, arcs[f].pre.paths[i].basename);
    if (!rc)
        c->scanner = ref_scanner_new(&c->digests);
    return rc;
}

/* The metadata read again for the extraction must be what was read first. */
static int same_meta(const import_env *env, const char *file, const import_meta *a,
                     const import_meta *b)
{
    bool same = a->n == b->n;
    for (size_t i = 0; same && i < a->n; i++)
        same = !strcmp(a->paths[i].basename, b->paths[i].basename);
    return same ? 0 : plan_fail(env->ctx, PLAN_ERR_HOSTILE,
                                "'%s' changed while it was being imported: refused", file);
}

/* The extraction step: extract, check the metadata is what was read
 * first, seal. */
typedef struct extract_arg {
    const char *workdir;
    const ref_scanner *scanner;
    entry_modes modes;
    plan_ctx *ctx;             /* the batch's: its one "unpacking" phase */
    atomic_uint_fast64_t done; /* compressed bytes of the archives done */
    uint64_t total;
    atomic_bool quiet;         /* no progress events (yet) */
} extract_arg;

static int extract_step(batch_worker *w, batch_archive *ba, void *arg)
{
    extract_arg *x = arg;
    int rc;
    if (ba->reader.a) {
        /* Read once: the metadata planned from is the one extracted by. */
        rc = extract_archive(&w->env, ba->file, &ba->tar, x->workdir, &ba->pre, want_planned,
                             &ba->pre, x->scanner, x->modes, true, &ba->reader);
        ba->meta = ba->pre;
        memset(&ba->pre, 0, sizeof(ba->pre));
    } else {
        rc = extract_archive(&w->env, ba->file, &ba->tar, x->workdir, &ba->meta, want_planned,
                             &ba->pre, x->scanner, x->modes, true, NULL);
        if (!rc)
            rc = same_meta(&w->env, ba->file, &ba->pre, &ba->meta);
    }
    /* Sealed here, on the worker: directories 0555 and every mtime 1
     * (files were sealed as they were written). */
    for (size_t i = 0; i < ba->meta.n && !rc; i++) {
        import_path *ip = &ba->meta.paths[i];
        if (!ip->wanted)
            continue;
        char *dir = plan_path_join(x->workdir, ip->basename);
        tree_sort(&ip->extracted);
        rc = tree_normalise(w->ctx, dir, &ip->extracted,
                            SEALED_FILES | (x->modes.sealed_dirs ? SEALED_DIRS : 0));
        /* Checked here too, on the worker, rather than one path after
         * another once all are extracted. */
        if (!rc)
            rc = verify_extracted(w->ctx, ba->file, dir, ip);
        free(dir);
    }
    plan_buf_release(&ba->tar);
    if (!rc) {
        uint64_t done = atomic_fetch_add(&x->done, ba->size) + ba->size;
        if (!atomic_load(&x->quiet))
            plan_emit_progress(x->ctx, "unpacking", done, x->total, true);
    }
    return rc;
}

/* While the archives are extracted, the file system is flushed over and
 * over on a thread of its own: the disk writes what is already there
 * while the rest is being made, and the flush before registration
 * (store_flush) finds little left to do. */
typedef struct flusher {
    int fd;
    pthread_t thread;
    bool started;
    atomic_int stop;
} flusher;

static void *flush_loop(void *p)
{
    flusher *fl = p;
    while (!atomic_load(&fl->stop)) {
        /* Failures here do not matter: store_flush reports its own. */
        (void)syncfs(fl->fd);
        usleep(2000);
    }
    return NULL;
}

static void flusher_start(flusher *fl, const char *dir)
{
    atomic_init(&fl->stop, 0);
    fl->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fl->started = fl->fd >= 0 && pthread_create(&fl->thread, NULL, flush_loop, fl) == 0;
}

static void flusher_stop(flusher *fl)
{
    atomic_store(&fl->stop, 1);
    if (fl->started)
        pthread_join(fl->thread, NULL);
    if (fl->fd >= 0)
        close(fl->fd);
}

static int extract_batch(plan_store *s, batch_archive *arcs, size_t n, const work_dir *w,
                         const candidates *cand)
{
    extract_arg x = {.workdir = w->path, .scanner = cand->scanner, .modes = modes_for(w),
                     .ctx = s->ctx};
    atomic_init(&x.done, 0);
    atomic_init(&x.quiet, false);
    for (size_t f = 0; f < n; f++)
        x.total += arcs[f].size;
    plan_emit_phase(s->ctx, "unpacking", x.total, true);
    /* A small import is written before a flush could overlap it; a
     * DEFERRED one is not flushed at all. */
    flusher fl = {.fd = -1};
    bool flushing = store_flushes(s) && (n >= 16 || x.total >= (1u << 20));
    if (flushing)
        flusher_start(&fl, w->path);
    int rc = batch_run(s, arcs, n, extract_step, &x);
    if (flushing)
        flusher_stop(&fl);
    plan_emit_done(s->ctx, "unpacking");
    return rc;
}

/* The declared references are not trusted to be complete: a path that
 * leaves one out could lose it to the collector.  What the extraction's
 * scan found (digests of the batch's paths and of every registered path)
 * is recorded as well. */
static int stage_archive(plan_store *s, const char *file, const char *workdir,
                         import_meta *meta, const candidates *cand, staged *g)
{
    int rc = 0;
    for (size_t i = 0; i < meta->n && !rc; i++) {
        import_path *ip = &meta->paths[i];
        if (!ip->wanted)
            continue;
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 16;
            g->trees = plan_xrealloc(g->trees, g->cap * sizeof(*g->trees));
            g->manifests = plan_xrealloc(g->manifests, g->cap * sizeof(*g->manifests));
            g->tmp_paths = plan_xrealloc(g->tmp_paths, g->cap * sizeof(*g->tmp_paths));
            g->rows = plan_xrealloc(g->rows, g->cap * sizeof(*g->rows));
            g->refs = plan_xrealloc(g->refs, g->cap * sizeof(*g->refs));
            g->texts = plan_xrealloc(g->texts, g->cap * sizeof(*g->texts));
        }
        size_t k = g->n;
        memset(&g->trees[k], 0, sizeof(g->trees[k]));
        plan_buf_init(&g->manifests[k]);
        if (ip->has_manifest) {
            g->manifests[k] = ip->manifest;
            plan_buf_init(&ip->manifest);
        }
        char *dir = plan_path_join(workdir, ip->basename);
        rc = check_extracted(s, file, dir, ip, &g->trees[k]);
        g->texts[k] = plan_xmalloc(PLAN_HASH_TEXT_LEN + 1);
        plan_hash_format(&ip->content, g->texts[k]);
        g->tmp_paths[k] = dir;
        g->rows[k] = (db_path_row){.basename = ip->basename, .digest = ip->digest,
                                   .name = ip->name, .version = ip->version,
                                   .content_hash = g->texts[k], .size = ip->size};
        plan_strlist_init(&g->refs[k]);
        for (size_t r = 0; r < ip->refs.len; r++)
            plan_strlist_add(&g->refs[k], ip->refs.items[r]);
        if (ip->found)
            refs_from_found(&cand->digests, &cand->basenames, ip->found, ip->digest,
                            &g->refs[k]);
        g->n++;
    }
    return rc;
}

/* Under the digest locks another process may have registered some of the
 * staged paths meanwhile: keep theirs and register only the rest. */
static int register_staged(plan_store *s, staged *g, plan_import_result *out)
{
    int lock_fds[1024];
    size_t nlocks = 0;
    int rc = lock_all(s, g->rows, g->n, lock_fds, &nlocks);
    size_t keep = 0;
    bool txn = !rc && db_read_begin(s);
    for (size_t i = 0; i < g->n && !rc; i++) {
        if (path_present(s, g->rows[i].basename) == 1) {
            plan_strlist_add(&out->present, g->rows[i].basename);
            continue;
        }
        tree t = g->trees[keep];
        plan_buf mf = g->manifests[keep];
        char *p = g->tmp_paths[keep];
        plan_strlist r = g->refs[keep];
        db_path_row row = g->rows[keep];
        g->trees[keep] = g->trees[i];
        g->manifests[keep] = g->manifests[i];
        g->tmp_paths[keep] = g->tmp_paths[i];
        g->refs[keep] = g->refs[i];
        g->rows[keep] = g->rows[i];
        g->trees[i] = t;
        g->manifests[i] = mf;
        g->tmp_paths[i] = p;
        g->refs[i] = r;
        g->rows[i] = row;
        keep++;
    }
    db_read_end(s, txn); /* before register_trees' write transaction */
    if (!rc && keep)
        rc = register_trees(s, keep, g->tmp_paths, g->rows, g->refs);
    for (size_t i = 0; i < keep && !rc; i++) {
        plan_strlist_add(&out->added, g->rows[i].basename);
        store_listing_keep(s, g->rows[i].basename, &g->trees[i], &g->manifests[i]);
    }
    for (size_t i = 0; i < nlocks; i++)
        digest_unlock(lock_fds[i]);
    return rc;
}

/* The end of an import once every archive is extracted into w (rc: how
 * that went): stage, check the references, flush, register, say what was
 * there already, and release the batch. */
static int import_conclude(plan_store *s, batch_archive *arcs, size_t nfiles, work_dir *w,
                           candidates *cand, int rc, plan_strlist *contents,
                           plan_import_result *out)
{
    plan_ctx *ctx = s->ctx;
    staged g = {0};
    for (size_t f = 0; f < nfiles && !rc; f++)
        rc = stage_archive(s, arcs[f].file, w->path, &arcs[f].meta, cand, &g);
    if (!rc)
        rc = check_batch_refs(s, arcs, nfiles);
    /* Every staged tree is on the store's file system: one flush for all. */
    if (!rc && g.n)
        rc = store_flush(s, w->path);
    if (!rc && g.n)
        rc = register_staged(s, &g, out);
    /* Whatever the batch holds and did not add was there already (or was
     * registered by another process meanwhile): the caller's too. */
    plan_strmap told;
    plan_strmap_init(&told);
    for (size_t i = 0; !rc && i < out->added.len; i++)
        plan_strmap_put(&told, out->added.items[i], 1);
    for (size_t i = 0; !rc && i < out->present.len; i++)
        plan_strmap_put(&told, out->present.items[i], 1);
    for (size_t f = 0; f < nfiles && !rc; f++)
        for (size_t i = 0; i < arcs[f].meta.n; i++) {
            const char *bn = arcs[f].meta.paths[i].basename;
            if (plan_strmap_put(&told, bn, 1))
                plan_strlist_add(&out->present, bn);
        }
    plan_strmap_release(&told);
    for (size_t f = 0; f < nfiles && contents; f++) {
        plan_strlist_init(&contents[f]);
        for (size_t i = 0; i < arcs[f].meta.n; i++)
            plan_strlist_add(&contents[f], arcs[f].meta.paths[i].basename);
    }
    staged_release(&g);
    work_dir_remove(w);
    for (size_t f = 0; f < nfiles; f++) {
        export_close(&arcs[f].reader); /* before the bytes it reads */
        import_meta_release(&arcs[f].meta);
        import_meta_release(&arcs[f].pre);
        plan_buf_release(&arcs[f].tar);
    }
    candidates_release(cand);
    /* Paths that were already there are held as well. */
    for (size_t i = 0; !rc && i < out->present.len; i++) {
        int there = hold_if_present(s, out->present.items[i]);
        if (there == 0)
            rc = plan_fail(ctx, PLAN_ERR_FAILED, "'%s' was collected while '%s' was being "
                                                 "imported: import it again",
                           out->present.items[i], nfiles == 1 ? arcs[0].file : "a batch");
        else if (there < 0)
            rc = there;
    }
    if (rc) {
        plan_import_result_release(out);
        for (size_t f = 0; f < nfiles && contents; f++)
            plan_strlist_release(&contents[f]);
    }
    plan_strlist_sort(&out->added);
    plan_strlist_sort(&out->present);
    return rc;
}

int plan_store_import_many(plan_store *s, const char *const *files, size_t nfiles,
                           plan_strlist *contents, plan_import_result *out)
{
    plan_strlist_init(&out->added);
    plan_strlist_init(&out->present);
    batch_archive *arcs = plan_xcalloc(nfiles ? nfiles : 1, sizeof(*arcs));
    for (size_t f = 0; f < nfiles; f++) {
        arcs[f].file = files[f];
        plan_buf_init(&arcs[f].tar);
    }
    work_dir w = {0};
    candidates cand = {0};
    int rc = candidates_collect(s, arcs, nfiles, &cand);
    if (!rc) {
        plan_wanted(s, arcs, nfiles);
        rc = work_dir_create(s, &w);
    }
    if (!rc)
        rc = extract_batch(s, arcs, nfiles, &w, &cand);
    rc = import_conclude(s, arcs, nfiles, &w, &cand, rc, contents, out);
    free(arcs);
    return rc;
}

int plan_store_import(plan_store *s, const char *file, plan_import_result *out)
{
    return plan_store_import_many(s, &file, 1, NULL, out);
}

/* ---------- what an export says it holds ---------- */

void plan_export_info_release(plan_export_info *info)
{
    plan_strlist_release(&info->basenames);
    plan_strlist_release(&info->content_hashes);
}

int plan_export_describe(plan_ctx *ctx, const char *file, const char *store_dir,
                         plan_export_info *out)
{
    plan_strlist_init(&out->basenames);
    plan_strlist_init(&out->content_hashes);
    import_env env = {.ctx = ctx, .store_dir = store_dir};
    plan_buf none;
    plan_buf_init(&none);
    import_meta meta = {0};
    int rc = export_read_meta(&env, file, &none, &meta);
    for (size_t i = 0; i < meta.n && !rc; i++) {
        char text[PLAN_HASH_TEXT_LEN + 1];
        plan_hash_format(&meta.paths[i].content, text);
        plan_strlist_add(&out->basenames, meta.paths[i].basename);
        plan_strlist_add(&out->content_hashes, text);
    }
    import_meta_release(&meta);
    if (rc)
        plan_export_info_release(out);
    return rc;
}

/* ---------- a batch whose archives arrive one by one ---------- */

/* While a caller downloads archives, workers extract the ones that have
 * arrived.  What the reference scan looks for is known beforehand: the
 * registered paths and the paths the caller expects (a registry's signed
 * index names each archive's path), so an archive holding any other path
 * is refused rather than scanned for incompletely. */
struct plan_import_stream {
    plan_store *s;
    batch_archive *arcs;   /* slot k: the archive the caller added as k */
    char **files;          /* owned copies of the file names */
    plan_buf *zdata;       /* slot k's compressed bytes, when it came in memory */
    size_t n;              /* slots */
    size_t *order;         /* slots in the order they were added */
    size_t added, taken;   /* guarded by mu */
    bool closed;           /* guarded by mu: nothing more will be added */
    pthread_mutex_t mu;
    pthread_cond_t more;
    plan_strlist expected; /* sorted basenames */
    bool *present;         /* per expected path: in the store already */
    atomic_uchar *claimed; /* per expected path: an archive extracts it */
    candidates cand;
    work_dir w;
    extract_arg x;
    atomic_size_t kept;    /* bytes of small archives held in memory */
    plan_first_error err;
    pthread_t threads[BATCH_THREADS_MAX];
    unsigned nthreads;
};

/* Decide what this archive's paths are: expected ones only, each
 * extracted by the first archive that holds it, unless present. */
static int stream_plan(plan_import_stream *st, batch_worker *w, batch_archive *ba)
{
    for (size_t i = 0; i < ba->pre.n; i++) {
        import_path *ip = &ba->pre.paths[i];
        ssize_t k = plan_strlist_index_sorted(&st->expected, ip->basename);
        if (k < 0)
            return plan_fail(w->ctx, PLAN_ERR_HOSTILE,
                             "'%s' holds '%s', which is not a path its index names: refused",
                             ba->file, ip->basename);
        ip->wanted = !st->present[k] && !atomic_exchange(&st->claimed[k], 1);
    }
    return 0;
}

/* An archive that came in memory is written to the work directory when it
 * cannot be read from memory (too large once decompressed, or the batch
 * holds too much already): then it is read as a file is. */
static int spill(plan_import_stream *st, batch_worker *w, size_t k)
{
    batch_archive *ba = &st->arcs[k];
    char *file = plan_xasprintf("%s/.archive-%zu.tar.zst", st->w.path, k);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int e = fd < 0 ? -errno : plan_fs_write_all(fd, st->zdata[k].data, st->zdata[k].len);
    if (fd >= 0 && close(fd) != 0 && !e)
        e = -errno;
    if (e) {
        int rc = plan_fail_errno(w->ctx, PLAN_ERR_IO, -e, "cannot write '%s'", file);
        free(file);
        return rc;
    }
    plan_buf_release(&st->zdata[k]);
    plan_buf_release(&ba->tar);
    free(st->files[k]);
    st->files[k] = file;
    ba->file = file;
    return 0;
}

/* The first reading of slot k: from memory when it came so and fits. */
static int stream_read_first(plan_import_stream *st, batch_worker *w, size_t k)
{
    batch_archive *ba = &st->arcs[k];
    if (!st->zdata[k].len)
        return read_first_step(w, ba, &st->kept);
    ba->size = st->zdata[k].len;
    decompress_small(&st->zdata[k], w->dctx, &ba->tar);
    if (!ba->tar.len || !memory_take(&st->kept, ba->tar.cap)) {
        int rc = spill(st, w, k);
        return rc ? rc : read_first_step(w, ba, &st->kept);
    }
    plan_buf_release(&st->zdata[k]); /* the tar is all that is needed now */
    char *buf = plan_xmalloc(IO_CHUNK);
    int rc = export_open(&w->env, ba->file, &ba->tar, buf, &ba->reader, &ba->pre);
    free(buf);
    return rc;
}

static void *stream_worker(void *arg)
{
    plan_import_stream *st = arg;
    batch_worker w = {.ctx = plan_ctx_new(), .dctx = zread_dctx_new()};
    w.env = (import_env){.ctx = w.ctx, .store_dir = st->s->store_dir,
                         .writeback = store_flushes(st->s)};
    for (;;) {
        pthread_mutex_lock(&st->mu);
        while (st->taken == st->added && !st->closed && !plan_first_error_failed(&st->err))
            pthread_cond_wait(&st->more, &st->mu);
        bool stop = st->taken == st->added || plan_first_error_failed(&st->err);
        size_t k = stop ? 0 : st->order[st->taken++];
        pthread_mutex_unlock(&st->mu);
        if (stop)
            break;
        batch_archive *ba = &st->arcs[k];
        int rc = stream_read_first(st, &w, k);
        size_t held = ba->tar.cap; /* counted in st->kept, released by extract_step */
        if (!rc)
            rc = stream_plan(st, &w, ba);
        if (!rc)
            rc = extract_step(&w, ba, &st->x);
        atomic_fetch_sub(&st->kept, held);
        if (rc) {
            plan_first_error_set(&st->err, rc, plan_ctx_error(w.ctx));
            pthread_mutex_lock(&st->mu);
            pthread_cond_broadcast(&st->more);
            pthread_mutex_unlock(&st->mu);
            break;
        }
    }
    ZSTD_freeDCtx(w.dctx);
    plan_ctx_free(w.ctx);
    return NULL;
}

static void stream_free(plan_import_stream *st)
{
    for (size_t k = 0; k < st->n; k++) {
        free(st->files[k]);
        plan_buf_release(&st->zdata[k]);
    }
    free(st->files);
    free(st->zdata);
    free(st->arcs);
    free(st->order);
    free(st->present);
    free(st->claimed);
    plan_strlist_release(&st->expected);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->more);
    free(st);
}

int plan_store_import_stream_begin(plan_store *s, size_t n, uint64_t total_bytes,
                                   const plan_strlist *expected, plan_import_stream **out)
{
    plan_import_stream *st = plan_xcalloc(1, sizeof(*st));
    st->s = s;
    st->n = n;
    st->arcs = plan_xcalloc(n ? n : 1, sizeof(*st->arcs));
    st->files = plan_xcalloc(n ? n : 1, sizeof(*st->files));
    st->zdata = plan_xcalloc(n ? n : 1, sizeof(*st->zdata));
    st->order = plan_xcalloc(n ? n : 1, sizeof(*st->order));
    for (size_t k = 0; k < n; k++) {
        plan_buf_init(&st->arcs[k].tar);
        plan_buf_init(&st->zdata[k]);
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->more, NULL);
    plan_strlist_init(&st->expected);
    for (size_t i = 0; i < expected->len; i++)
        plan_strlist_add(&st->expected, expected->items[i]);
    plan_strlist_sort(&st->expected);
    size_t unique = 0; /* sorted: the same name twice stands side by side */
    for (size_t i = 0; i < st->expected.len; i++) {
        if (unique && !strcmp(st->expected.items[unique - 1], st->expected.items[i]))
            free(st->expected.items[i]);
        else
            st->expected.items[unique++] = st->expected.items[i];
    }
    st->expected.len = unique;
    st->present = plan_xcalloc(st->expected.len + 1, sizeof(bool));
    st->claimed = plan_xcalloc(st->expected.len + 1, sizeof(atomic_uchar));
    atomic_init(&st->kept, 0);
    plan_first_error_init(&st->err);
    /* Asked here, on the caller's thread: the database is not shared with
     * the workers. */

    bool txn = db_read_begin(s);
    int rc = candidates_start(s, &st->cand);
    for (size_t i = 0; i < st->expected.len && !rc; i++) {
        const char *bn = st->expected.items[i];
        if (!intent_line_ok(bn)) {
            rc = plan_fail(s->ctx, PLAN_ERR_INVALID, "'%s' is not the name of a store path",
                           bn);
            break;
        }
        int there = path_present(s, bn);
        if (there < 0)
            rc = there;
        st->present[i] = there == 1;
        candidates_add(&st->cand, bn);
    }
    db_read_end(s, txn);
    if (!rc) {
        st->cand.scanner = ref_scanner_new(&st->cand.digests);
        rc = work_dir_create(s, &st->w);
    }
    st->x = (extract_arg){.workdir = st->w.path, .scanner = st->cand.scanner,
                          .modes = modes_for(&st->w), .ctx = s->ctx, .total = total_bytes};
    atomic_init(&st->x.done, 0);
    atomic_init(&st->x.quiet, true); /* the caller's downloads report progress meanwhile */
    unsigned threads = batch_threads(s, n);
    for (unsigned t = 0; t < threads && !rc; t++)
        if (pthread_create(&st->threads[st->nthreads], NULL, stream_worker, st) == 0)
            st->nthreads++;
    if (!rc && !st->nthreads)
        rc = plan_fail(s->ctx, PLAN_ERR_FAILED, "cannot start a thread to import with");
    if (rc) {
        candidates_release(&st->cand);
        work_dir_remove(&st->w);
        plan_first_error_finish(&st->err, NULL);
        stream_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static void stream_queue(plan_import_stream *st, size_t slot)
{
    pthread_mutex_lock(&st->mu);
    st->order[st->added++] = slot;
    pthread_cond_signal(&st->more);
    pthread_mutex_unlock(&st->mu);
}

/* 0 when slot can take an archive.  Once a worker has failed, nothing is
 * taken any more: the caller then stops downloading the rest, and
 * finish reports the worker's error. */
static int stream_slot_free(plan_import_stream *st, size_t slot)
{
    int failed = plan_first_error_code(&st->err);
    if (failed)
        return failed;
    if (slot < st->n && !st->files[slot])
        return 0;
    return plan_fail(st->s->ctx, PLAN_ERR_INVALID, "import slot %zu is taken or out of range",
                     slot);
}

int plan_store_import_stream_add(plan_import_stream *st, size_t slot, const char *file)
{
    int rc = stream_slot_free(st, slot);
    if (rc)
        return rc;
    st->files[slot] = plan_xstrdup(file);
    st->arcs[slot].file = st->files[slot];
    struct stat sb;
    st->arcs[slot].size = stat(file, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    stream_queue(st, slot);
    return 0;
}

int plan_store_import_stream_add_memory(plan_import_stream *st, size_t slot, const char *name,
                                        plan_buf *data)
{
    int rc = stream_slot_free(st, slot);
    if (rc)
        return rc;
    if (!data->len)
        return plan_fail(st->s->ctx, PLAN_ERR_HOSTILE, "'%s' is empty: not a plan export",
                         name);
    st->files[slot] = plan_xstrdup(name);
    st->arcs[slot].file = st->files[slot];
    st->zdata[slot] = *data;
    plan_buf_init(data);
    stream_queue(st, slot);
    return 0;
}

int plan_store_import_stream_finish(plan_import_stream *st, bool abandon, plan_strlist *contents,
                                    plan_import_result *out)
{
    plan_store *s = st->s;
    plan_strlist_init(&out->added);
    plan_strlist_init(&out->present);
    /* Abandoned because a worker failed (the archives stopped being
     * taken): that failure is the one to report, not the caller's. */
    bool workers_failed = plan_first_error_failed(&st->err);
    if (abandon && !workers_failed)
        plan_first_error_set(&st->err, PLAN_ERR_FAILED, "the import was abandoned");
    abandon = abandon && !workers_failed;
    /* From here the wait is the extraction's: it reports its progress. */
    if (!abandon) {
        plan_emit_phase(s->ctx, "unpacking", st->x.total, true);
        atomic_store(&st->x.quiet, false);
        uint64_t done = atomic_load(&st->x.done);
        if (done)
            plan_emit_progress(s->ctx, "unpacking", done, st->x.total, true);
    }
    pthread_mutex_lock(&st->mu);
    st->closed = true;
    pthread_cond_broadcast(&st->more);
    pthread_mutex_unlock(&st->mu);
    for (unsigned t = 0; t < st->nthreads; t++)
        pthread_join(st->threads[t], NULL);
    if (!abandon)
        plan_emit_done(s->ctx, "unpacking");
    int rc = plan_first_error_finish(&st->err, abandon ? NULL : s->ctx);
    if (abandon)
        rc = PLAN_ERR_FAILED; /* the caller's own error is on the context */
    if (!rc && st->added != st->n)
        rc = plan_fail(s->ctx, PLAN_ERR_INVALID, "%zu archives were announced for the import, "
                                                 "%zu given",
                       st->n, st->added);
    /* After a failure nothing is staged: slots never filled are only
     * released. */
    rc = import_conclude(s, st->arcs, st->n, &st->w, &st->cand, rc, contents, out);
    stream_free(st);
    return rc;
}

/* ---------- repair ---------- */

static bool want_named(import_path *ip, void *arg)
{
    return !strcmp(ip->basename, (const char *)arg);
}

int plan_store_repair(plan_store *s, const char *arg, const char *file)
{
    plan_ctx *ctx = s->ctx;
    import_env env = {.ctx = ctx, .store_dir = s->store_dir, .writeback = store_flushes(s)};
    char *basename = NULL;
    int rc = plan_store_resolve(s, arg, &basename);
    if (rc)
        return rc;
    plan_path_info *info = NULL;
    import_meta meta = {0};
    work_dir w = {0};
    tree t = {0};
    int lock_fd = -1;
    if ((rc = plan_store_path_info(s, basename, &info)) || (rc = work_dir_create(s, &w)) ||
        (rc = extract_archive(&env, file, NULL, w.path, &meta, want_named, basename, NULL,
                             modes_for(&w), false, NULL)))
        goto out;
    import_path *ip = find_import_path(&meta, basename, strlen(basename));
    if (!ip) {
        rc = plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                       "'%s' does not contain '%s': export it from a store that has it "
                       "('plan store export PATH -o FILE')",
                       file, basename);
        goto out;
    }
    char registered[PLAN_HASH_TEXT_LEN + 1];
    plan_hash_format(&ip->content, registered);
    if (strcmp(registered, info->content_hash) != 0) {
        rc = plan_fail(ctx, PLAN_ERR_CORRUPT,
                       "'%s' holds '%s' with content hash %s, but the store registered %s",
                       file, basename, registered, info->content_hash);
        goto out;
    }
    char *dir = plan_path_join(w.path, basename);
    rc = check_extracted(s, file, dir, ip, &t);
    if (!rc)
        rc = tree_seal(s, dir, &t, false);
    if (!rc)
        rc = digest_lock(s, info->digest, &lock_fd);
    if (!rc) {
        db_path_row row = {.basename = basename, .digest = info->digest, .name = info->name,
                           .version = info->version, .content_hash = info->content_hash,
                           .size = info->size};
        rc = register_tree(s, dir, &row, NULL);
    }
    free(dir);
out:
    digest_unlock(lock_fd);
    tree_release(&t);
    work_dir_remove(&w);
    import_meta_release(&meta);
    plan_path_info_free(info);
    free(basename);
    return rc;
}
