/* plan store repair PATH --from FILE */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

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
    if (!from)
        return cli_usage(c, cmd,
                         "say where to restore it from with --from FILE (an export that "
                         "contains it); repairing from a registry comes with registries");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    int rc = plan_store_repair(store, argv[optind], from);
    if (rc)
        rc = cli_fail(c);
    else if (c->json)
        cli_print_json(json_pack("{s:s, s:s}", "repaired", argv[optind], "from", from));
    else if (!c->quiet)
        fprintf(stderr, "plan: repaired %s from %s\n", argv[optind], from);
    plan_store_close(store);
    return rc;
}
