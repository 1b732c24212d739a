/* plan log PATH: the build log of a store path. */
#include "cli.h"
#include "../recipes/recipes.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_log(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc != 2)
        return cli_usage(c, cmd, "give one store path");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    char *logs = cli_log_dir(c), *file = NULL;
    int rc = EXIT_OK;
    if (plan_build_log_path(store, logs, argv[1], &file)) {
        rc = cli_fail(c);
    } else if (c->json) {
        cli_print_json(json_pack("{s:s}", "log", file));
    } else {
        FILE *f = fopen(file, "re");
        char buf[65536];
        size_t n;
        while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
            fwrite(buf, 1, n, stdout);
        if (f)
            fclose(f);
        else
            rc = cli_error(c, "cannot read '%s'", file);
    }
    free(file);
    free(logs);
    plan_store_close(store);
    return rc;
}
