/* plan env [NAME[@RANGE]...] [-f plan.yaml] [--frozen] [--pure] [--keep]
 *          [--limit SPEC] [--isolate [--no-network]] [-- CMD ARGS]
 *
 * Resolve (or take the lock), realise, build the farm in a fresh run root,
 * run the command there with the composed environment, remove the run root.
 * All of it is in envroot.c, shared with plan run (the re-entry cache
 * included); this file parses the command line and puts it together. */
#include "envroot.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct env_args {
    cli_env_request rq;
    bool keep;
    cli_confine confine;           /* --limit, --isolate, --no-network */
    char **cmd;                    /* after --, or NULL for $SHELL */
} env_args;

static int env_run(cli *c, plan_store *store, env_args *a, plan_lock *lock,
                   const plan_project *pr)
{
    /* A note for 'plan ps'. */
    plan_buf cmdline;
    plan_buf_init(&cmdline);
    for (char **w = a->cmd; w && *w; w++)
        plan_buf_printf(&cmdline, "%s%s", w == a->cmd ? "" : " ", *w);
    plan_store_session_note(store, "command", a->cmd ? cmdline.data : "$SHELL");
    plan_buf_release(&cmdline);
    plan_ctx_clear_error(c->ctx);
    cli_envroot er;
    int rc = cli_envroot_open(c, store, &a->rq, lock, pr, &er);
    if (rc)
        return rc;
    char *shell_argv[2] = {NULL, NULL};
    char **cmd = a->cmd;
    if (!cmd) {
        const char *sh = getenv("SHELL");
        shell_argv[0] = (char *)(sh && *sh ? sh : "/bin/sh");
        cmd = shell_argv;
    }
    char *cwd = getcwd(NULL, 0);
    const char *keep[] = {plan_runroot_path(er.rr), cwd};
    const char *rr_name = strrchr(plan_runroot_path(er.rr), '/') + 1;
    rc = cli_confine_prepare(c, store, &a->confine, rr_name, keep, 2);
    if (!rc) {
        cli_child ch = {.argv = cmd, .env = &er.env, .out_fd = -1, .err_fd = -1,
                        .store = store};
        cli_confine_child(&a->confine, &ch);
        rc = cli_child_run(c, &ch);
    }
    cli_confine_finish(&a->confine);
    free(cwd);
    cli_envroot_close(&er, a->keep);
    return rc;
}

int cmd_env(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"frozen", no_argument, NULL, 'F'},
        {"pure", no_argument, NULL, 'P'},
        {"keep", no_argument, NULL, 'k'},
        {"recipes", required_argument, NULL, 'r'},
        {"prefer", required_argument, NULL, 'p'},
        {"strategy", required_argument, NULL, 's'},
        {"choose", required_argument, NULL, 'c'},
        CLI_CONFINE_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    env_args a = {0};
    cli_env_request *rq = &a.rq;
    cli_env_request_init(rq);
    cli_confine_init(&a.confine);
    int rc = EXIT_OK, o;
    optind = 0;
    opterr = 0;
    /* '+': stop at the first non-option, so that everything after '--' (or
     * after the names) is left alone. */
    while (rc == EXIT_OK && (o = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
        if (cli_confine_option(c, cmd, &a.confine, o, optarg, &rc))
            continue;
        switch (o) {
        case 'f': rq->file = optarg; break;
        case 'F': rq->frozen = true; break;
        case 'P': rq->pure = true; break;
        case 'k': a.keep = true; break;
        case 'r': plan_strlist_add(&rq->recipes, optarg); break;
        case 'p': plan_strlist_add(&rq->prefer, optarg); break;
        case 's': {
            plan_collide x;
            if (plan_collide_parse(optarg, &x))
                rc = cli_usage(c, cmd, "--strategy is error, prefer-first or prefer-last, not "
                                       "'%s'", optarg);
            rq->strategy = optarg;
            break;
        }
        case 'c': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1])
                rc = cli_usage(c, cmd, "--choose wants PATH=NAME, such as bin/tool=greeter, not "
                                       "'%s'", optarg);
            else {
                plan_strlist_take(&rq->choose_paths, plan_xstrndup(optarg, (size_t)(eq - optarg)));
                plan_strlist_add(&rq->choose_names, eq + 1);
            }
            break;
        }
        default:
            rc = cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    int i = optind;
    /* getopt consumes a '--' that comes right after the options: the
     * command starts there, with no names. */
    bool dashdash = optind > 1 && !strcmp(argv[optind - 1], "--");
    if (dashdash)
        i = --optind;
    for (; rc == EXIT_OK && i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (argv[i][0] == '-') {
            rc = cli_usage(c, cmd, "options go before the plans: '%s'", argv[i]);
            break;
        }
        if (strchr(argv[i], '/')) {
            plan_strlist_add(&rq->paths, argv[i]);
            continue;
        }
        char *name, *range;
        if ((rc = cli_split_request(c, cmd, argv[i], &name, &range)))
            break;
        plan_strlist_take(&rq->names, name);
        plan_strlist_take(&rq->ranges, range ? range : plan_xstrdup("*"));
    }
    if (rc == EXIT_OK && i < argc) {
        if (i + 1 == argc)
            rc = cli_usage(c, cmd, "nothing after '--': name the command to run");
        else
            a.cmd = &argv[i + 1];
    }
    if (rc == EXIT_OK)
        rc = cli_confine_check(c, cmd, &a.confine);
    if (rc == EXIT_OK && (rq->names.len || rq->paths.len) && (rq->file || rq->frozen))
        rc = cli_usage(c, cmd, "-f and --frozen use plan.yaml and its lock: name no plans with "
                               "them");
    plan_store *store = NULL;
    plan_lock *lock = NULL;
    plan_project *pr = NULL;
    if (rc == EXIT_OK && cli_open_store(c, &store))
        rc = EXIT_FAILURE_;
    if (rc == EXIT_OK) {
        unsigned reaped = 0;
        if (plan_store_reap_sessions(store, &reaped))
            plan_ctx_clear_error(c->ctx);
        rc = rq->names.len || rq->paths.len ? cli_env_lock_requests(c, store, rq, &lock)
                                             : cli_env_lock_project(c, store, rq, &pr, &lock);
    }
    if (rc == EXIT_OK)
        rc = env_run(c, store, &a, lock, pr);
    plan_lock_free(lock);
    plan_project_free(pr);
    plan_store_close(store);
    cli_env_request_release(rq);
    return rc;
}
