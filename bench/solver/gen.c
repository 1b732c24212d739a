/* gen.c - the solver benchmark's synthetic problem (issue 4), written both
 * as a plan problem file (docs/solver.md) and as a libsolv testcase, from
 * one seeded generator so that both solvers see the same graph.
 *
 *   gen N Q SEED OUT.test OUT.t     the random SemVer graph
 *   gen --pathological OUT.test OUT.t
 *
 * N packages p0..pN-1 with 20 versions each (majors 1..4, minors 0..4).
 * Every version depends on 4 distinct packages among the next 99, each as
 * ">=M.0.0 <M+1.0.0", with M = 4 (the newest major) with probability Q and
 * otherwise uniform in [max(1, own major - 1), 4].  The request installs
 * p0..p19, any version.  The pathological case: 500 versions of one
 * package, each depending on a package that does not exist. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng;

/* splitmix64: tiny, seedable, the same on every platform. */
static uint64_t next(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(void) { return (double)(next() >> 11) / 9007199254740992.0; }

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void testcase_head(FILE *t)
{
    fprintf(t, "repo system 0 testtags <inline>\n");
    fprintf(t, "repo available 0 testtags <inline>\n");
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--pathological")) {
        FILE *p = open_out(argv[2]), *t = open_out(argv[3]);
        fprintf(p, "# pathological: 500 versions, each needing a missing package\n[index]\n");
        testcase_head(t);
        for (int i = 0; i < 500; i++) {
            fprintf(p, "a %d.%d.0\n  ghost ^1.0.0\n", 1 + i / 100, i % 100);
            fprintf(t, "#>=Pkg: a %d.%d.0 1 noarch\n#>=Req: ghost >= 1.0.0\n", 1 + i / 100,
                    i % 100);
        }
        fprintf(p, "[request]\na *\n");
        fprintf(t, "system x86_64 rpm system\njob install name a\n");
        fclose(p);
        fclose(t);
        return 0;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: gen N Q SEED OUT.test OUT.t | gen --pathological OUT.test OUT.t\n");
        return 2;
    }
    int n = atoi(argv[1]);
    double q = atof(argv[2]);
    rng = strtoull(argv[3], NULL, 10);
    FILE *p = open_out(argv[4]), *t = open_out(argv[5]);
    fprintf(p, "# synthetic: N=%d q=%.2f seed=%s\n[index]\n", n, q, argv[3]);
    testcase_head(t);
    for (int i = 0; i < n; i++) {
        for (int major = 1; major <= 4; major++)
            for (int minor = 0; minor <= 4; minor++) {
                fprintf(p, "p%d %d.%d.0\n", i, major, minor);
                fprintf(t, "#>=Pkg: p%d %d.%d.0 1 noarch\n", i, major, minor);
                int avail = n - 1 - i < 99 ? n - 1 - i : 99;
                int want = avail < 4 ? avail : 4, chosen[4], k = 0;
                while (k < want) {
                    int d = i + 1 + (int)(next() % (uint64_t)avail), dup = 0;
                    for (int j = 0; j < k; j++)
                        dup |= chosen[j] == d;
                    if (dup)
                        continue;
                    chosen[k++] = d;
                    int lo = major - 1 < 1 ? 1 : major - 1;
                    int m = uniform() < q ? 4 : lo + (int)(next() % (uint64_t)(4 - lo + 1));
                    fprintf(p, "  p%d >=%d.0.0 <%d.0.0\n", d, m, m + 1);
                    /* Two requirements on one name: with one version per
                     * name (libsolv's implicit obsoletes) that is the range. */
                    fprintf(t, "#>=Req: p%d >= %d.0.0\n#>=Req: p%d < %d.0.0\n", d, m, d, m + 1);
                }
            }
    }
    fprintf(p, "[request]\n");
    for (int i = 0; i < 20 && i < n; i++) {
        fprintf(p, "p%d *\n", i);
        if (i == 0)
            fprintf(t, "system x86_64 rpm system\n");
        fprintf(t, "job install name p%d\n", i);
    }
    fclose(p);
    fclose(t);
    return 0;
}
