/* plan rollback [--to N] [--profile NAME] */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_rollback(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'},
        {"to", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *profile = NULL;
    long to = 0;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
        switch (o) {
        case 'p': profile = optarg; break;
        case 't': {
            char *end;
            to = strtol(optarg, &end, 10);
            if (*end || to < 1)
                return cli_usage(c, cmd, "--to wants a generation number, not '%s'", optarg);
            break;
        }
        default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage(c, cmd, "'plan rollback' takes no arguments (--to N picks a generation)");
    profile = cli_profile_name(profile);
    cli_profile_view v;
    if (cli_profile_view_open(c, profile, true, &v))
        return EXIT_FAILURE_;
    plan_profile *p = v.profile;
    plan_generation *gens = v.gens;
    size_t n = v.n;
    int rc = EXIT_OK;
    unsigned cur = plan_profile_current(p), target = (unsigned)to;
    if (!target) {
        /* The newest generation older than the current one. */
        for (size_t i = 0; i < n; i++)
            if (gens[i].number < cur)
                target = gens[i].number;
        if (!target) {
            rc = cli_error(c, "profile '%s' has no generation before %u to roll back to (see "
                              "'plan generations')", profile, cur);
            goto out;
        }
    }
    if (plan_profile_switch(p, target)) {
        rc = cli_fail(c);
        goto out;
    }
    if (c->json)
        cli_print_json(json_pack("{s:s, s:I, s:I}", "profile", profile, "from", (json_int_t)cur,
                                 "to", (json_int_t)target));
    else if (!c->quiet)
        fprintf(stderr, "plan: profile '%s' switched from generation %u to %u\n", profile, cur,
                target);
out:
    cli_profile_view_close(&v);
    return rc;
}
