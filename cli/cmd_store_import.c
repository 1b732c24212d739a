/* plan store import FILE... */
#include "cli.h"

#include <stdio.h>

int cmd_store_import(cli *c, const command *cmd, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(c, cmd, "give the archives to import");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    /* Several archives are one batch: one transaction, references across
     * them in any order, all or nothing. */
    plan_import_result res;
    int rc = plan_store_import_many(store, (const char *const *)argv + 1, (size_t)argc - 1, NULL,
                                    &res);
    if (rc) {
        rc = cli_fail(c);
    } else if (c->json) {
        json_t *added = json_array(), *present = json_array();
        for (size_t i = 0; i < res.added.len; i++)
            json_array_append_new(added, json_string(res.added.items[i]));
        for (size_t i = 0; i < res.present.len; i++)
            json_array_append_new(present, json_string(res.present.items[i]));
        cli_print_json(json_pack("{s:o, s:o}", "added", added, "present", present));
    } else {
        for (size_t i = 0; i < res.added.len; i++)
            printf("%s/%s\n", plan_store_dir(store), res.added.items[i]);
        for (size_t i = 0; i < res.present.len; i++)
            printf("%s/%s\n", plan_store_dir(store), res.present.items[i]);
        fflush(stdout); /* results first, then the summary, also on a shared pipe */
        if (!c->quiet)
            fprintf(stderr, "plan: imported %zu path%s, %zu already present\n", res.added.len,
                    res.added.len == 1 ? "" : "s", res.present.len);
    }
    if (!rc)
        plan_import_result_release(&res);
    plan_store_close(store);
    return rc;
}
