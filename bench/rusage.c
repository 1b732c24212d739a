/* rusage OUT CMD [ARGS...]: run CMD, wait for it, and write one line to OUT:
 *
 *     <wall seconds> <user seconds> <system seconds> <max RSS in KiB>
 *
 * The figures are the child's own (wait4), the wall time is measured with
 * CLOCK_MONOTONIC from just before fork to just after wait.  CMD's output
 * goes where rusage's goes.  The exit status is CMD's (128+N if it was killed
 * by signal N, 127 if it could not be started).  bench/env.sh uses it for the
 * collector benchmark, which reports the peak memory next to the time
 * (/usr/bin/time -v reports the same ru_maxrss, but is not always there).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rusage OUT CMD [ARGS...]\n");
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "rusage: cannot run '%s': %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("rusage: wait4");
            return 127;
        }
    clock_gettime(CLOCK_MONOTONIC, &b);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        fprintf(stderr, "rusage: cannot write '%s': %s\n", argv[1], strerror(errno));
        return 127;
    }
    fprintf(f, "%.6f %.6f %.6f %ld\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
            tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss);
    if (fclose(f) != 0)
        return 127;
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
