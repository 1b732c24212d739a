/* plan store repair PATH [--from FILE]: from an export, else from the
 * registries that publish it. */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

/* The archive of the path, from the first registry that publishes it. */
static int archive_from_registries(cli *c, plan_store *store, const char *arg, char **archive)
{
    plan_path_info *info = NULL;
    if (plan_store_path_info(store, arg, &info))
        return cli_fail(c);
    cli_sources src;
    int rc = EXIT_OK;
    if (cli_sources_open(c, NULL, UPDATE_STALE, &src))
        rc = cli_fail(c);
    else if (!src.reg)
        rc = cli_error(c, "no registries are configured: repair from an export with --from "
                          "FILE, or 'plan registry add' the one that publishes %s %s",
                       info->name, info->version);
    else {
        char *cache = cli_cache_dir(c);
        int r = plan_regsource_archive(src.reg, cache, info->name, info->version,
                                       info->basename, archive);
        /* Looked up in caches too fresh to be asked again: the path may
         * have been published since.  Ask, then look once more. */
        int refreshed;
        if (r == PLAN_ERR_NOT_FOUND && cli_sources_refresh(c, &src, &refreshed)) {
            if (!(r = refreshed)) {
                plan_ctx_clear_error(c->ctx);
                r = plan_regsource_archive(src.reg, cache, info->name, info->version,
                                           info->basename, archive);
            }
        }
        if (r)
            rc = cli_fail(c);
        free(cache);
    }
    cli_sources_close(&src);
    plan_path_info_free(info);
    return rc;
}

int cmd_store_repair(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'f')
            from = optarg;
        else
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
    if (optind + 1 != argc)
        return cli_usage(c, cmd, "give exactly one store path to repair");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    char *downloaded = NULL;
    /* A download is held against plan gc until the repair has used it. */
    int cache_lock = -1;
    char *cache = cli_cache_dir(c);
    int rc = from ? EXIT_OK
                  : plan_download_cache_lock(c->ctx, cache, &cache_lock) ? cli_fail(c)
                  : archive_from_registries(c, store, argv[optind], &downloaded);
    free(cache);
    if (!from)
        from = downloaded;
    if (rc == EXIT_OK && plan_store_repair(store, argv[optind], from))
        rc = cli_fail(c);
    else if (rc == EXIT_OK && c->json)
        cli_print_json(json_pack("{s:s, s:s}", "repaired", argv[optind], "from", from));
    else if (rc == EXIT_OK && !c->quiet)
        fprintf(stderr, "plan: repaired %s from %s\n", argv[optind], from);
    plan_download_cache_unlock(cache_lock);
    plan_store_close(store);
    free(downloaded);
    return rc;
}
