/* cli.h - private to cli/: the front end's state, the command table and the
 * output helpers shared by the cmd_*.c files. */
#ifndef PLAN_CLI_H
#define PLAN_CLI_H

#include "../common/common.h"
#include "../store/store.h"

#include <jansson.h>
#include <signal.h>

/* Exit codes (docs/commands/plan.md). */
enum { EXIT_OK = 0, EXIT_FAILURE_ = 1, EXIT_USAGE = 2 };

typedef struct progress_state {
    char phase[96];
    uint64_t done, total;
    bool bytes;
    bool drawn;          /* a bar is on screen and must be cleared */
    double last_draw;    /* monotonic seconds */
    double started;
} progress_state;

typedef struct cli {
    plan_ctx *ctx;
    char *root;          /* --root, PLAN_ROOT, or the XDG default */
    bool root_explicit;  /* given by --root or PLAN_ROOT */
    bool json, quiet, verbose, color;
    bool tty;            /* stderr is a terminal: progress bars allowed */
    progress_state progress;
    struct plan_project *config; /* the configuration file, once read (cli_config) */
    bool config_read;
} cli;

struct command;
typedef int (*command_fn)(cli *c, const struct command *cmd, int argc, char **argv);

typedef struct command {
    const char *name;
    command_fn run;
    const char *summary;
    const char *help;    /* usage, options and examples */
} command;

/* The sorted command table (commands.c) and the store's subcommands. */
extern const command plan_commands[];
extern const size_t plan_command_count;
const command *cli_find_command(const command *table, size_t n, const char *name);
/* Print "unknown command" with the nearest match; returns EXIT_USAGE. */
int cli_unknown_command(cli *c, const command *table, size_t n, const char *prefix,
                        const char *name);

/* ---- output (output.c) ---- */
void cli_render_event(const plan_event *ev, void *user);
/* Report a failure from the library (message on the context); EXIT_FAILURE_. */
int cli_fail(cli *c);
/* Report a failure with our own message; EXIT_FAILURE_. */
int cli_error(cli *c, const char *fmt, ...) PLAN_PRINTF(2, 3);
/* A usage error: message, then a pointer to --help; EXIT_USAGE. */
int cli_usage(cli *c, const command *cmd, const char *fmt, ...) PLAN_PRINTF(3, 4);
void cli_print_help(const command *cmd);
void cli_print_global_help(void);
/* Print json to stdout (and free it). */
void cli_print_json(json_t *json);
void cli_clear_progress(cli *c);
/* "-h/--help" anywhere before "--" in argv: print the help, return true. */
bool cli_wants_help(const command *cmd, int argc, char **argv);

/* ---- helpers ---- */
volatile sig_atomic_t *cli_catch_interrupts(void);
/* While a command runs: INT, TERM, HUP and QUIT sent to plan by a process
 * (not by the terminal, which signals the command itself) are forwarded to
 * the pid of cli_forward_to; each one received is noted for
 * cli_forward_take (the last signal since the previous take, or 0; with
 * *was_missed true when it came while no pid was set, so nobody got it). */
typedef struct cli_forwarding {
    struct sigaction old[4];
} cli_forwarding;
void cli_forward_begin(cli_forwarding *f);
void cli_forward_to(pid_t pid);
int cli_forward_take(bool *was_missed);
void cli_forward_end(cli_forwarding *f);
/* In a forked child: those four, and SIGPIPE, back to their defaults. */
void cli_child_signals_default(void);
char *cli_cache_dir(const cli *c); /* caller frees */
char *cli_log_dir(const cli *c);   /* caller frees */
/* --threads N (1..64); EXIT_USAGE with a message when it is not. */
int cli_parse_threads(cli *c, const command *cmd, const char *text, long *out);
/* The configuration file (docs/formats/config.md), read on first use:
 * *out is NULL when there is none.  EXIT_FAILURE_ (reported) when it does
 * not read. */
int cli_config(cli *c, const struct plan_project **out);
/* The same, unreported: a configuration that does not read counts as
 * none here (NULL); the commands that open the store report it. */
const struct plan_project *cli_config_quiet(cli *c);
/* Does the configuration ask for durability: immediate?  (As
 * cli_config_quiet reads it.) */
bool cli_flushes(cli *c);
/* Open the store at the root, with the configuration's durability. */
int cli_open_store(cli *c, plan_store **out);
/* The same, with the error left on the context, unreported (and the
 * configuration as cli_config_quiet reads it). */
int cli_open_store_quietly(cli *c, plan_store **out);
json_t *cli_path_info_json(const plan_path_info *info);

/* ---- commands ---- */
int cmd_build(cli *c, const command *cmd, int argc, char **argv);
int cmd_config(cli *c, const command *cmd, int argc, char **argv);
int cmd_env(cli *c, const command *cmd, int argc, char **argv);
int cmd_gc(cli *c, const command *cmd, int argc, char **argv);
int cmd_generations(cli *c, const command *cmd, int argc, char **argv);
int cmd_info(cli *c, const command *cmd, int argc, char **argv);
int cmd_install(cli *c, const command *cmd, int argc, char **argv);
int cmd_keys(cli *c, const command *cmd, int argc, char **argv);
int cmd_list(cli *c, const command *cmd, int argc, char **argv);
int cmd_logs(cli *c, const command *cmd, int argc, char **argv);
int cmd_ps(cli *c, const command *cmd, int argc, char **argv);
int cmd_registry(cli *c, const command *cmd, int argc, char **argv);
int cmd_remove(cli *c, const command *cmd, int argc, char **argv);
int cmd_rollback(cli *c, const command *cmd, int argc, char **argv);
int cmd_run(cli *c, const command *cmd, int argc, char **argv);
int cmd_shell_init(cli *c, const command *cmd, int argc, char **argv);
int cmd_stop(cli *c, const command *cmd, int argc, char **argv);
int cmd_upgrade(cli *c, const command *cmd, int argc, char **argv);
int cmd_help(cli *c, const command *cmd, int argc, char **argv);
int cmd_lock(cli *c, const command *cmd, int argc, char **argv);
int cmd_log(cli *c, const command *cmd, int argc, char **argv);
int cmd_merge(cli *c, const command *cmd, int argc, char **argv);
int cmd_publish(cli *c, const command *cmd, int argc, char **argv);
int cmd_recipe(cli *c, const command *cmd, int argc, char **argv);
int cmd_search(cli *c, const command *cmd, int argc, char **argv);
int cmd_semver(cli *c, const command *cmd, int argc, char **argv);
int cmd_store(cli *c, const command *cmd, int argc, char **argv);
int cmd_version(cli *c, const command *cmd, int argc, char **argv);
int cmd_why(cli *c, const command *cmd, int argc, char **argv);
int cmd_yank(cli *c, const command *cmd, int argc, char **argv);

int cmd_store_add(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_export(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_hash(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_import(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_optimise(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_path_info(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_repair(cli *c, const command *cmd, int argc, char **argv);
int cmd_store_verify(cli *c, const command *cmd, int argc, char **argv);
extern const command plan_store_commands[];
extern const size_t plan_store_command_count;

#endif
