/* project.h - private to cli/: plan.yaml resolved into a plan.lock. */
#ifndef PLAN_CLI_PROJECT_H
#define PLAN_CLI_PROJECT_H

#include "cli.h"
#include "../recipes/recipes.h"

/* plan.yaml -> plan.lock next to it (caller frees). */
char *cli_lock_path(const char *project_file);
/* Resolve the project's packages (keeping previous's versions where they
 * still fit) into a new lock.  Free with plan_lock_free. */
int cli_resolve_project(cli *c, const plan_project *project, const plan_lock *previous,
                        plan_lock **out);

#endif
