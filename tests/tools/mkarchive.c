/* mkarchive: write a tar.zst from a line-by-line spec, for tests that feed
 * hostile archives to 'plan store import' (tests/cli/import_hostile.bats).
 * It writes exactly what the spec says -- absolute paths, '..', links out
 * of the tree, devices, setuid bits, sizes that lie -- which is the point.
 *
 * usage: mkarchive OUT.tar.zst < SPEC
 *
 * One entry per line, fields separated by single spaces; blank lines and
 * lines starting with '#' are skipped.  MODE is octal.
 *   file PATH MODE SIZE [CONTENT]  regular file whose header declares SIZE
 *                                  bytes (SIZE '-' means CONTENT's length).
 *                                  Without CONTENT the data is SIZE zero
 *                                  bytes, written in chunks.  CONTENT is the
 *                                  rest of the line; if shorter than SIZE the
 *                                  entry is zero-padded, unless 'cut' follows.
 *   from PATH MODE FILE            regular file holding the bytes of FILE
 *   meta FILE                      same as: from plan-export.json 0444 FILE
 *   dir PATH MODE
 *   symlink PATH TARGET
 *   hardlink PATH TARGET
 *   fifo PATH | chr PATH | blk PATH
 *   cut                            end the tar stream right here: no padding
 *                                  for the last entry, no end-of-archive
 *                                  marker (the zstd stream stays well formed)
 *
 * The tar (pax_restricted) is written unblocked into a callback that feeds
 * a second archive, format raw with the zstd filter; 'cut' just stops the
 * forwarding, which is how a truncated tar inside valid zstd is made. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK ((size_t)64 * 1024)

typedef struct sink {
    struct archive *zst; /* raw + zstd: the file on disk */
    bool cut;            /* drop everything from now on */
} sink;

static unsigned long line_no;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mkarchive: line %lu: ", line_no);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check(struct archive *a, int r, const char *what)
{
    if (r != ARCHIVE_OK)
        die("%s: %s", what, archive_error_string(a) ? archive_error_string(a) : "failed");
}

static la_ssize_t forward(struct archive *tar, void *arg, const void *buf, size_t len)
{
    sink *s = arg;
    if (s->cut)
        return (la_ssize_t)len;
    la_ssize_t n = archive_write_data(s->zst, buf, len);
    if (n < 0 || (size_t)n != len) {
        archive_set_error(tar, EIO, "zstd stream: %s", archive_error_string(s->zst));
        return -1;
    }
    return n;
}

/* Next space-separated field, or NULL; *rest moves past it. */
static char *field(char **rest)
{
    char *p = *rest;
    if (!p || !*p)
        return NULL;
    char *sp = strchr(p, ' ');
    if (sp) {
        *sp = '\0';
        *rest = sp + 1;
    } else {
        *rest = p + strlen(p);
    }
    return p;
}

static char *need(char **rest, const char *name)
{
    char *f = field(rest);
    if (!f)
        die("missing %s", name);
    return f;
}

static unsigned parse_mode(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 8);
    if (errno || *end || end == s || v > 07777)
        die("bad mode '%s'", s);
    return (unsigned)v;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v > INT64_MAX)
        die("bad size '%s'", s);
    return (uint64_t)v;
}

static void write_data(struct archive *tar, const void *buf, size_t len)
{
    la_ssize_t n = archive_write_data(tar, buf, len);
    if (n < 0 || (size_t)n != len)
        die("writing data: %s", archive_error_string(tar));
}

static void write_zeros(struct archive *tar, uint64_t n)
{
    static const char zeros[CHUNK];
    while (n > 0) {
        size_t k = n < CHUNK ? (size_t)n : CHUNK;
        write_data(tar, zeros, k);
        n -= k;
    }
}

static void write_fd(struct archive *tar, int fd, const char *file)
{
    static char buf[CHUNK];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("cannot read '%s'", file);
        if (n == 0)
            return;
        write_data(tar, buf, (size_t)n);
    }
}

static void regular(struct archive *tar, struct archive_entry *e, const char *path,
                    unsigned mode, const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    off_t end = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
    if (end < 0 || lseek(fd, 0, SEEK_SET) != 0)
        die("cannot open '%s'", file);
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, (la_int64_t)end);
    check(tar, archive_write_header(tar, e), "header");
    write_fd(tar, fd, file);
    close(fd);
}

static void entry(sink *s, struct archive *tar, struct archive_entry *e, char *line)
{
    char *rest = line;
    const char *kind = field(&rest);
    if (!kind || kind[0] == '#')
        return;
    archive_entry_clear(e);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, 1, 0);
    if (!strcmp(kind, "cut")) {
        s->cut = true;
        return;
    }
    if (!strcmp(kind, "meta")) {
        regular(tar, e, "plan-export.json", 0444, need(&rest, "FILE"));
        return;
    }
    const char *path = need(&rest, "PATH");
    archive_entry_set_pathname(e, path);
    if (!strcmp(kind, "file")) {
        unsigned mode = parse_mode(need(&rest, "MODE"));
        const char *sz = need(&rest, "SIZE");
        const char *content = *rest ? rest : NULL;
        uint64_t size = !strcmp(sz, "-") && content ? (uint64_t)strlen(content) : parse_size(sz);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, mode);
        archive_entry_set_size(e, (la_int64_t)size);
        check(tar, archive_write_header(tar, e), "header");
        if (!content)
            write_zeros(tar, size);
        else
            write_data(tar, content, strlen(content) < size ? strlen(content) : (size_t)size);
    } else if (!strcmp(kind, "from")) {
        unsigned mode = parse_mode(need(&rest, "MODE"));
        regular(tar, e, path, mode, need(&rest, "FILE"));
    } else if (!strcmp(kind, "dir")) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, parse_mode(need(&rest, "MODE")));
        check(tar, archive_write_header(tar, e), "header");
    } else if (!strcmp(kind, "symlink") || !strcmp(kind, "hardlink")) {
        const char *target = need(&rest, "TARGET");
        archive_entry_set_filetype(e, kind[0] == 's' ? AE_IFLNK : AE_IFREG);
        archive_entry_set_perm(e, kind[0] == 's' ? 0777 : 0444);
        if (kind[0] == 's')
            archive_entry_set_symlink(e, target);
        else
            archive_entry_set_hardlink(e, target);
        check(tar, archive_write_header(tar, e), "header");
    } else if (!strcmp(kind, "fifo") || !strcmp(kind, "chr") || !strcmp(kind, "blk")) {
        archive_entry_set_filetype(e, kind[0] == 'f' ? AE_IFIFO
                                      : kind[0] == 'c' ? AE_IFCHR
                                                       : AE_IFBLK);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_rdevmajor(e, 1); /* 1,3 is /dev/null */
        archive_entry_set_rdevminor(e, 3);
        check(tar, archive_write_header(tar, e), "header");
    } else {
        die("unknown entry kind '%s'", kind);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkarchive OUT.tar.zst < SPEC\n");
        return 2;
    }
    sink s = {.zst = archive_write_new(), .cut = false};
    struct archive *tar = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    if (!s.zst || !tar || !e)
        die("%s", "out of memory");

    check(s.zst, archive_write_set_format_raw(s.zst), "raw format");
    check(s.zst, archive_write_add_filter_zstd(s.zst), "zstd filter");
    check(s.zst, archive_write_open_filename(s.zst, argv[1]), "open");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "tar");
    check(s.zst, archive_write_header(s.zst, e), "raw header");

    check(tar, archive_write_set_format_pax_restricted(tar), "pax format");
    check(tar, archive_write_set_bytes_per_block(tar, 0), "unblocked");
    check(tar, archive_write_open2(tar, &s, NULL, forward, NULL, NULL), "open tar");

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        entry(&s, tar, e, line);
    }
    free(line);

    check(tar, archive_write_close(tar), "close tar");
    check(s.zst, archive_write_close(s.zst), "close zstd");
    archive_entry_free(e);
    if (archive_write_free(tar) != ARCHIVE_OK || archive_write_free(s.zst) != ARCHIVE_OK)
        die("%s", "cannot release the archives");
    return 0;
}
