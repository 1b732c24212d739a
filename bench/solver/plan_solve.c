/* plan_solve.c - run plan's solver on a problem file (docs/solver.md) and
 * report the time of the solve alone, for bench/solver/run.sh.
 *
 *   plan_solve FILE      prints "solved|unsolvable SECONDS PACKAGES DECISIONS CONFLICTS"
 *   plan_solve -v FILE   also prints the solution or the explanation */
#include "resolver/resolver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Check the answer independently of the solver: every requirement of the
 * request and of every chosen version is met by the chosen version. */
static int check(plan_ctx *ctx, plan_resolver_problem *pb, const plan_resolution *res)
{
    plan_resolver_provider prov = plan_resolver_index_provider(pb->index);
    plan_strlist names, ranges;
    int bad = 0;
    for (size_t i = 0; i <= res->count && !bad; i++) {
        plan_strlist_init(&names);
        plan_strlist_init(&ranges);
        if (i == res->count) {
            for (size_t k = 0; k < pb->req_names.len; k++) {
                plan_strlist_add(&names, pb->req_names.items[k]);
                plan_strlist_add(&ranges, pb->req_ranges.items[k]);
            }
        } else if (prov.dependencies(prov.user, ctx, res->packages[i].name,
                                     res->packages[i].version, &names, &ranges)) {
            bad = 1;
        }
        for (size_t k = 0; k < names.len && !bad; k++) {
            const char *v = NULL;
            for (size_t j = 0; j < res->count; j++)
                if (!strcmp(res->packages[j].name, names.items[k]))
                    v = res->packages[j].version;
            plan_semver sv;
            plan_semver_range *rg;
            if (!v) {
                bad = plan_fail(ctx, PLAN_ERR_FAILED, "'%s' is needed but not chosen",
                                names.items[k]);
                break;
            }
            plan_semver_parse(ctx, v, &sv);
            plan_semver_range_parse(ctx, ranges.items[k], &rg);
            if (!plan_semver_range_satisfies(rg, &sv))
                bad = plan_fail(ctx, PLAN_ERR_FAILED, "%s %s does not satisfy %s",
                                names.items[k], v, ranges.items[k]);
            plan_semver_release(&sv);
            plan_semver_range_free(rg);
        }
        plan_strlist_release(&names);
        plan_strlist_release(&ranges);
    }
    return bad;
}

int main(int argc, char **argv)
{
    bool verbose = argc == 3 && !strcmp(argv[1], "-v");
    if (argc != 2 + verbose) {
        fprintf(stderr, "usage: plan_solve [-v] FILE\n");
        return 2;
    }
    const char *path = argv[1 + verbose];
    plan_ctx *ctx = plan_ctx_new();
    plan_buf text;
    plan_buf_init(&text);
    if (plan_fs_read_file(path, (size_t)1 << 30, &text)) {
        fprintf(stderr, "plan_solve: cannot read '%s'\n", path);
        return 1;
    }
    plan_resolver_problem pb;
    if (plan_resolver_problem_parse(ctx, path, text.data, &pb)) {
        fprintf(stderr, "plan_solve: %s\n", plan_ctx_error(ctx));
        return 1;
    }
    plan_resolver *r = plan_resolver_problem_resolver(ctx, &pb);
    if (!r) {
        fprintf(stderr, "plan_solve: %s\n", plan_ctx_error(ctx));
        return 1;
    }
    const plan_resolution *res;
    double t0 = now();
    int rc = plan_resolver_solve(r, &res);
    double t = now() - t0;
    if (rc && !plan_resolver_explain(r)) {
        fprintf(stderr, "plan_solve: %s\n", plan_ctx_error(ctx));
        return 1;
    }
    if (rc == 0 && check(ctx, &pb, res)) {
        fprintf(stderr, "plan_solve: WRONG SOLUTION: %s\n", plan_ctx_error(ctx));
        return 1;
    }
    if (rc == 0)
        printf("solved %.6f %zu %llu %llu\n", t, res->count,
               (unsigned long long)res->decisions, (unsigned long long)res->conflicts);
    else
        printf("unsolvable %.6f 0 0 0\n", t);
    if (verbose) {
        if (rc == 0) {
            char *s = plan_resolution_format(res);
            fputs(s, stdout);
            free(s);
        } else {
            fputs(plan_resolver_explain(r), stdout);
        }
    }
    plan_resolver_free(r);
    plan_resolver_problem_release(&pb);
    plan_buf_release(&text);
    plan_ctx_free(ctx);
    return 0;
}
