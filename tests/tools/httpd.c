/* httpd: a tiny static file server on loopback for the CLI tests (real
 * HTTP through libmicrohttpd, so plan's libcurl client is tested against a
 * real server).  Usage: httpd DIR PORTFILE — serves DIR on 127.0.0.1 at a
 * free port, writes the port to PORTFILE, and runs until killed. */
#include <fcntl.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

static const char *root;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)cls, (void)version, (void)data, (void)size, (void)state;
    struct MHD_Response *r;
    enum MHD_Result ret;
    char path[4096];
    struct stat st;
    int fd = -1;
    if (strcmp(method, "GET") == 0 && !strstr(url, "..") &&
        snprintf(path, sizeof(path), "%s%s", root, url) < (int)sizeof(path) &&
        stat(path, &st) == 0 && S_ISREG(st.st_mode))
        fd = open(path, O_RDONLY);
    if (fd < 0) {
        static const char missing[] = "not found\n";
        r = MHD_create_response_from_buffer(sizeof(missing) - 1, (void *)missing,
                                            MHD_RESPMEM_PERSISTENT);
        ret = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, r);
    } else {
        r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
        ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    }
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: httpd DIR PORTFILE\n");
        return 2;
    }
    root = argv[1];
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = 0; /* any free port */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            answer, NULL, MHD_OPTION_SOCK_ADDR, &addr,
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
