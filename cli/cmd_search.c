/* plan search TERM: package names the registries publish that contain TERM. */
#include "realise.h"
#include "../fetch/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_search(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc != 2)
        return cli_usage(c, cmd, "give one search term");
    const char *term = argv[1];
    char *file = cli_registries_file(c), *dbp = cli_regdb_path(c);
    plan_registries regs = {0};
    plan_regdb *d = NULL;
    int rc = EXIT_OK;
    if (plan_registries_load(c->ctx, file, &regs) || plan_regdb_open(c->ctx, dbp, cli_flushes(c), &d)) {
        rc = cli_fail(c);
        goto out;
    }
    /* Fresh metadata when the registries can be reached; the cache (still
     * verified) when not. */
    cli_update_registries(c, &regs, d);
    json_t *arr = c->json ? json_array() : NULL;
    size_t hits = 0;
    for (size_t i = 0; i < regs.n; i++) {
        plan_strlist names;
        plan_strlist_init(&names);
        plan_registry_names(c->ctx, d, &regs.items[i], &names);
        for (size_t k = 0; k < names.len; k++) {
            if (!strcasestr(names.items[k], term))
                continue;
            hits++;
            if (arr)
                json_array_append_new(arr, json_pack("{s:s, s:s}", "name", names.items[k],
                                                     "registry", regs.items[i].name));
            else
                printf("%-30s %s\n", names.items[k], regs.items[i].name);
        }
        plan_strlist_release(&names);
    }
    if (arr)
        cli_print_json(json_pack("{s:s, s:o}", "term", term, "results", arr));
    else if (!hits && !c->quiet)
        fprintf(stderr, "plan: nothing matches '%s'%s\n", term,
                regs.n ? " (the registries' cached indexes; 'plan registry update' refreshes "
                         "them)" : ": no registries are configured");
out:
    plan_regdb_close(d);
    plan_registries_release(&regs);
    free(file);
    free(dbp);
    return rc;
}
