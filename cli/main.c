/* plan: global options, then dispatch through the command table. */
#include "cli.h"
#include "../recipes/recipes.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char global_help[] =
    "usage: plan [global options] <command> [arguments]\n"
    "\n"
    "Global options (accepted before or after the command):\n"
    "  --root DIR     use DIR for the store, database and profiles\n"
    "                 (default: $PLAN_ROOT, else $XDG_DATA_HOME/plan or ~/.local/share/plan)\n"
    "  --json         print machine-readable JSON on stdout\n"
    "  -q, --quiet    print only results and errors\n"
    "  -v, --verbose  say what is being done\n"
    "  --no-color     no colours (also NO_COLOR=1)\n"
    "  -h, --help     show help; 'plan help <command>' for one command\n"
    "  --version      show the version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error; 'plan env' returns its\n"
    "command's status.\n"
    "\n"
    "Commands:\n";

void cli_print_global_help(void)
{
    fputs(global_help, stdout);
    for (size_t i = 0; i < plan_command_count; i++)
        printf("  %-12s %s\n", plan_commands[i].name, plan_commands[i].summary);
    fputs("\nExamples:\n"
          "  plan store add ./tree --name hello --version 1.0\n"
          "  plan --json store path-info ~/.local/share/plan/store/<digest>-hello-1.0\n"
          "  plan help store\n",
          stdout);
}

static char *default_root(void)
{
    const char *env = getenv("PLAN_ROOT");
    if (env && *env)
        return plan_xstrdup(env);
    env = getenv("XDG_DATA_HOME");
    if (env && *env == '/')
        return plan_path_join(env, "plan");
    env = getenv("HOME");
    return plan_xasprintf("%s/.local/share/plan", env && *env ? env : "/tmp");
}

/* Take the global options out of argv wherever they stand before "--", so
 * that `plan store add X --json` works as well as `plan --json store add X`.
 * Returns -1 on a usage error. */
static int take_global_options(cli *c, int *argc, char **argv, bool *help, bool *version)
{
    int out = 1;
    bool in_args = false, seen_command = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (in_args) {
            argv[out++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            in_args = true;
            argv[out++] = argv[i];
        } else if (!strcmp(a, "--json")) {
            c->json = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c->quiet = true;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c->verbose = true;
        } else if (!strcmp(a, "--no-color")) {
            c->color = false;
        } else if (!strcmp(a, "--version") && !seen_command) {
            *version = true;
        } else if ((!strcmp(a, "-h") || !strcmp(a, "--help")) && !seen_command) {
            *help = true;
        } else if (!strcmp(a, "--root")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "plan: --root needs a directory\n");
                return -1;
            }
            free(c->root);
            c->root = plan_xstrdup(argv[++i]);
            c->root_explicit = true;
        } else if (!strncmp(a, "--root=", 7)) {
            free(c->root);
            c->root = plan_xstrdup(a + 7);
            c->root_explicit = true;
        } else {
            if (a[0] != '-')
                seen_command = true;
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

/* plan is a short-lived process that allocates in bursts on several
 * threads (archives decompressed, trees walked, JSON parsed): memory it
 * frees is better kept for the next burst than handed back to the kernel
 * and faulted in again.  Larger steps for the heaps, and buffers up to
 * 32 MiB from the heap rather than from a mmap each. */
static void tune_allocator(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 8 << 20);
}

int main(int argc, char **argv)
{
    tune_allocator();
    cli c;
    memset(&c, 0, sizeof(c));
    c.root = default_root();
    c.root_explicit = getenv("PLAN_ROOT") && *getenv("PLAN_ROOT");
    c.tty = isatty(STDERR_FILENO);
    const char *no_color = getenv("NO_COLOR");
    c.color = c.tty && !(no_color && *no_color);
    bool help = false, version = false;
    int rc;
    if (take_global_options(&c, &argc, argv, &help, &version) != 0) {
        free(c.root);
        return EXIT_USAGE;
    }
    c.ctx = plan_ctx_new();
    plan_ctx_set_events(c.ctx, cli_render_event, &c);

    if (version) {
        rc = cmd_version(&c, NULL, 0, NULL);
    } else if (argc < 2) {
        cli_print_global_help();
        rc = help ? EXIT_OK : EXIT_USAGE;
    } else if (argv[1][0] == '-') {
        rc = cli_usage(&c, NULL, "unknown option '%s'; see 'plan --help'", argv[1]);
    } else {
        const command *cmd = cli_find_command(plan_commands, plan_command_count, argv[1]);
        if (!cmd)
            rc = cli_unknown_command(&c, plan_commands, plan_command_count, "", argv[1]);
        else if (help) {
            /* Every command answers --help itself (store lists its own). */
            char *args[] = {argv[1], "--help", NULL};
            rc = cmd->run(&c, cmd, 2, args);
        }
        else
            rc = cmd->run(&c, cmd, argc - 1, argv + 1);
    }
    cli_clear_progress(&c);
    plan_project_free(c.config);
    plan_ctx_free(c.ctx);
    free(c.root);
    return rc;
}
