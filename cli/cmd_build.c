/* plan build RECIPE [-o LINK] [--check] [--no-sandbox] [-L] [--recipes DIR]... */
#include "cli.h"
#include "../recipes/recipes.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* -o LINK: the link, and a root for the collector that points at the link
 * (so removing the link releases the path). */
static int make_out_link(cli *c, plan_store *store, const char *link, const char *path)
{
    struct stat st;
    if (lstat(link, &st) == 0) {
        if (!S_ISLNK(st.st_mode))
            return cli_error(c, "'%s' exists and is not a symlink: choose another -o name",
                             link);
        unlink(link);
    }
    if (symlink(path, link) != 0)
        return cli_error(c, "cannot create the link '%s': %s", link, strerror(errno));
    return plan_store_add_link_root(store, link) ? cli_fail(c) : EXIT_OK;
}

int cmd_build(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"check", no_argument, NULL, 'c'},
        {"no-sandbox", no_argument, NULL, 'S'},
        {"print-build-logs", no_argument, NULL, 'L'},
        {"recipes", required_argument, NULL, 'r'},
        {"jobs", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *link = NULL;
    bool check = false, sandbox = true, stream = false;
    long jobs = 0;
    plan_strlist repos;
    plan_strlist_init(&repos);
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "o:Lj:", opts, NULL)) != -1) {
        switch (o) {
        case 'o': link = optarg; break;
        case 'c': check = true; break;
        case 'S': sandbox = false; break;
        case 'L': stream = true; break;
        case 'r': plan_strlist_add(&repos, optarg); break;
        case 'j': {
            char *end;
            jobs = strtol(optarg, &end, 10);
            if (*end || jobs < 1 || jobs > 1024) {
                plan_strlist_release(&repos);
                return cli_usage(c, cmd, "--jobs wants a number from 1 to 1024, not '%s'", optarg);
            }
            break;
        }
        default:
            plan_strlist_release(&repos);
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) {
        plan_strlist_release(&repos);
        return cli_usage(c, cmd, "give exactly one recipe file to build");
    }
    const char *file = argv[optind];
    plan_recipe *recipe = NULL;
    plan_recipe_repo *repo = NULL;
    plan_store *store = NULL;
    char *cache = cli_cache_dir(c), *logs = cli_log_dir(c);
    int rc = EXIT_OK;
    if (plan_recipe_load(c->ctx, file, &recipe)) {
        rc = cli_fail(c);
        goto out;
    }
    /* Without --recipes, the recipe's own folder (not its subfolders) is
     * the repository, so a folder of recipes builds with its dependencies
     * as it is.  A recipe without dependencies reads no other recipe. */
    bool needs_repo = recipe->n_depends || recipe->n_build_depends;
    int repo_rc = 0;
    if (needs_repo && repos.len)
        repo_rc = plan_recipe_repo_open(c->ctx, (const char *const *)repos.items, repos.len,
                                        &repo);
    else if (needs_repo)
        repo_rc = plan_recipe_repo_open_folder(c->ctx, recipe->dir, &repo);
    if (repo_rc) {
        rc = cli_fail(c);
        goto out;
    }
    if (cli_open_store(c, &store)) {
        rc = EXIT_FAILURE_;
        goto out;
    }
    plan_build_opts bo = {.cache_dir = cache, .log_dir = logs, .repo = repo, .sandbox = sandbox,
                          .stream_log = stream, .rebuild_check = check, .jobs = (unsigned)jobs,
                          .cancel = cli_catch_interrupts()};
    plan_build_result res;
    if (plan_build(store, recipe, &bo, &res)) {
        rc = cli_fail(c);
        goto out;
    }
    if (check) {
        if (c->json) {
            json_t *d = json_array();
            for (size_t i = 0; i < res.differences.len; i++)
                json_array_append_new(d, json_string(res.differences.items[i]));
            cli_print_json(json_pack("{s:s, s:b, s:o}", "path", res.path, "reproducible",
                                     res.differences.len == 0, "differences", d));
        } else if (!res.differences.len) {
            printf("%s\n", res.path);
            fflush(stdout);
            if (!c->quiet)
                fprintf(stderr, "plan: reproducible: the rebuild is identical to %s\n", res.path);
        } else {
            fprintf(stderr, "plan: not reproducible: the rebuild of %s differs in %zu "
                            "entr%s:\n", res.path, res.differences.len,
                    res.differences.len == 1 ? "y" : "ies");
            for (size_t i = 0; i < res.differences.len; i++)
                printf("%s\n", res.differences.items[i]);
        }
        rc = res.differences.len ? EXIT_FAILURE_ : EXIT_OK;
    } else {
        if (c->json)
            cli_print_json(json_pack("{s:s, s:b, s:s?}", "path", res.path, "reused", res.reused,
                                     "log", res.log));
        else
            puts(res.path);
        if (c->verbose)
            fprintf(stderr, "plan: %s\n", res.reused ? "already built: nothing to do"
                                                     : "built and registered");
    }
    if (!rc && link)
        rc = make_out_link(c, store, link, res.path);
    plan_build_result_release(&res);
out:
    plan_store_close(store);
    plan_recipe_repo_free(repo);
    plan_recipe_free(recipe);
    plan_strlist_release(&repos);
    free(cache);
    free(logs);
    return rc;
}
