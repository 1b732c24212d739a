/* plan version */
#include "cli.h"

#include <archive.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>

int cmd_version(cli *c, const command *cmd, int argc, char **argv)
{
    if (cmd && cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (cmd && argc > 1)
        return cli_usage(c, cmd, "'plan version' takes no arguments");
    if (c->json) {
        cli_print_json(json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "version", PLAN_VERSION,
                                 "libraries", "sqlite3", sqlite3_libversion(), "libsodium",
                                 sodium_version_string(), "libarchive",
                                 archive_version_string(), "jansson", JANSSON_VERSION));
        return EXIT_OK;
    }
    printf("plan %s\n", PLAN_VERSION);
    if (c->verbose)
        printf("sqlite3 %s, libsodium %s, %s, jansson %s\n", sqlite3_libversion(),
               sodium_version_string(), archive_version_string(), JANSSON_VERSION);
    return EXIT_OK;
}
