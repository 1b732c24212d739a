/* Unpacking sources.  An archive is hostile even when its hash is pinned
 * (the pin only says it is the file the recipe's author saw), so libarchive
 * writes it with its secure flags: no absolute paths, no '..', no writing
 * through symlinks; only files, directories, symlinks and hard links
 * inside the tree are accepted; setuid/setgid are never restored; and the
 * total size and entry count are capped against decompression bombs. */
#include "recipes_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNPACK_MAX_BYTES (16ULL << 30)
#define UNPACK_MAX_ENTRIES 1000000

/* Remove strip leading components from path; NULL if nothing is left. */
static const char *strip_path(const char *path, int strip)
{
    const char *p = path;
    for (int i = 0; i < strip; i++) {
        const char *slash = strchr(p, '/');
        if (!slash)
            return NULL;
        p = slash + 1;
        while (*p == '/')
            p++;
    }
    return *p ? p : NULL;
}

/* A source that is not an archive is copied as it is, streamed. */
static int copy_plain_file(plan_ctx *ctx, const char *file, const char *dir,
                           const char *display)
{
    const char *base = strrchr(display, '/');
    base = base ? base + 1 : display;
    if (!*base || !strcmp(base, "..") || !strcmp(base, "."))
        base = "source";
    char *dst = plan_path_join(dir, base);
    int in = open(file, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = 0;
    if (in < 0 || out < 0)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot copy source '%s'", display);
    char buf[1 << 16];
    while (!rc) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && write(out, buf, (size_t)n) != n))
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot copy source '%s'", display);
        if (n <= 0)
            break;
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(dst);
    return rc;
}

int recipe_unpack(plan_ctx *ctx, const char *archive, const char *dir, int strip,
                  const char *display)
{
    struct archive *in = archive_read_new();
    archive_read_support_filter_all(in);
    /* Real archive formats only.  In particular not mtree, whose entries
     * can name any host file as their contents, nor raw. */
    archive_read_support_format_tar(in);
    archive_read_support_format_zip(in);
    archive_read_support_format_7zip(in);
    archive_read_support_format_cpio(in);
    struct archive *out = archive_write_disk_new();
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
                                            ARCHIVE_EXTRACT_TIME);
    int rc = 0;
    char *cwd = getcwd(NULL, 0);
    if (archive_read_open_filename(in, archive, 1 << 16) != ARCHIVE_OK) {
        const char *why = archive_error_string(in) ? archive_error_string(in) : "";
        if (strstr(why, "Unrecognized archive format"))
            rc = copy_plain_file(ctx, archive, dir, display); /* not an archive */
        else
            rc = plan_fail(ctx, PLAN_ERR_IO, "cannot read source '%s': %s", display, why);
        goto out;
    }
    /* archive_write_disk works relative to the current directory. */
    if (chdir(dir) != 0) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot enter '%s'", dir);
        goto out;
    }
    uint64_t bytes = 0, entries = 0;
    struct archive_entry *e;
    char *buf = plan_xmalloc(1 << 16);
    for (;;) {
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            if (entries == 0 && archive_errno(in) != EIO &&
                strstr(archive_error_string(in) ? archive_error_string(in) : "",
                       "Unrecognized archive format")) {
                /* Not an archive: a single file source. */
                if (chdir(cwd) == 0)
                    rc = copy_plain_file(ctx, archive, dir, display);
                else
                    rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot return to '%s'", cwd);
                free(buf);
                goto out_nochdir;
            }
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "source '%s' is damaged: %s", display,
                           archive_error_string(in));
            break;
        }
        const char *name = archive_entry_pathname(e);
        mode_t type = archive_entry_filetype(e);
        const char *link = archive_entry_hardlink(e);
        if (!name) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "source '%s' has an entry without a name",
                           display);
            break;
        }
        if (type == AE_IFLNK && !plan_path_link_inside(strip_path(name, strip) ? strip_path(name, strip) : name,
                                                   archive_entry_symlink(e) ? archive_entry_symlink(e) : "")) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                           "refusing source '%s': symlink '%s' points outside the source tree "
                           "('%s')",
                           display, name, archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
            break;
        }
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !link) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                           "refusing source '%s': entry '%s' is a device, fifo or socket",
                           display, name);
            break;
        }
        if (++entries > UNPACK_MAX_ENTRIES) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "refusing source '%s': more than %d entries",
                           display, UNPACK_MAX_ENTRIES);
            break;
        }
        const char *stripped = strip_path(name, strip);
        if (!stripped) {
            archive_read_data_skip(in);
            continue;
        }
        char *new_name = plan_xstrdup(stripped);
        archive_entry_set_pathname(e, new_name);
        free(new_name);
        if (link) {
            const char *l = strip_path(link, strip);
            if (!l) {
                rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                               "refusing source '%s': hard link '%s' points above the stripped "
                               "top",
                               display, name);
                break;
            }
            char *new_link = plan_xstrdup(l);
            archive_entry_set_hardlink(e, new_link);
            free(new_link);
        }
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777 & ~(mode_t)0022);
        archive_entry_set_uid(e, getuid());
        archive_entry_set_gid(e, getgid());
        if (archive_write_header(out, e) != ARCHIVE_OK) {
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "refusing source '%s': entry '%s': %s",
                           display, name, archive_error_string(out));
            break;
        }
        for (;;) {
            la_ssize_t n = archive_read_data(in, buf, 1 << 16);
            if (n < 0) {
                rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "source '%s' is damaged at '%s': %s",
                               display, name, archive_error_string(in));
                break;
            }
            if (n == 0)
                break;
            bytes += (uint64_t)n;
            if (bytes > UNPACK_MAX_BYTES) {
                rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                               "refusing source '%s': it unpacks to more than 16 GiB", display);
                break;
            }
            if (archive_write_data(out, buf, (size_t)n) != n) {
                rc = plan_fail(ctx, PLAN_ERR_IO, "cannot write '%s': %s", name,
                               archive_error_string(out));
                break;
            }
        }
        if (rc)
            break;
        if (archive_write_finish_entry(out) != ARCHIVE_OK) {
            rc = plan_fail(ctx, PLAN_ERR_IO, "cannot finish '%s': %s", name,
                           archive_error_string(out));
            break;
        }
    }
    free(buf);
out:
    if (cwd && chdir(cwd) != 0 && !rc)
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot return to '%s'", cwd);
out_nochdir:
    free(cwd);
    archive_write_close(out);
    archive_write_free(out);
    archive_read_free(in);
    return rc;
}
