/* runs.h - private to cli/: the records of plan run under <root>/var/runs
 * (docs/formats/run.md), shared by run, ps, logs and stop. */
#ifndef PLAN_CLI_RUNS_H
#define PLAN_CLI_RUNS_H

#include "cli.h"

#include <jansson.h>

/* <root>/var/runs (caller frees). */
char *cli_runs_dir(const cli *c);

/* A run being supervised: its folder, its record and the lock that says
 * the supervisor is alive. */
typedef struct cli_run {
    char id[9];
    char *dir;
    json_t *rec;
    int lock_fd;
} cli_run;

/* Make a new run folder with a fresh id and lock it.  EXIT_OK or a
 * reported failure. */
int cli_run_create(cli *c, cli_run *r);
/* Write the record atomically (a failure is a warning: the run goes on). */
void cli_run_save(cli *c, cli_run *r);
/* Unlock and free (the folder stays: it holds the logs). */
void cli_run_close(cli_run *r);
/* <dir>/attempt-N.log (caller frees). */
char *cli_run_log_path(const char *dir, long attempt);

/* A run's record by id, for the other commands.  *dir and *rec are the
 * caller's.  EXIT_OK, or a reported failure naming the id. */
int cli_run_open(cli *c, const char *id, char **dir, json_t **rec);
/* Is its supervisor alive (it holds the lock)? */
bool cli_run_alive(const char *dir);
/* What people see: the recorded state while the supervisor is alive;
 * "lost" when it died without recording the end; else "exited". */
const char *cli_run_state(const json_t *rec, bool alive);
/* Every run's id, sorted (caller frees). */
int cli_runs_list(cli *c, plan_strlist *ids);

#endif
