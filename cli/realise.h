/* realise.h - private to cli/: what install, upgrade, remove and env share:
 * where recipes come from, request parsing, profile updates, and turning a
 * composed environment into shell text. */
#ifndef PLAN_CLI_REALISE_H
#define PLAN_CLI_REALISE_H

#include "cli.h"
#include "../recipes/recipes.h"
#include "../fetch/fetch.h"

#include <pthread.h>

/* The configuration file: $PLAN_CONFIG, <root>/config.yaml with an
 * explicit root, else $XDG_CONFIG_HOME/plan/config.yaml (caller frees). */
char *cli_config_file(const cli *c);
/* Recipe repositories from the configuration file (none when it does not
 * exist).  EXIT_OK or EXIT_FAILURE_ (reported). */
int cli_config_recipes(cli *c, plan_strlist *out);
/* The folder of the configuration file: keys/ and trusted-keys live there
 * (caller frees). */
char *cli_config_dir(const cli *c);
/* <config>/registries.json and <root>/var/db/registry.db (caller frees). */
char *cli_registries_file(const cli *c);
char *cli_regdb_path(const cli *c);
/* Where run roots go: $PLAN_RUN_DIR, $XDG_RUNTIME_DIR/plan, a tmpfs
 * /dev/shm/plan-<uid>, else <root>/var/run (caller frees). */
char *cli_run_dir(const cli *c);

/* "NAME" or "NAME@RANGE" into its parts (caller frees both; range NULL
 * when absent).  EXIT_USAGE (reported) on a malformed request. */
int cli_split_request(cli *c, const command *cmd, const char *arg, char **name, char **range);

/* A lineage as JSON: [{name, version, content_hash, path, present,
 * lineage?}] (cmd_store_path_info.c). */
json_t *cli_lineage_json(const plan_lineage *l, size_t n);

/* Shell text that applies e: kind is "sh" (bash, zsh, dash) or "fish". */
char *cli_env_script(const plan_env_plan *e, const char *kind, const char *comment);

/* Build options for realising packages (owned strings freed by
 * cli_build_opts_release). */
void cli_build_opts_init(cli *c, plan_build_opts *bo, plan_recipe_repo *repo);
void cli_build_opts_release(plan_build_opts *bo);

/* Where packages come from: recipe repositories, then registries. */
typedef struct cli_sources {
    plan_recipe_repo *repo;     /* NULL without recipe repositories */
    plan_registries regs;
    plan_keyring trusted;       /* publisher keys */
    plan_regdb *db;
    plan_regsource *reg;        /* NULL without registries */
    bool *skipped;              /* per registry: not updated, its cache was fresh */
    plan_strlist unreachable;   /* registries whose update failed in this command */
    bool preloading;            /* libcurl is loading on preload */
    pthread_t preload;
} cli_sources;

/* How much to ask the registries before using their caches
 * (docs/commands/registry.md#freshness). */
typedef enum cli_update {
    UPDATE_NEVER,   /* the caches as they are (--frozen) */
    UPDATE_STALE,   /* each registry not updated in the last registry-refresh seconds
                       (the configuration; CLI_REGISTRY_FRESH by default) */
    UPDATE_ALWAYS,  /* every registry */
} cli_update;
#define CLI_REGISTRY_FRESH 300

/* Open the recipe repositories (may be NULL/empty) and the configured
 * registries, updating them as update says (an unreachable one is a
 * warning, tampered metadata an error).  Close with cli_sources_close,
 * also after a failure.  0 or a plan_err (the message on the context, not
 * yet reported). */
int cli_sources_open(cli *c, const plan_strlist *recipe_dirs, cli_update update,
                     cli_sources *s);
/* Update the registries that cli_sources_open found fresh enough to skip,
 * and start reading them afresh; false when there were none. */
bool cli_sources_refresh(cli *c, cli_sources *s, int *rc);
void cli_sources_close(cli_sources *s);
plan_resolver_provider cli_sources_provider(cli_sources *s);
/* Load and verify ahead, on several threads, the registry indexes of the
 * names no recipe repository has (plan_regsource_prefetch). */
void cli_sources_prefetch(cli_sources *s, const plan_strlist *names);
/* Download (unless offline), verify and import the lock's registry
 * packages; a path the lock names must be the one the registry publishes. */
int cli_sources_realise_published(cli *c, cli_sources *s, plan_store *store, plan_lock *lock,
                                  bool offline);

/* A profile opened for reading: the store, the profile (locked) and,
 * with read_records, its generations.  EXIT_OK or EXIT_FAILURE_
 * (reported).  Close with cli_profile_view_close. */
typedef struct cli_profile_view {
    plan_store *store;
    plan_profile *profile;
    plan_generation *gens;
    size_t n;
    const plan_generation *current; /* NULL when there is none */
} cli_profile_view;
int cli_profile_view_open(cli *c, const char *name, bool read_records, cli_profile_view *v);
void cli_profile_view_close(cli_profile_view *v);

/* Refresh every registry's metadata; one that fails is a warning (search
 * and info then read the verified cache). */
void cli_update_registries(cli *c, plan_registries *regs, plan_regdb *d);
/* plan_registry_update of regs->items[i]; when the registry rotated its
 * key (vouched for by the pinned one), the new key is pinned in regs and
 * saved to the registries file, and the user told. */
int cli_registry_update(cli *c, plan_regdb *d, plan_registries *regs, size_t i,
                        plan_update_report *rep);
/* Check and remember, in the registry cache, the publisher signatures of
 * the newest versions in regs->items[i]'s cached indexes
 * (plan_regsource_vouch), with this machine's trusted keys and cache key.
 * Never fails: what it cannot do is verified when a command needs it. */
void cli_remember_checks(cli *c, plan_regdb *d, plan_registries *regs, size_t i);

/* A change to a profile: what install, upgrade and remove do. */
typedef enum { CHANGE_INSTALL, CHANGE_UPGRADE, CHANGE_REMOVE } change_kind;

typedef struct profile_change {
    change_kind kind;
    const char *profile;
    plan_strlist names, ranges;   /* install: requests (range NULL-less: "" for none);
                                     upgrade/remove: names */
    plan_strlist recipes;         /* --recipes */
    plan_strlist prefer;          /* --prefer */
    const char *strategy;         /* --strategy, or NULL to keep */
} profile_change;

/* Parse the options install, upgrade and remove share (--profile,
 * --recipes, --prefer, --strategy) and the NAME[@RANGE] arguments, then
 * apply the change. */
int cli_profile_command(cli *c, const command *cmd, change_kind kind, int argc, char **argv);
int cli_profile_change(cli *c, const profile_change *ch);
/* --profile, else $PLAN_PROFILE, else "default". */
const char *cli_profile_name(const char *option);

#endif
