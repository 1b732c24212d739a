/* plan store export PATH... [--closure] -o FILE */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_store_export(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"closure", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    bool closure = false;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (o) {
        case 'o': output = optarg; break;
        case 'c': closure = true; break;
        default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (!output)
        return cli_usage(c, cmd, "say where to write the archive with -o FILE");
    if (optind >= argc)
        return cli_usage(c, cmd, "give at least one store path to export");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    int rc = plan_store_export(store, (const char *const *)argv + optind,
                               (size_t)(argc - optind), closure, output);
    if (rc)
        rc = cli_fail(c);
    else if (c->json && output[0] != '-')
        cli_print_json(json_pack("{s:s}", "file", output));
    else if (!c->quiet && output[0] != '-')
        fprintf(stderr, "plan: wrote %s\n", output);
    plan_store_close(store);
    return rc;
}
