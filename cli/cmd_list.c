/* plan list [--profile NAME] [--json] */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int cmd_list(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *profile = NULL;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
        if (o != 'p')
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        profile = optarg;
    }
    if (optind != argc)
        return cli_usage(c, cmd, "'plan list' takes no arguments");
    profile = cli_profile_name(profile);
    cli_profile_view v;
    if (cli_profile_view_open(c, profile, true, &v))
        return EXIT_FAILURE_;
    plan_store *store = v.store;
    const plan_generation *g = v.current;
    json_t *arr = c->json ? json_array() : NULL;
    for (size_t i = 0; g && i < g->pkg_names.len; i++) {
        bool requested = false;
        const char *range = NULL;
        for (size_t k = 0; k < g->req_names.len && !requested; k++)
            if (!strcmp(g->req_names.items[k], g->pkg_names.items[i])) {
                requested = true;
                range = g->req_ranges.items[k];
            }
        char *path = plan_path_join(plan_store_dir(store), g->pkg_paths.items[i]);
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b, s:s?}", "name",
                                                 g->pkg_names.items[i], "version",
                                                 g->pkg_versions.items[i], "path", path,
                                                 "requested", requested, "range", range));
        else
            printf("%-20s %-12s %s%s%s\n", g->pkg_names.items[i], g->pkg_versions.items[i],
                   requested ? "requested " : "dependency", range ? " " : "", range ? range : "");
        free(path);
    }
    if (arr)
        cli_print_json(json_pack("{s:s, s:I, s:o}", "profile", profile, "generation",
                                 (json_int_t)(g ? g->number : 0), "packages", arr));
    else if (!g && !c->quiet)
        fprintf(stderr, "plan: profile '%s' has no current generation\n", profile);
    cli_profile_view_close(&v);
    return EXIT_OK;
}
