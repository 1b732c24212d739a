/* httpd: a tiny static file server on loopback for the CLI tests (real
 * HTTP through libmicrohttpd, so plan's libcurl client is tested against a
 * real server).  Usage: httpd DIR PORTFILE [MODE] — serves DIR on
 * 127.0.0.1 at a free port, writes the port to PORTFILE, and runs until
 * killed.  Single-range requests ("bytes=N-") are answered with 206.
 *
 * MODE makes it misbehave on purpose, for the client's defences:
 *   redirect=URL   every request is answered 302 to URL + the path
 *   truncate=N     the first full request of each archive (/archives/...)
 *                  longer than N bytes sends N bytes and then breaks the
 *                  connection
 * Every request is logged to stderr as "METHOD PATH [RANGE]". */
#include <fcntl.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

typedef struct server {
    const char *root;
    const char *redirect;   /* or NULL */
    long truncate;          /* 0: never */
    char cut[64][512];      /* files already cut once */
    int ncut;
} server;

typedef struct cut_reader {
    int fd;
    long limit;
} cut_reader;

static ssize_t read_cut(void *cls, uint64_t pos, char *buf, size_t max)
{
    cut_reader *r = cls;
    if ((long)pos >= r->limit)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if ((long)(pos + max) > r->limit)
        max = (size_t)(r->limit - (long)pos);
    ssize_t n = pread(r->fd, buf, max, (off_t)pos);
    return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void free_cut(void *cls)
{
    cut_reader *r = cls;
    close(r->fd);
    free(r);
}

static bool cut_before(server *s, const char *url)
{
    for (int i = 0; i < s->ncut; i++)
        if (!strcmp(s->cut[i], url))
            return true;
    if (s->ncut < 64)
        snprintf(s->cut[s->ncut++], sizeof(s->cut[0]), "%s", url);
    return false;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)version, (void)data, (void)size;
    server *s = cls;
    /* The first call only announces the request; answering on the second
     * keeps the connection alive. */
    if (!*state) {
        *state = (void *)1;
        return MHD_YES;
    }
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    fprintf(stderr, "%s %s %s\n", method, url, range ? range : "");
    struct MHD_Response *r;
    enum MHD_Result ret;
    if (s->redirect) {
        char to[4096];
        snprintf(to, sizeof(to), "%s%s", s->redirect, url);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", to);
        ret = MHD_queue_response(c, MHD_HTTP_FOUND, r);
        MHD_destroy_response(r);
        return ret;
    }
    char path[4096];
    struct stat st;
    int fd = -1;
    if (strcmp(method, "GET") == 0 && !strstr(url, "..") &&
        snprintf(path, sizeof(path), "%s%s", s->root, url) < (int)sizeof(path) &&
        stat(path, &st) == 0 && S_ISREG(st.st_mode))
        fd = open(path, O_RDONLY);
    long from = 0;
    if (fd >= 0 && range && sscanf(range, "bytes=%ld-", &from) == 1 && from > 0 &&
        from < (long)st.st_size) {
        r = MHD_create_response_from_fd_at_offset64((uint64_t)(st.st_size - from), fd,
                                                    (uint64_t)from);
        char cr[128];
        snprintf(cr, sizeof(cr), "bytes %ld-%ld/%ld", from, (long)st.st_size - 1,
                 (long)st.st_size);
        MHD_add_response_header(r, "Content-Range", cr);
        ret = MHD_queue_response(c, MHD_HTTP_PARTIAL_CONTENT, r);
    } else if (fd >= 0 && s->truncate && st.st_size > s->truncate &&
               !strncmp(url, "/archives/", 10) && !cut_before(s, url)) {
        cut_reader *cr = malloc(sizeof(*cr));
        cr->fd = fd;
        cr->limit = s->truncate;
        r = MHD_create_response_from_callback((uint64_t)st.st_size, 4096, read_cut, cr,
                                              free_cut);
        ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    } else if (fd >= 0) {
        r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
        ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    } else {
        static const char missing[] = "not found\n";
        r = MHD_create_response_from_buffer(sizeof(missing) - 1, (void *)missing,
                                            MHD_RESPMEM_PERSISTENT);
        ret = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, r);
    }
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: httpd DIR PORTFILE [redirect=URL|truncate=N]\n");
        return 2;
    }
    static server s;
    s.root = argv[1];
    if (argc == 4 && !strncmp(argv[3], "redirect=", 9))
        s.redirect = argv[3] + 9;
    else if (argc == 4 && !strncmp(argv[3], "truncate=", 9))
        s.truncate = atol(argv[3] + 9);
    else if (argc == 4) {
        fprintf(stderr, "httpd: unknown mode '%s'\n", argv[3]);
        return 2;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = 0; /* any free port */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            answer, &s, MHD_OPTION_SOCK_ADDR, &addr,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "httpd: cannot start\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    FILE *f = fopen(argv[2], "w");
    if (!f || !info)
        return 1;
    fprintf(f, "%u\n", (unsigned)info->port);
    fclose(f);
    for (;;)
        pause();
}
