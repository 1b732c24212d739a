/* plan install: see cli_profile_change (realise.c) and docs/commands/profiles.md. */
#include "realise.h"

int cmd_install(cli *c, const command *cmd, int argc, char **argv)
{
    return cli_profile_command(c, cmd, CHANGE_INSTALL, argc, argv);
}
