/* plan yank NAME VERSION [--registry NAME] [--token TOKEN] */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_yank(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"registry", required_argument, NULL, 'r'},
        {"token", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *reg_name = NULL, *token = getenv("PLAN_REGISTRY_TOKEN");
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'r')
            reg_name = optarg;
        else if (o == 't')
            token = optarg;
        else
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
    if (optind + 2 != argc)
        return cli_usage(c, cmd, "give the name and the version to yank");
    char *file = cli_registries_file(c);
    plan_registries regs = {0};
    int rc = EXIT_OK;
    if (plan_registries_load(c->ctx, file, &regs)) {
        free(file);
        return cli_fail(c);
    }
    const plan_registry *reg = NULL;
    for (size_t i = 0; i < regs.n && !reg; i++)
        if (!reg_name || !strcmp(regs.items[i].name, reg_name))
            reg = &regs.items[i];
    plan_registry_answer ans = {0};
    if (!reg)
        rc = cli_error(c, "no registry%s%s%s: see 'plan registry list'", reg_name ? " named '" : "",
                       reg_name ? reg_name : "", reg_name ? "'" : "");
    else if (!token || !*token)
        rc = cli_error(c, "yanking needs a token of registry '%s' with the yank scope: --token "
                          "TOKEN or PLAN_REGISTRY_TOKEN", reg->name);
    else if (plan_registry_yank(c->ctx, reg, token, argv[optind], argv[optind + 1], &ans))
        rc = cli_fail(c);
    else if (ans.status != 200)
        rc = cli_error(c, "registry '%s' refused to yank %s %s (HTTP %ld): %s", reg->name,
                       argv[optind], argv[optind + 1], ans.status,
                       ans.message ? ans.message : "no reason given");
    else if (!c->quiet)
        fprintf(stderr, "plan: yanked %s %s in '%s': it stays downloadable for locks that name "
                        "it, but is never chosen anew\n", argv[optind], argv[optind + 1],
                reg->name);
    plan_registry_answer_release(&ans);
    plan_registries_release(&regs);
    free(file);
    return rc;
}
