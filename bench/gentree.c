/* gentree: write a deterministic synthetic tree for the benchmarks.
 *
 *   gentree DIR FILES BYTES SEED
 *
 * Creates DIR (which must not exist) holding exactly FILES regular files
 * whose sizes add up to exactly BYTES, spread over a two-level directory
 * hierarchy (16 top directories, 8 subdirectories each).  Sizes follow a
 * log-uniform distribution from 0 bytes to about 2 MiB, scaled to the total;
 * contents are pseudo-random (splitmix64 seeded with SEED), so they do not
 * compress.  One file in seven is executable.  The same arguments always give
 * the same tree, byte for byte.  Only the benchmark script uses this. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng_state;

static uint64_t next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "gentree: %s '%s': %s\n", what, path, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: gentree DIR FILES BYTES SEED\n");
        return 2;
    }
    const char *top = argv[1];
    long files = strtol(argv[2], NULL, 10);
    uint64_t bytes = strtoull(argv[3], NULL, 10);
    rng_state = strtoull(argv[4], NULL, 10);
    if (files <= 0) {
        fprintf(stderr, "gentree: FILES must be positive\n");
        return 2;
    }

    /* Sizes first: log-uniform weights, scaled so they add up exactly. */
    double *w = calloc((size_t)files, sizeof(double));
    uint64_t *size = calloc((size_t)files, sizeof(uint64_t));
    if (!w || !size)
        return 1;
    double sum = 0;
    for (long i = 0; i < files; i++) {
        double u = (double)(next() >> 11) / 9007199254740992.0; /* [0,1) */
        w[i] = exp(u * log(2.0 * 1024 * 1024)) - 1.0;
        sum += w[i];
    }
    uint64_t given = 0;
    for (long i = 0; i < files; i++) {
        size[i] = (uint64_t)(w[i] / sum * (double)bytes);
        given += size[i];
    }
    size[files - 1] += bytes - given; /* rounding remainder */

    if (mkdir(top, 0755) != 0)
        die("cannot create", top);
    char path[4096];
    static uint64_t block[8192]; /* 64 KiB */
    for (long i = 0; i < files; i++) {
        unsigned d1 = (unsigned)(i % 16), d2 = (unsigned)((i / 16) % 8);
        snprintf(path, sizeof path, "%s/d%02u", top, d1);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            die("cannot create", path);
        snprintf(path, sizeof path, "%s/d%02u/s%u", top, d1, d2);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            die("cannot create", path);
        snprintf(path, sizeof path, "%s/d%02u/s%u/f%05ld.bin", top, d1, d2, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, i % 7 == 0 ? 0755 : 0644);
        if (fd < 0)
            die("cannot create", path);
        uint64_t left = size[i];
        while (left) {
            size_t n = left < sizeof block ? (size_t)left : sizeof block;
            for (size_t k = 0; k < (n + 7) / 8; k++)
                block[k] = next();
            if (write(fd, block, n) != (ssize_t)n)
                die("cannot write", path);
            left -= n;
        }
        if (close(fd) != 0)
            die("cannot close", path);
    }
    free(w);
    free(size);
    return 0;
}
