/* plan lock [-f plan.yaml] [--check] [--upgrade] */
#include "cli.h"
#include "project.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lock's text with every store path left out (paths restored after). */
static char *format_without_paths(plan_lock *l)
{
    plan_lock_sort(l); /* so that the indices below stay put */
    char **saved = plan_xcalloc(l->n ? l->n : 1, sizeof(char *));
    for (size_t i = 0; i < l->n; i++) {
        saved[i] = l->packages[i].path;
        l->packages[i].path = NULL;
    }
    char *text = plan_lock_format(l);
    for (size_t i = 0; i < l->n; i++)
        l->packages[i].path = saved[i];
    free(saved);
    return text;
}

int cmd_lock(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"check", no_argument, NULL, 'c'},
        {"upgrade", no_argument, NULL, 'u'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *file = "plan.yaml";
    bool check = false, upgrade = false;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
        switch (o) {
        case 'f': file = optarg; break;
        case 'c': check = true; break;
        case 'u': upgrade = true; break;
        default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage(c, cmd, "'plan lock' takes no arguments (use -f FILE for another plan.yaml)");
    plan_project *pr = NULL;
    plan_lock *old = NULL, *fresh = NULL;
    char *lock_file = cli_lock_path(file), *old_text = NULL, *new_text = NULL;
    int rc = EXIT_OK;
    if (plan_project_load(c->ctx, file, &pr)) {
        rc = cli_fail(c);
        goto out;
    }
    int r = plan_lock_read(c->ctx, lock_file, &old);
    if (r && r != PLAN_ERR_NOT_FOUND && !check) {
        /* plan lock is how a broken lock gets fixed: resolve afresh. */
        plan_warn(c->ctx, "ignoring %s: %s", lock_file, plan_ctx_error(c->ctx));
    }
    plan_ctx_clear_error(c->ctx);
    if (cli_resolve_project(c, pr, upgrade ? NULL : old, &fresh)) {
        rc = cli_fail(c);
        goto out;
    }
    new_text = plan_lock_format(fresh);
    /* Compared byte for byte with the file: a lock is fresh only if it is
     * exactly what plan lock would write now. */
    plan_buf raw;
    plan_buf_init(&raw);
    if (plan_fs_read_file(lock_file, 64u << 20, &raw) == 0)
        old_text = plan_buf_detach(&raw);
    plan_buf_release(&raw);
    if (check) {
        /* Stale: no lock, a file that is not exactly what plan lock writes,
         * or a lock that differs from what plan.yaml resolves to now (a
         * request, a version or a recipe changed).  Store paths are left
         * out of the comparison: building a locked package (which records
         * its path at the next plan lock) does not make the lock stale. */
        char *canonical = old ? plan_lock_format(old) : NULL;
        char *a = old ? format_without_paths(old) : NULL, *b = format_without_paths(fresh);
        bool fresh_enough = old_text && canonical && !strcmp(old_text, canonical) && a &&
                            !strcmp(a, b);
        free(canonical);
        free(a);
        free(b);
        if (c->json)
            cli_print_json(json_pack("{s:s, s:b}", "lock", lock_file, "up_to_date", fresh_enough));
        if (!fresh_enough) {
            if (!c->json)
                cli_error(c, "'%s' is %s: run 'plan lock' and commit the result", lock_file,
                          old_text ? "stale (it is not what plan.yaml and its recipes resolve "
                                     "to now)"
                                   : "missing");
            rc = EXIT_FAILURE_;
        } else if (!c->quiet && !c->json) {
            fprintf(stderr, "plan: %s is up to date\n", lock_file);
        }
        goto out;
    }
    if (old_text && !strcmp(old_text, new_text)) {
        if (!c->quiet)
            fprintf(stderr, "plan: %s is up to date\n", lock_file);
    } else if (plan_lock_write(c->ctx, lock_file, fresh)) {
        rc = cli_fail(c);
        goto out;
    } else if (!c->quiet) {
        fprintf(stderr, "plan: wrote %s (%zu package%s)\n", lock_file, fresh->n,
                fresh->n == 1 ? "" : "s");
    }
    if (c->json)
        cli_print_json(json_pack("{s:s, s:I}", "lock", lock_file, "packages", (json_int_t)fresh->n));
out:
    free(old_text);
    free(new_text);
    free(lock_file);
    plan_lock_free(old);
    plan_lock_free(fresh);
    plan_project_free(pr);
    return rc;
}
