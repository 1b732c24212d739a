/* plan info NAME [--json]: what the registries publish under a name. */
#include "realise.h"
#include "../fetch/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *package_json(json_t *p, const plan_keyring *trusted)
{
    json_t *out = json_deep_copy(p);
    const char *id = json_string_value(json_object_get(json_object_get(p, "publisher"), "keyid"));
    const plan_pubkey *k = id ? plan_keyring_find(trusted, id) : NULL;
    json_object_set_new(out, "publisher_trusted", json_boolean(k != NULL));
    if (k)
        json_object_set_new(out, "publisher_name", json_string(k->name));
    return out;
}

int cmd_info(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage(c, cmd, "name one package");
    const char *name = argv[1];
    char *file = cli_registries_file(c), *dbp = cli_regdb_path(c), *cfg = cli_config_dir(c);
    char *trusted_file = plan_path_join(cfg, "trusted-keys");
    plan_registries regs = {0};
    plan_keyring trusted = {0};
    plan_regdb *d = NULL;
    int rc = EXIT_OK;
    if (plan_registries_load(c->ctx, file, &regs) ||
        plan_keyring_load(c->ctx, trusted_file, &trusted) || plan_regdb_open(c->ctx, dbp, cli_flushes(c), &d)) {
        rc = cli_fail(c);
        goto out;
    }
    cli_update_registries(c, &regs, d);
    json_t *found = json_array();
    for (size_t i = 0; i < regs.n; i++) {
        json_t *idx = NULL;
        int r = plan_registry_index(c->ctx, d, &regs.items[i], name, &idx);
        if (r == PLAN_ERR_NOT_FOUND) {
            plan_ctx_clear_error(c->ctx);
            continue;
        }
        if (r) {
            plan_warn(c->ctx, "%s", plan_ctx_error(c->ctx));
            plan_ctx_clear_error(c->ctx);
            continue;
        }
        json_t *pk = json_array();
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(idx, "packages"), k, p)
            json_array_append_new(pk, package_json(p, &trusted));
        json_array_append_new(found, json_pack("{s:s, s:s, s:o}", "registry",
                                               regs.items[i].name, "url", regs.items[i].url,
                                               "packages", pk));
        json_decref(idx);
    }
    if (!json_array_size(found)) {
        json_decref(found);
        rc = cli_error(c, "no registry publishes '%s'%s", name,
                       regs.n ? " (run 'plan registry update' if it was just published)"
                              : ": no registries are configured ('plan registry add')");
        goto out;
    }
    if (c->json) {
        cli_print_json(json_pack("{s:s, s:o}", "name", name, "registries", found));
        goto out;
    }
    size_t i;
    json_t *r;
    json_array_foreach(found, i, r) {
        printf("%s (registry %s)\n", name, json_string_value(json_object_get(r, "registry")));
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(r, "packages"), k, p) {
            const char *who = json_string_value(json_object_get(p, "publisher_name"));
            const char *id =
                json_string_value(json_object_get(json_object_get(p, "publisher"), "keyid"));
            const char *ver = json_string_value(json_object_get(p, "version"));
            const char *path = json_string_value(json_object_get(p, "path"));
            printf("  %-12s %s%s  signed by %s%s\n", ver ? ver : "?",
                   json_is_true(json_object_get(p, "yanked")) ? "(yanked) " : "",
                   path ? path : "?", who ? who : id ? id : "?", who ? "" : " (not trusted)");
        }
    }
    json_decref(found);
out:
    plan_regdb_close(d);
    plan_keyring_release(&trusted);
    plan_registries_release(&regs);
    free(trusted_file);
    free(cfg);
    free(file);
    free(dbp);
    return rc;
}
