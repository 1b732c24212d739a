/* plan help [command [subcommand]] */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_help(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc < 2) {
        cli_print_global_help();
        return EXIT_OK;
    }
    const command *target = cli_find_command(plan_commands, plan_command_count, argv[1]);
    if (!target)
        return cli_unknown_command(c, plan_commands, plan_command_count, "", argv[1]);
    if (target->run == cmd_store) {
        /* `plan help store [sub]` is `plan store [sub] --help`. */
        char *args[4] = {"store", argc > 2 ? argv[2] : "--help", "--help", NULL};
        return cmd_store(c, target, argc > 2 ? 3 : 2, args);
    }
    cli_print_help(target);
    return EXIT_OK;
}
