/* plan-registry export: the read side as plain files, for any web server,
 * CDN or object store.  Running it again over an older export refreshes it. */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int copy_bytes(int in, int out)
{
    char buf[1 << 16];
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL)
            return -1;
        break; /* another filesystem: plain reads and writes */
    }
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return -1;
    return n < 0 ? -1 : 0;
}

/* Copy src to dst through a temporary name, so a mirror being served never
 * shows half a file. */
static int copy_file(reg *r, const char *src, const char *dst, bool immutable)
{
    struct stat a, b;
    if (immutable && stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_size == b.st_size)
        return 0; /* named by content or by version: the same bytes */
    char *tmp = plan_xasprintf("%s.tmp-%ld", dst, (long)getpid());
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;
    if (in < 0 || out < 0 || copy_bytes(in, out) != 0 || fsync(out) != 0 ||
        rename(tmp, dst) != 0)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot copy '%s' to '%s'", src, dst);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

static int copy_tree(reg *r, const char *src, const char *dst, bool immutable)
{
    int e = plan_fs_mkdirs(dst, 0755);
    if (e)
        return plan_fail_errno(r->ctx, PLAN_ERR_IO, -e, "cannot create '%s'", dst);
    DIR *d = opendir(src);
    if (!d)
        return plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot read '%s'", src);
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *from = plan_path_join(src, de->d_name), *to = plan_path_join(dst, de->d_name);
        struct stat st;
        if (lstat(from, &st) != 0)
            rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot read '%s'", from);
        else if (S_ISDIR(st.st_mode))
            rc = copy_tree(r, from, to, immutable);
        else if (S_ISREG(st.st_mode))
            rc = copy_file(r, from, to, immutable);
        free(from);
        free(to);
    }
    closedir(d);
    return rc;
}

int reg_export(reg *r, const char *dest)
{
    /* The mirror's freshness starts now: it verifies for one timestamp
     * lifetime, then must be exported again. */
    int rc = reg_refresh(r, (int64_t)time(NULL), true, NULL);
    if (rc)
        return rc;
    /* Hold the write lock: no publish lands halfway through the copy. */
    if ((rc = reg_exec(r, "BEGIN IMMEDIATE")) != 0)
        return rc;
    /* Blobs, then index files, then the snapshot, then the timestamp: a
     * client reading the mirror while it is refreshed finds what the
     * timestamp names. */
    static const struct {
        const char *name;
        bool dir, immutable, optional;
    } order[] = {{"archives", true, true, false},
                 {"recipes", true, true, false},
                 {"index", true, false, false},
                 /* before what the new key signed: a client led to the
                  * new key finds how it got there */
                 {"rotations.json", false, false, true},
                 {"snapshot.json", false, false, false},
                 {"timestamp.json", false, false, false}};
    int e = plan_fs_mkdirs(dest, 0755);
    if (e)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, -e, "cannot create '%s'", dest);
    for (size_t i = 0; !rc && i < sizeof(order) / sizeof(order[0]); i++) {
        char *from = plan_path_join(r->static_dir, order[i].name);
        char *to = plan_path_join(dest, order[i].name);
        struct stat st;
        if (order[i].optional && lstat(from, &st) != 0)
            ; /* never rotated: nothing to copy */
        else
            rc = order[i].dir ? copy_tree(r, from, to, order[i].immutable)
                              : copy_file(r, from, to, false);
        free(from);
        free(to);
    }
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    if (!rc)
        plan_fs_fsync_dir(dest);
    return rc;
}
