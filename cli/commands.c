/* The command table, sorted by name, and lookup with suggestions. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

const command plan_commands[] = {
    {"help", cmd_help, "show help for a command",
     "usage: plan help [command [subcommand]]\n"
     "\n"
     "Show the help of a command.\n"
     "\n"
     "Examples:\n"
     "  plan help store\n"
     "  plan help store add\n"},
    {"store", cmd_store, "work with the store directly (add, verify, export, ...)", NULL},
    {"version", cmd_version, "show the version",
     "usage: plan version [--json]\n"
     "\n"
     "Show plan's version and the versions of the libraries it uses.\n"
     "\n"
     "Examples:\n"
     "  plan version\n"
     "  plan version --json\n"},
};
const size_t plan_command_count = sizeof(plan_commands) / sizeof(plan_commands[0]);

const command *cli_find_command(const command *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

int cli_unknown_command(cli *c, const command *table, size_t n, const char *prefix,
                        const char *name)
{
    const command *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = plan_edit_distance(name, table[i].name);
        /* A prefix ("pat" for "path-info") is as good as a typo. */
        if (!strncmp(table[i].name, name, strlen(name)))
            d = d < 1 ? d : 1;
        if (d < best_d) {
            best_d = d;
            best = &table[i];
        }
    }
    cli_clear_progress(c);
    fprintf(stderr, "plan: unknown command '%s%s'\n", prefix, name);
    if (best && best_d <= 3 && best_d < strlen(name))
        fprintf(stderr, "plan: did you mean 'plan %s%s'?\n", prefix, best->name);
    else
        fprintf(stderr, "plan: see 'plan %s--help' for the list of commands\n", prefix);
    return EXIT_USAGE;
}
