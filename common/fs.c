/* Filesystem helpers shared by the modules.  They return 0 or -errno and
 * leave the wording of errors to the caller, who knows the object. */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int plan_fs_mkdirs(const char *path, mode_t mode)
{
    char *copy = plan_xstrdup(path);
    int rc = 0;
    for (char *p = copy + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, mode) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    free(copy);
    return rc;
}

/* Remove the contents of the directory open as fd, then nothing else: the
 * caller removes the directory itself.  Store directories are mode 0555, so
 * each one is made writable before its entries are unlinked. */
static int rmtree_contents(int fd)
{
    int rc = 0;
    fchmod(fd, 0700);
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -errno;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        /* What is known not to be a directory goes with one call: a run
         * root is mostly symlinks. */
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN &&
            (unlinkat(dirfd(dir), de->d_name, 0) == 0 || errno == ENOENT))
            continue;
        int r = plan_fs_rmtree_at(dirfd(dir), de->d_name);
        if (r && !rc)
            rc = r;
    }
    closedir(dir);
    return rc;
}

int plan_fs_rmtree_at(int parent, const char *name)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent, name, 0) != 0 && errno != ENOENT)
            return -errno;
        return 0;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = rmtree_contents(fd);
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT && !rc)
        rc = -errno;
    return rc;
}

int plan_fs_rmtree(const char *path)
{
    return plan_fs_rmtree_at(AT_FDCWD, path);
}

int plan_fs_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int plan_fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int plan_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    return plan_fs_write_replace(path, data, len, mode, true);
}

int plan_fs_write_replace(const char *path, const void *data, size_t len, mode_t mode,
                          bool flush)
{
    char *tmp = plan_xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        int rc = -errno;
        free(tmp);
        return rc;
    }
    int rc = plan_fs_write_all(fd, data, len);
    if (!rc && flush && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int plan_fs_read_file(const char *path, size_t max, plan_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = plan_fs_read_fd(fd, max, out);
    close(fd);
    return rc;
}

int plan_fs_read_fd(int fd, size_t max, plan_buf *out)
{
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > max) {
            rc = -EFBIG;
            break;
        }
        plan_buf_add(out, chunk, (size_t)n);
    }
    return rc;
}

char *plan_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la && a[la - 1] == '/')
        return plan_xasprintf("%s%s", a, b);
    return plan_xasprintf("%s/%s", a, b);
}

char *plan_path_absolute(const char *path)
{
    plan_buf in;
    plan_buf_init(&in);
    if (path[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd))) {
            plan_buf_release(&in);
            return NULL;
        }
        plan_buf_adds(&in, cwd);
        plan_buf_addc(&in, '/');
    }
    plan_buf_adds(&in, path);

    /* Normalise: collapse "//", drop ".", resolve ".." lexically. */
    plan_buf out;
    plan_buf_init(&out);
    const char *p = in.data;
    while (*p) {
        while (*p == '/')
            p++;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || (n == 1 && start[0] == '.'))
            continue;
        if (n == 2 && start[0] == '.' && start[1] == '.') {
            char *slash = strrchr(out.data, '/');
            plan_buf_truncate(&out, slash ? (size_t)(slash - out.data) : 0);
            continue;
        }
        plan_buf_addc(&out, '/');
        plan_buf_add(&out, start, n);
    }
    if (out.len == 0)
        plan_buf_addc(&out, '/');
    plan_buf_release(&in);
    return plan_buf_detach(&out);
}

bool plan_path_link_inside(const char *rel, const char *target)
{
    if (!*target || target[0] == '/')
        return false;
    /* Depth of the link's directory below the root, then walk the target. */
    int depth = 0;
    for (const char *p = rel; *p; p++)
        if (*p == '/' && p[1])
            depth++;
    for (const char *p = target; *p;) {
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 2 && start[0] == '.' && start[1] == '.') {
            if (--depth < 0)
                return false;
        } else if (n > 0 && !(n == 1 && start[0] == '.')) {
            depth++;
        }
        while (*p == '/')
            p++;
    }
    return true;
}

mode_t plan_umask(void)
{
    /* umask(2) can only be read by setting it, which would race with
     * other threads creating files. */
    plan_buf st;
    plan_buf_init(&st);
    mode_t mask = (mode_t)-1;
    if (plan_fs_read_file("/proc/self/status", 1 << 16, &st) == 0) {
        plan_buf_addc(&st, '\0');
        const char *line = strstr(st.data, "\nUmask:");
        char *end = NULL;
        unsigned long v = line ? strtoul(line + 7, &end, 8) : 0;
        if (line && end != line + 7 && v <= 0777)
            mask = (mode_t)v;
    }
    plan_buf_release(&st);
    return mask;
}
