/* plan why NAME [-f plan.yaml]: the chain of requirements that pulls NAME in. */
#include "cli.h"
#include "project.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_why(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *file = "plan.yaml";
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
        if (o == 'f')
            file = optarg;
        else
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
    if (optind + 1 != argc)
        return cli_usage(c, cmd, "give the name of one package");
    const char *name = argv[optind];
    char *lock_file = cli_lock_path(file);
    plan_lock *lock = NULL;
    int rc = EXIT_OK;
    if (plan_lock_read(c->ctx, lock_file, &lock)) {
        rc = cli_fail(c);
        free(lock_file);
        return rc;
    }
    const plan_lock_package *p = plan_lock_find(lock, name);
    if (!p) {
        rc = cli_error(c, "'%s' is not in '%s': nothing requires it", name, lock_file);
        goto out;
    }
    /* Walk up the recorded chain to a request of plan.yaml; the chain is
     * bounded by the number of packages, whatever the file says. */
    json_t *chain = json_array();
    size_t steps = 0;
    while (p && steps++ <= lock->n) {
        const char *range = p->required_as;
        for (size_t k = 0; !p->required_by && k < lock->request_names.len; k++)
            if (!strcmp(lock->request_names.items[k], p->name))
                range = lock->request_ranges.items[k]; /* a request of plan.yaml */
        json_array_append_new(chain, json_pack("{s:s, s:s, s:s?, s:s?}", "name", p->name,
                                               "version", p->version, "required_by",
                                               p->required_by, "range", range));
        if (!p->required_by)
            break;
        p = plan_lock_find(lock, p->required_by);
    }
    if (c->json) {
        cli_print_json(json_pack("{s:s, s:o}", "package", name, "chain", chain));
        goto out;
    }
    for (size_t i = 0; i < json_array_size(chain); i++) {
        json_t *step = json_array_get(chain, i);
        const char *n = json_string_value(json_object_get(step, "name"));
        const char *v = json_string_value(json_object_get(step, "version"));
        const char *by = json_string_value(json_object_get(step, "required_by"));
        const char *range = json_string_value(json_object_get(step, "range"));
        if (by) {
            printf("%s%s %s is needed by %s as %s\n", i ? "  which " : "", n, v, by, range);
        } else {
            printf("%s%s %s is requested by %s as %s\n", i ? "  which " : "", n, v, file,
                   range ? range : "");
        }
    }
    json_decref(chain);
out:
    plan_lock_free(lock);
    free(lock_file);
    return rc;
}
