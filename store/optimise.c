/* Optimisation: identical files across store paths become hard links to
 * one inode kept under <store>/.links, named by the file's hash and
 * executable bit (the bit lives in the inode, so it must match). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Replace file by a hard link to link_path.  The parent directory is
 * read-only, so it is opened for the swap and sealed again after. */
static int replace_with_link(const char *link_path, const char *file)
{
    char *parent = plan_xstrdup(file);
    char *slash = strrchr(parent, '/');
    *slash = '\0';
    char *tmp = plan_xasprintf("%s/.plan-optimise-%ld", parent, (long)getpid());
    int rc = 0;
    if (chmod(parent, 0755) != 0) {
        rc = -errno;
        goto out;
    }
    unlink(tmp);
    if (link(link_path, tmp) != 0)
        rc = -errno;
    else if (rename(tmp, file) != 0) {
        rc = -errno;
        unlink(tmp);
    }
    struct timespec times[2] = {{1, 0}, {1, 0}};
    chmod(parent, 0555);
    utimensat(AT_FDCWD, parent, times, 0);
out:
    free(tmp);
    free(parent);
    return rc;
}

static int optimise_path(plan_store *s, const char *basename, plan_optimise_result *out)
{
    plan_ctx *ctx = s->ctx;
    char *root = store_path_of(s, basename);
    tree t = {0};
    /* No masking: two files are only the same if their bytes are. */
    int rc = tree_walk(ctx, root, &t);
    if (!rc)
        rc = tree_hash_files(ctx, root, &t, NULL, s->threads);
    for (size_t i = 0; i < t.len && !rc; i++) {
        tree_entry *e = &t.items[i];
        if (e->type != TREE_FILE || e->size == 0)
            continue;
        char hex[2 * PLAN_HASH_BYTES + 1];
        plan_hex_encode(e->digest.bytes, PLAN_HASH_BYTES, hex);
        char *link_path = plan_xasprintf("%s/%s%s", s->links_dir, hex, e->exec ? "x" : "");
        char *file = plan_xasprintf("%s/%s", root, e->path);
        struct stat ls, fs;
        if (lstat(link_path, &ls) != 0) {
            if (link(file, link_path) != 0 && errno != EEXIST)
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot link '%s' to '%s'",
                                     file, link_path);
        } else if (lstat(file, &fs) == 0 && fs.st_ino != ls.st_ino &&
                   ls.st_size == fs.st_size) {
            int r = replace_with_link(link_path, file);
            if (r)
                rc = plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot replace '%s' by a link",
                                     file);
            else {
                out->files_linked++;
                if (fs.st_nlink == 1) /* its last name is gone: the space is free */
                    out->bytes_saved += (uint64_t)fs.st_size;
            }
        }
        free(link_path);
        free(file);
    }
    tree_release(&t);
    free(root);
    return rc;
}

int plan_store_optimise(plan_store *s, plan_optimise_result *out)
{
    memset(out, 0, sizeof(*out));
    /* A link shares an inode: bytes not yet on disk would be shared by a
     * settled path too, which nothing checks after a power cut.  So what
     * is unsettled is flushed first. */
    if (!store_flushes(s)) {
        int rc = plan_store_settle(s);
        if (rc)
            return rc;
    }
    int r = plan_fs_mkdirs(s->links_dir, 0755);
    if (r)
        return plan_fail_errno(s->ctx, PLAN_ERR_IO, -r, "cannot create '%s'", s->links_dir);
    plan_strlist all;
    plan_strlist_init(&all);
    int rc = plan_store_list(s, &all);
    plan_emit_phase(s->ctx, "optimising", all.len, false);
    for (size_t i = 0; i < all.len && !rc; i++) {
        int lock_fd;
        /* The digest lock keeps a repair of the same path out meanwhile. */
        if ((rc = digest_lock(s, all.items[i], &lock_fd)))
            break;
        rc = optimise_path(s, all.items[i], out);
        digest_unlock(lock_fd);
        plan_emit_progress(s->ctx, "optimising", i + 1, all.len, false);
    }
    plan_emit_done(s->ctx, "optimising");
    plan_strlist_release(&all);
    return rc;
}
