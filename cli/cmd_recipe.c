/* plan recipe check FILE... | plan recipe new NAME [-o FILE] */
#include "cli.h"
#include "../recipes/recipes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int recipe_check(cli *c, int argc, char **argv)
{
    int rc = EXIT_OK;
    json_t *all = json_array();
    for (int i = 0; i < argc; i++) {
        plan_recipe *r;
        if (plan_recipe_load(c->ctx, argv[i], &r)) {
            rc = cli_fail(c);
            json_array_append_new(all, json_pack("{s:s, s:b, s:s}", "file", argv[i], "valid", 0,
                                                 "error", plan_ctx_error(c->ctx)));
            continue;
        }
        if (c->json)
            json_array_append_new(all, json_pack("{s:s, s:b, s:s, s:s}", "file", argv[i], "valid",
                                                 1, "name", r->name, "version", r->version));
        else if (!c->quiet)
            printf("%s: ok (%s %s)\n", argv[i], r->name, r->version);
        plan_recipe_free(r);
    }
    if (c->json)
        cli_print_json(all);
    else
        json_decref(all);
    return rc;
}

static int recipe_new(cli *c, const command *cmd, int argc, char **argv)
{
    const char *name = NULL, *file = NULL;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc)
            file = argv[++i];
        else if (argv[i][0] == '-')
            return cli_usage(c, cmd, "unknown option '%s'", argv[i]);
        else if (!name)
            name = argv[i];
        else
            return cli_usage(c, cmd, "give one name");
    }
    if (!name)
        return cli_usage(c, cmd, "give the name of the new recipe");
    const char *why = plan_store_check_name(name);
    if (why)
        return cli_error(c, "invalid name '%s': %s", name, why);
    char *text = plan_recipe_template(name);
    char *path = file ? plan_xstrdup(file) : plan_xasprintf("%s.yaml", name);
    int rc = EXIT_OK;
    if (!strcmp(path, "-")) {
        fputs(text, stdout);
    } else {
        /* Never overwrite: a recipe may hold work. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = cli_error(c, "cannot create '%s': %s%s", path, strerror(errno),
                           errno == EEXIST ? "; it exists already, choose another name with -o"
                                           : "");
        } else {
            if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
                rc = cli_error(c, "cannot write '%s': %s", path, strerror(errno));
            close(fd);
            if (!rc && !c->quiet)
                fprintf(stderr, "plan: wrote %s; edit it, then 'plan recipe check %s'\n", path,
                        path);
        }
    }
    free(text);
    free(path);
    return rc;
}

int cmd_recipe(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc < 2)
        return cli_usage(c, cmd, "say 'check FILE...' or 'new NAME'");
    if (!strcmp(argv[1], "check")) {
        if (argc < 3)
            return cli_usage(c, cmd, "give at least one recipe file to check");
        return recipe_check(c, argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "new"))
        return recipe_new(c, cmd, argc - 2, argv + 2);
    return cli_usage(c, cmd, "unknown subcommand '%s': say 'check' or 'new'", argv[1]);
}
