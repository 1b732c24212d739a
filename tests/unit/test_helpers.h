/* Helpers shared by the unit tests: temporary directories and small trees.
 * Included by each unit test program. */
#ifndef PLAN_TEST_HELPERS_H
#define PLAN_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

static inline char *th_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = plan_xasprintf("%s/plan-unit-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

static inline void th_write(const char *dir, const char *rel, const void *data, size_t len,
                            mode_t mode)
{
    char *p = plan_path_join(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(plan_fs_mkdirs(p, 0755), 0);
    *slash = '/';
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    chmod(p, mode);
    free(p);
}

static inline void th_write_str(const char *dir, const char *rel, const char *s)
{
    th_write(dir, rel, s, strlen(s), 0644);
}

static inline void th_symlink(const char *dir, const char *rel, const char *target)
{
    char *p = plan_path_join(dir, rel);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

/* Whether rel exists below dir (a link itself counts, whatever it names). */
static inline bool th_exists(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    struct stat st;
    bool ok = lstat(p, &st) == 0;
    free(p);
    return ok;
}

static inline void th_rmtree(char *dir)
{
    plan_fs_rmtree(dir);
    free(dir);
}

#endif
