/* plan shell-init [bash|zsh|fish|sh] [--profile NAME] */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sh_quoted(const char *s)
{
    putchar('\'');
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    putchar('\'');
}

int cmd_shell_init(cli *c, const command *cmd, int argc, char **argv)
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
    if (argc - optind > 1)
        return cli_usage(c, cmd, "name one shell: bash, zsh, fish or sh");
    const char *shell = optind < argc ? argv[optind] : NULL;
    if (!shell) {
        const char *env = getenv("SHELL");
        const char *base = env ? strrchr(env, '/') : NULL;
        shell = base ? base + 1 : "sh";
    }
    bool fish = !strcmp(shell, "fish");
    if (!fish && strcmp(shell, "bash") && strcmp(shell, "zsh") && strcmp(shell, "sh") &&
        strcmp(shell, "dash") && strcmp(shell, "ksh"))
        return cli_usage(c, cmd, "unknown shell '%s': use bash, zsh, fish or sh", shell);
    profile = cli_profile_name(profile);
    if (plan_profile_check_name(profile))
        return cli_usage(c, cmd, "invalid profile name '%s'", profile);
    char *cur = plan_xasprintf("%s/profiles/%s/current", c->root, profile);
    char *env = plan_xasprintf("%s/.plan/env.%s", cur, fish ? "fish" : "sh");
    char *bin = plan_path_join(cur, "bin");
    printf("# plan: put profile '%s' on PATH.  Add to your shell's startup file:\n", profile);
    if (fish) {
        printf("#   plan shell-init fish | source\n");
        printf("if test -f ");
        sh_quoted(env);
        printf("; source ");
        sh_quoted(env);
        printf("; else; set -gx PATH ");
        sh_quoted(bin);
        printf(" $PATH; end\n");
    } else {
        printf("#   eval \"$(plan shell-init %s)\"\n", shell);
        printf("if [ -f ");
        sh_quoted(env);
        printf(" ]; then . ");
        sh_quoted(env);
        printf("; else export PATH=");
        sh_quoted(bin);
        printf("\"${PATH:+:$PATH}\"; fi\n");
    }
    free(cur);
    free(env);
    free(bin);
    return EXIT_OK;
}
