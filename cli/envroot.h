/* envroot.h - private to cli/: what plan env and plan run share: the lock
 * of an environment (requests or plan.yaml, with the re-entry cache), a
 * run root with its farm and composed environment, and starting the
 * command in it (limits, isolation, the session's descriptor, signals). */
#ifndef PLAN_CLI_ENVROOT_H
#define PLAN_CLI_ENVROOT_H

#include "realise.h"

#include <sys/types.h>

/* What an environment is made of (plan env's arguments; plan run's one plan). */
typedef struct cli_env_request {
    plan_strlist names, ranges;    /* requests */
    plan_strlist paths;            /* store paths, taken as they are */
    plan_strlist recipes, prefer, choose_paths, choose_names;
    const char *file;              /* -f */
    const char *strategy;
    bool frozen, pure;
} cli_env_request;

void cli_env_request_init(cli_env_request *rq);
void cli_env_request_release(cli_env_request *rq);

/* The realised lock of the requests and store paths (from the cache, or
 * resolved and realised).  EXIT_OK or a reported failure. */
int cli_env_lock_requests(cli *c, plan_store *store, const cli_env_request *rq, plan_lock **out);
/* The same for plan.yaml (rq->file, else ./plan.yaml) and its lock; *pr is
 * the project (caller frees, also on failure). */
int cli_env_lock_project(cli *c, plan_store *store, const cli_env_request *rq,
                         plan_project **pr, plan_lock **out);

/* Remove the entries of the re-entry cache that can never hit again: a
 * path they name is no longer in the store (plan gc collected it), or
 * they cannot be read.  *removed counts them (with dry_run, they are only
 * counted). */
void cli_env_cache_prune(cli *c, plan_store *store, bool dry_run, size_t *removed);

/* A fresh run root with the farm of the lock's plans in <run root>/env
 * and the command's environment (docs/commands/env.md#the-environment). */
typedef struct cli_envroot {
    plan_runroot *rr;
    char *farm;
    plan_strlist env;              /* NAME=value */
} cli_envroot;

/* Plans in the farm's order: the requests as written (plan.yaml's order
 * with pr), then the rest.  EXIT_OK or a reported failure (the run root
 * is removed again). */
int cli_envroot_open(cli *c, plan_store *store, const cli_env_request *rq, const plan_lock *lock,
                     const plan_project *pr, cli_envroot *out);
/* Remove the run root (or, with keep, leave it and say so). */
void cli_envroot_close(cli_envroot *e, bool keep);
/* Set NAME=value in a "NAME=value" list, replacing an earlier value. */
void cli_env_set(plan_strlist *env, const char *name, const char *value);

/* How the command is started. */
typedef struct cli_child {
    char **argv;                   /* looked up on env's PATH */
    plan_strlist *env;
    const char *cwd;               /* NULL: plan's own */
    const plan_limits_setup *limits;   /* NULL: none */
    const plan_isolation *isolation;   /* NULL: none */
    int out_fd, err_fd;            /* -1: plan's own stdout and stderr */
    plan_store *store;             /* its session's descriptor goes with the child */
} cli_child;

/* Fork and exec; the child's pid, or -1 (reported). */
pid_t cli_child_start(cli *c, const cli_child *ch);
/* The exit status plan reports for a wait status: the code, or 128+N. */
int cli_exit_status(int wait_status);
/* Start the command, forward signals sent to plan, wait: its status
 * (plan env's way). */
int cli_child_run(cli *c, const cli_child *ch);

/* The options plan env and plan run share: --limit SPEC, --isolate,
 * --no-network.  Their state, and the run-time pieces made from it. */
typedef struct cli_confine {
    plan_limits limits;
    bool isolate, no_network;
    plan_limits_setup *setup;
    plan_isolation iso;
    plan_strlist keep;             /* what isolation keeps reachable */
    bool reported;                 /* the limits line was printed (once per run) */
} cli_confine;
void cli_confine_init(cli_confine *k);
/* The getopt_long entries of the options plan env and plan run share. */
#define CLI_CONFINE_OPTIONS                                                                     \
    {"limit", required_argument, NULL, 'L'}, {"isolate", no_argument, NULL, 'I'},               \
        {"no-network", no_argument, NULL, 'N'}
/* Take option opt (from CLI_CONFINE_OPTIONS) into k: true when it was one
 * of them, with *rc EXIT_OK or EXIT_USAGE (reported: a --limit SPEC that
 * does not parse; --limit is repeatable, later keys win). */
bool cli_confine_option(cli *c, const command *cmd, cli_confine *k, int opt, const char *arg,
                        int *rc);
/* After the options: --no-network needs --isolate. */
int cli_confine_check(cli *c, const command *cmd, const cli_confine *k);
/* Decide (limits, isolation) once the run root exists; say which limits
 * were applied on stderr (not with -q).  keep: paths to keep reachable
 * under --isolate.  EXIT_OK or a reported failure. */
int cli_confine_prepare(cli *c, plan_store *store, cli_confine *k, const char *name,
                        const char *const *keep, size_t n_keep);
/* Point a child at the prepared limits and isolation. */
void cli_confine_child(const cli_confine *k, cli_child *ch);
/* Remove the cgroup; ready for another cli_confine_prepare. */
void cli_confine_finish(cli_confine *k);

#endif
