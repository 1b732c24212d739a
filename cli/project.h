/* project.h - private to cli/: plan.yaml resolved into a plan.lock. */
#ifndef PLAN_CLI_PROJECT_H
#define PLAN_CLI_PROJECT_H

#include "cli.h"
#include "realise.h"

/* plan.yaml -> plan.lock next to it (caller frees). */
char *cli_lock_path(const char *project_file);
/* Resolve the project's packages (keeping previous's versions where they
 * still fit) into a new lock.  Free with plan_lock_free. */
/* Resolve requests (names[i] within ranges[i]) against repo into a lock,
 * keeping previous's versions where they fit, except for the names in
 * upgrade.  Recipe paths are relative to project_dir (NULL: absolute).
 * what names the requests in a failure ("the packages of 'plan.yaml'"). */
int cli_resolve(cli *c, cli_sources *src, const plan_strlist *names,
                const plan_strlist *ranges, const plan_lock *previous,
                const plan_strlist *upgrade, const char *project_dir, const char *what,
                plan_lock **out);
/* The same for a plan.yaml, against sources already open. */
int cli_resolve_project_in(cli *c, cli_sources *src, const plan_project *project,
                           const plan_lock *previous, plan_lock **out);
/* The same, opening the plan.yaml's sources (every registry updated:
 * 'plan lock'). */
int cli_resolve_project(cli *c, const plan_project *project, const plan_lock *previous,
                        plan_lock **out);

#endif
