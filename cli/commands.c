/* The command table, sorted by name, and lookup with suggestions. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

const command plan_commands[] = {
    {"build", cmd_build, "build a recipe into a store path",
     "usage: plan build RECIPE [-o LINK] [--check] [--no-sandbox] [-L] [--recipes DIR]...\n"
     "\n"
     "Build the recipe (and first any dependency missing from the store) and print\n"
     "its store path.  Building the same recipe again prints the same path at once.\n"
     "The build runs in a clean environment and, where Linux namespaces are\n"
     "available, a sandbox: no network, the store read-only but for the output.\n"
     "A failed or interrupted build adds nothing to the store; its log is kept.\n"
     "\n"
     "Options:\n"
     "  -o, --output LINK  also make LINK a symlink to the result (a GC root)\n"
     "  --check            build again and compare with the registered result:\n"
     "                     exit 0 if identical, else list what differs and exit 1\n"
     "  --no-sandbox       build without namespaces\n"
     "  -L                 stream the build log to the terminal\n"
     "  --recipes DIR      where dependencies' recipes are (repeatable; default:\n"
     "                     the recipe's own folder)\n"
     "  -j, --jobs N       PLAN_JOBS for the build (default: one per core)\n"
     "\n"
     "Examples:\n"
     "  plan build examples/recipes/hello.yaml -o result\n"
     "  plan build hello.yaml --recipes ~/recipes -L\n"
     "  plan build hello.yaml --check\n"},
    {"help", cmd_help, "show help for a command",
     "usage: plan help [command [subcommand]]\n"
     "\n"
     "Show the help of a command.\n"
     "\n"
     "Examples:\n"
     "  plan help store\n"
     "  plan help store add\n"},
    {"lock", cmd_lock, "resolve plan.yaml into plan.lock",
     "usage: plan lock [-f plan.yaml] [--check] [--upgrade]\n"
     "\n"
     "Resolve the packages of plan.yaml against its recipe repositories and write\n"
     "the exact closure to plan.lock (next to it): for every package its version,\n"
     "source, recipe and recipe hash, dependencies, and what required it.  The\n"
     "same input always gives the same bytes.  Versions already in plan.lock are\n"
     "kept while they still satisfy every requirement.\n"
     "\n"
     "Options:\n"
     "  -f, --file FILE  the project file (default: plan.yaml)\n"
     "  --check          write nothing; exit 1 if plan.lock is missing or stale\n"
     "  --upgrade        ignore the versions in plan.lock: take the newest\n"
     "\n"
     "Examples:\n"
     "  plan lock\n"
     "  plan lock --check    # in CI\n"},
    {"log", cmd_log, "show the build log of a store path",
     "usage: plan log PATH\n"
     "\n"
     "Print the log of the build that produced PATH (a store path, its basename,\n"
     "its digest or a link to it).  Failed builds keep their logs too; their path\n"
     "is printed when they fail.\n"
     "\n"
     "Examples:\n"
     "  plan log ./result\n"
     "  plan log --json ./result\n"},
    {"recipe", cmd_recipe, "check recipes or write a new one",
     "usage: plan recipe check FILE...\n"
     "       plan recipe new NAME [-o FILE]\n"
     "\n"
     "check validates recipes without building them: every problem is reported\n"
     "as file:line:column with the field, what was expected and a hint.\n"
     "new writes a commented template to NAME.yaml (or FILE, '-' for stdout); it\n"
     "never overwrites a file.\n"
     "\n"
     "Examples:\n"
     "  plan recipe check examples/recipes/*.yaml\n"
     "  plan recipe new mytool\n"},
    {"semver", cmd_semver, "check versions against a SemVer range, or sort them",
     "usage: plan semver [-r RANGE]... VERSION...\n"
     "\n"
     "Print the versions that satisfy every RANGE, in ascending order, one per\n"
     "line; with no range, print all the versions sorted.  Versions follow\n"
     "SemVer 2.0.0 (a leading 'v' is accepted and dropped; build metadata is\n"
     "kept); invalid versions are skipped (-v names them).  Ranges follow npm:\n"
     "^1.2.3, ~1.2, 1.x, >=1.0.0 <2, 1.2.3 - 2.0.0, a || b.  A prerelease only\n"
     "matches a range that names a prerelease of the same MAJOR.MINOR.PATCH.\n"
     "\n"
     "Options:\n"
     "  -r, --range RANGE  keep only versions in RANGE (repeatable: all must match)\n"
     "  --json             {versions, ranges (with their comparators), invalid, unmatched}\n"
     "\n"
     "Exit status: 0 if any version is printed, 1 if none, 2 if a range is invalid.\n"
     "\n"
     "Examples:\n"
     "  plan semver -r '^1.2.0' 1.1.0 1.2.5 1.10.0 2.0.0     # 1.2.5, 1.10.0\n"
     "  plan semver -r '>=1.0.0-rc.1 <2' 1.0.0-rc.2 1.5.0   # both\n"
     "  plan semver 1.10.0 v1.2.0 1.2.0-beta                 # sorted\n"
     "  plan --json semver -r '~1.2' 1.2.9 1.3.0\n"},
    {"store", cmd_store, "work with the store directly (add, verify, export, ...)", NULL},
    {"version", cmd_version, "show the version",
     "usage: plan version [--json]\n"
     "\n"
     "Show plan's version and the versions of the libraries it uses.\n"
     "\n"
     "Examples:\n"
     "  plan version\n"
     "  plan version --json\n"},
    {"why", cmd_why, "say which requirements pull a package in",
     "usage: plan why NAME [-f plan.yaml]\n"
     "\n"
     "Follow plan.lock from NAME up to the request of plan.yaml that pulls it\n"
     "in, one requirement per line.\n"
     "\n"
     "Examples:\n"
     "  plan why greet\n"
     "  plan --json why greet\n"},
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
