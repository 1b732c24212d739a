/* plan store optimise */
#include "cli.h"

#include <stdio.h>

int cmd_store_optimise(cli *c, const command *cmd, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return cli_usage(c, cmd, "'plan store optimise' takes no arguments");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    plan_optimise_result res;
    int rc = plan_store_optimise(store, &res);
    if (rc) {
        rc = cli_fail(c);
    } else if (c->json) {
        cli_print_json(json_pack("{s:I, s:I}", "files_linked", (json_int_t)res.files_linked,
                                 "bytes_saved", (json_int_t)res.bytes_saved));
    } else {
        char saved[24];
        plan_format_size(res.bytes_saved, saved, sizeof(saved));
        printf("linked %llu file%s, saved %s (%llu bytes)\n",
               (unsigned long long)res.files_linked, res.files_linked == 1 ? "" : "s", saved,
               (unsigned long long)res.bytes_saved);
    }
    plan_store_close(store);
    return rc;
}
