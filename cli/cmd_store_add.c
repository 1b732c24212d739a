/* plan store add DIR --name N --version V */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_store_add(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'},
        {"no-scan", no_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *version = NULL;
    bool scan = true;
    long threads = 0;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n': name = optarg; break;
        case 'V': version = optarg; break;
        case 'S': scan = false; break;
        case 'j':
            if (cli_parse_threads(c, cmd, optarg, &threads))
                return EXIT_USAGE;
            break;
        default:
            return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage(c, cmd, "give exactly one directory to add");
    if (!name || !version)
        return cli_usage(c, cmd, "--name and --version are required");

    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    plan_store_set_threads(store, (unsigned)threads);
    plan_add_opts ao = {.dir = argv[optind], .name = name, .version = version,
                        .scan_all_refs = scan};
    plan_add_result res;
    int rc = plan_store_add(store, &ao, &res);
    if (rc) {
        rc = cli_fail(c);
    } else {
        if (c->json)
            cli_print_json(json_pack("{s:s, s:b}", "path", res.path, "existed", res.existed));
        else
            puts(res.path);
        if (c->verbose)
            fprintf(stderr, "plan: %s\n", res.existed ? "already in the store: nothing written"
                                                      : "added and registered");
        free(res.path);
    }
    plan_store_close(store);
    return rc;
}
