/* plan registry add NAME URL --key NAME:BASE64 | list | remove NAME | update [NAME] */
#include "realise.h"
#include "../fetch/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cli_registries_file(const cli *c)
{
    char *dir = cli_config_dir(c);
    char *file = plan_path_join(dir, "registries.json");
    free(dir);
    return file;
}

char *cli_regdb_path(const cli *c)
{
    return plan_path_join(c->root, "var/db/registry.db");
}

/* Update one registry, printing one line; EXIT_OK or EXIT_FAILURE_. */
static int update_one(cli *c, plan_regdb *d, plan_registries *regs, size_t i)
{
    plan_update_report rep;
    if (cli_registry_update(c, d, regs, i, &rep))
        return cli_fail(c);
    const plan_registry *reg = &regs->items[i];
    if (c->json)
        cli_print_json(json_pack("{s:s, s:b, s:I, s:I, s:I, s:b}", "registry", reg->name,
                                 "changed", rep.changed, "timestamp_version",
                                 (json_int_t)rep.timestamp_version, "snapshot_version",
                                 (json_int_t)rep.snapshot_version, "indexes_fetched",
                                 (json_int_t)rep.indexes_fetched, "rotated", rep.rotated));
    else if (!c->quiet)
        fprintf(stderr, "plan: registry '%s': %s (snapshot %lld, %u index%s fetched)\n",
                reg->name, rep.changed ? "updated" : "up to date",
                (long long)rep.snapshot_version, rep.indexes_fetched,
                rep.indexes_fetched == 1 ? "" : "es");
    return EXIT_OK;
}

int cmd_registry(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc < 2)
        return cli_usage(c, cmd, "name a subcommand: add, list, remove or update");
    const char *sub = argv[1];
    char *file = cli_registries_file(c);
    plan_registries regs;
    int rc = EXIT_OK;
    if (plan_registries_load(c->ctx, file, &regs)) {
        free(file);
        return cli_fail(c);
    }
    if (!strcmp(sub, "add")) {
        const char *key = NULL;
        int pos = 0;
        const char *args[2] = {NULL, NULL};
        for (int i = 2; i < argc && rc == EXIT_OK; i++) {
            if (!strcmp(argv[i], "--key") && i + 1 < argc)
                key = argv[++i];
            else if (!strncmp(argv[i], "--key=", 6))
                key = argv[i] + 6;
            else if (argv[i][0] != '-' && pos < 2)
                args[pos++] = argv[i];
            else
                rc = cli_usage(c, cmd, "unexpected argument '%s'", argv[i]);
        }
        if (rc == EXIT_OK && (pos != 2 || !key))
            rc = cli_usage(c, cmd, "usage: plan registry add NAME URL --key NAME:BASE64 (the "
                                   "key 'plan-registry init' printed: it is pinned, never "
                                   "fetched)");
        if (rc == EXIT_OK && (plan_registries_add(c->ctx, &regs, args[0], args[1], key) ||
                              plan_registries_save(c->ctx, &regs, file)))
            rc = cli_fail(c);
        else if (rc == EXIT_OK && !c->quiet)
            fprintf(stderr, "plan: added registry '%s' at %s, pinned to key %s\n", args[0],
                    regs.items[regs.n - 1].url, regs.items[regs.n - 1].key.id);
    } else if (!strcmp(sub, "remove")) {
        if (argc != 3)
            rc = cli_usage(c, cmd, "usage: plan registry remove NAME");
        else if (plan_registries_remove(c->ctx, &regs, argv[2]) ||
                 plan_registries_save(c->ctx, &regs, file))
            rc = cli_fail(c);
    } else if (!strcmp(sub, "list")) {
        json_t *arr = c->json ? json_array() : NULL;
        for (size_t i = 0; i < regs.n; i++) {
            char *k = plan_pubkey_format(&regs.items[i].key);
            if (arr)
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "name",
                                                     regs.items[i].name, "url", regs.items[i].url,
                                                     "key", k, "keyid", regs.items[i].key.id));
            else
                printf("%-16s %-40s %s\n", regs.items[i].name, regs.items[i].url,
                       regs.items[i].key.id);
            free(k);
        }
        if (arr)
            cli_print_json(json_pack("{s:o}", "registries", arr));
        else if (!regs.n && !c->quiet)
            fprintf(stderr, "plan: no registries ('plan registry add NAME URL --key KEY')\n");
    } else if (!strcmp(sub, "update")) {
        char *dbp = cli_regdb_path(c);
        plan_regdb *d = NULL;
        if (plan_regdb_open(c->ctx, dbp, cli_flushes(c), &d)) {
            rc = cli_fail(c);
        } else {
            bool any = false;
            for (size_t i = 0; i < regs.n; i++) {
                if (argc > 2 && strcmp(argv[2], regs.items[i].name) != 0)
                    continue;
                any = true;
                if (update_one(c, d, &regs, i) != EXIT_OK)
                    rc = EXIT_FAILURE_;
            }
            if (!any && argc > 2)
                rc = cli_error(c, "there is no registry named '%s' (see 'plan registry list')",
                               argv[2]);
        }
        plan_regdb_close(d);
        free(dbp);
    } else {
        rc = cli_usage(c, cmd, "unknown subcommand '%s': add, list, remove or update", sub);
    }
    plan_registries_release(&regs);
    free(file);
    return rc;
}
