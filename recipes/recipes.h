/*
 * recipes.h - recipes: parsing and validating YAML recipes
 * (docs/formats/recipe.md), recipe repositories, and building a recipe into
 * a store path (docs/commands/build.md).
 */
#ifndef PLAN_RECIPES_H
#define PLAN_RECIPES_H

#include "../common/common.h"
#include "../resolver/resolver.h"
#include "../store/store.h"

#include <signal.h>

typedef struct plan_recipe_source {
    char *url;        /* file://, http:// or https://; or NULL with path */
    char *path;       /* a local file or directory, relative to the recipe */
    char *algo;       /* "blake2b" or "sha256" */
    char *hash;       /* 64 hex characters */
    int strip_components;
    char *dest;       /* where to unpack, relative to $src; NULL for the top */
} plan_recipe_source;

typedef struct plan_recipe_dep {
    char *name;
    char *range;
} plan_recipe_dep;

typedef enum plan_env_op { PLAN_ENV_SET, PLAN_ENV_PREPEND, PLAN_ENV_APPEND } plan_env_op;

typedef struct plan_recipe_env {
    char *name;
    plan_env_op op;
    char *value;      /* for prepend/append: a directory relative to the plan */
} plan_recipe_env;

typedef struct plan_recipe_entry {
    char *name;       /* "default" or another entry point */
    char *command;
} plan_recipe_entry;

typedef struct plan_recipe_config {
    char *key;
    char *type;       /* string, int, bool, path */
    char *default_value; /* as text; NULL when required */
    char *description;
    plan_strlist allowed; /* the only values accepted; empty: any of the type */
    char *env;        /* a variable that also receives the value in a run, or NULL */
    char *file;       /* a file (relative to the run's config directory) that
                         receives it, or NULL */
    bool secret;      /* values are always stored and materialised as secrets */
} plan_recipe_config;

typedef struct plan_recipe_resources {
    char *cpu, *mem, *nofile, *nproc, *nice; /* NULL when not set */
} plan_recipe_resources;

typedef struct plan_recipe {
    char *file;       /* as given */
    char *dir;        /* the recipe's directory, absolute */
    char *name, *version, *summary, *license, *homepage;
    plan_recipe_source *sources;
    size_t n_sources;
    plan_recipe_dep *depends;
    size_t n_depends;
    plan_recipe_dep *build_depends;
    size_t n_build_depends;
    char *build, *check;
    plan_recipe_env *env;
    size_t n_env;
    plan_recipe_entry *run;
    size_t n_run;
    plan_recipe_config *config;
    size_t n_config;
    plan_recipe_resources resources;
    char *workdir;    /* plan run's working directory, relative to the run root; NULL: the run root */
    char *state;      /* the name of the plan's state directory in the run root, or NULL */
} plan_recipe;

/* Is value a valid resources value for key (cpu, mem, nofile, nproc, nice)?
 * NULL when it is, else what was expected ("a size such as 512M or 2G"),
 * and for an unknown key NULL with *known false. */
const char *plan_resource_check(const char *key, const char *value, bool *known);
/* NULL when a recipe's (or a manifest's) 'workdir' / 'state' is valid,
 * else what was expected (static text).  A manifest may come from an
 * imported archive: plan run checks both again before it uses them. */
const char *plan_recipe_workdir_problem(const char *workdir);
const char *plan_recipe_state_problem(const char *state);

/* Parse and validate a recipe file.  Errors name file:line:column, the
 * field, what was expected and a hint.  Free with plan_recipe_free. */
int plan_recipe_load(plan_ctx *ctx, const char *file, plan_recipe **out);
/* The same from memory; file names the text in messages and anchors
 * relative source paths. */
int plan_recipe_parse(plan_ctx *ctx, const char *file, const char *text, size_t len,
                      plan_recipe **out);
void plan_recipe_free(plan_recipe *recipe);
/* A commented template recipe for name (caller frees). */
char *plan_recipe_template(const char *name);

/* ---- plan.yaml: what a project needs (docs/formats/plan-yaml.md) ---- */
typedef struct plan_project {
    char *file;
    char *dir;                  /* the folder of plan.yaml, absolute */
    plan_recipe_dep *packages;  /* name -> range */
    size_t n_packages;
    plan_strlist recipes;       /* recipe repositories, absolute */
    plan_strlist env;           /* "NAME=value" */
    plan_strlist prefer;        /* names that win collisions, in order */
    char *durability;           /* configuration only: "deferred", "immediate" or NULL */
    long registry_refresh;      /* configuration only: seconds; -1 when not given */
} plan_project;

int plan_project_load(plan_ctx *ctx, const char *file, plan_project **out);
/* The configuration file (docs/formats/config.md): the same reader, with
 * only 'recipes' and 'durability' allowed; an empty file is an empty
 * configuration.
 * PLAN_ERR_NOT_FOUND when the file does not exist. */
int plan_config_load(plan_ctx *ctx, const char *file, plan_project **out);
void plan_project_free(plan_project *project);

/* ---- recipe repositories: folders of *.yaml recipes ---- */
typedef struct plan_recipe_repo plan_recipe_repo;
/* Load every recipe below the given folders (recursively, *.yaml and
 * *.yml).  A recipe that does not parse is an error naming it. */
int plan_recipe_repo_open(plan_ctx *ctx, const char *const *dirs, size_t n,
                          plan_recipe_repo **out);
/* A folder that was not named as a repository (a recipe's own): only its
 * top level is read, and files that are not recipes are skipped (an INFO
 * event says so). */
int plan_recipe_repo_open_folder(plan_ctx *ctx, const char *dir, plan_recipe_repo **out);
void plan_recipe_repo_free(plan_recipe_repo *repo);
/* The highest version of name that satisfies range (NULL: any), owned by
 * the repository.  PLAN_ERR_NOT_FOUND with an explanation otherwise. */
int plan_recipe_repo_find(plan_recipe_repo *repo, const char *name, const char *range,
                          const plan_recipe **out);

/* The recipe for exactly name@version, or NULL. */
const plan_recipe *plan_recipe_repo_exact(plan_recipe_repo *repo, const char *name,
                                          const char *version);
/* The repository as a solver provider (versions and dependencies; build
 * and run-time dependencies alike).  repo must outlive the solver. */
plan_resolver_provider plan_recipe_repo_provider(plan_recipe_repo *repo);

/* ---- building ---- */
typedef struct plan_build_opts {
    const char *cache_dir;     /* downloaded sources */
    const char *log_dir;       /* build logs (may be NULL with reuse_only) */
    plan_recipe_repo *repo;    /* where dependencies come from; may be NULL */
    bool sandbox;              /* Linux namespaces, where available */
    bool stream_log;           /* -L: emit every log line as an event */
    bool rebuild_check;        /* --check: build again and compare */
    bool reuse_only;           /* build nothing: PLAN_ERR_NOT_FOUND unless realised */
    unsigned jobs;             /* PLAN_JOBS; 0: one per core */
    /* Set (by a signal handler) to ask a running build to stop; it then
     * kills the build, removes its output and returns PLAN_ERR_FAILED. */
    volatile sig_atomic_t *cancel;
    /* Versions to keep for dependencies wherever they fit (a lock). */
    const plan_lock *pins;
    bool offline;              /* sources only from the cache or file:// */
} plan_build_opts;

typedef struct plan_build_result {
    char *path;        /* the store path; caller frees */
    bool reused;       /* nothing was built: the realisation was known */
    char *log;         /* the build log, if one was written; caller frees */
    /* --check: differing files (relative paths); empty when reproducible */
    plan_strlist differences;
} plan_build_result;

/* Build recipe (and, first, its missing dependencies).  Release the result
 * with plan_build_result_release. */
int plan_build(plan_store *store, const plan_recipe *recipe, const plan_build_opts *opts,
               plan_build_result *out);
void plan_build_result_release(plan_build_result *r);

/* The log file of the build that produced a store path (caller frees). */
int plan_build_log_path(plan_store *store, const char *log_dir, const char *path,
                        char **log);

/* "blake2b:<hex>" of a recipe file's bytes: its identity in a lock
 * (caller frees; NULL with an error on the context). */
char *plan_recipe_file_hash(plan_ctx *ctx, const char *file);

/* A fingerprint of recipe repositories without parsing them: the path,
 * size and modification time of every recipe file, hashed.  Equal
 * fingerprints mean the same recipes (out: PLAN_HASH_TEXT_LEN + 1). */
int plan_recipe_repo_fingerprint(plan_ctx *ctx, const char *const *dirs, size_t n, char *out);

/* ---- realising a lock: every package's store path ---- */
/* For each package of lock: when its recorded path is in the store, hold
 * it; otherwise build its recipe from repo (NULL: fail, naming the
 * package) with the lock's versions pinned, and record the path.  With
 * frozen, a recipe whose hash differs from the lock's is an error (the
 * lock is stale). */
int plan_realise_lock(plan_store *store, plan_lock *lock, plan_recipe_repo *repo,
                      const plan_build_opts *opts, bool frozen);
/* True when every package has a path that is in the store (and is now
 * held); false otherwise (nothing is reported). */
bool plan_lock_present(plan_store *store, const plan_lock *lock);

/* ---- composing an environment from plans' manifests ---- */
typedef struct plan_env_item {
    char *name;
    plan_env_op op;
    char *value;      /* absolute: a directory of the farm, or set's text */
} plan_env_item;

typedef struct plan_env_plan {
    plan_env_item *items;
    size_t n, cap;
} plan_env_plan;

/* The env declarations of the plans (store paths, in order), with their
 * directories taken in the merged tree farm (so PATH gets <farm>/bin once,
 * not one entry per plan).  <farm>/bin goes first on PATH when any plan
 * has a bin, declared or not.  A 'set' keeps the plan's own store path for $out.
 * With store (optional), the manifests it wrote in this process are read
 * from it rather than from the disk (plan_store_written_manifest). */
int plan_env_compose(plan_ctx *ctx, const plan_store *store, const char *const *paths, size_t n,
                     const char *farm, plan_env_plan *out);
void plan_env_plan_release(plan_env_plan *e);
/* Apply to a list of "NAME=value" strings (changed in place).  Per
 * variable: its prepends in plan order, then its value (the last set, else
 * the one in the list), then its appends in plan order, ':'-separated. */
void plan_env_apply(const plan_env_plan *e, plan_strlist *environ_list);

/* ---- a plan's dynamic configuration (docs/commands/config.md) ---- */
/* NULL when value fits the key's type and allowed values, else what was
 * expected ("expected an integer for type int"; caller frees). */
char *plan_config_check_value(const plan_recipe_config *key, const char *value);

/* The configuration schema a store path's manifest declares. */
typedef struct plan_config_schema {
    char *path;                 /* the store path it was read from */
    plan_recipe_config *keys;   /* in the manifest's order (sorted by key) */
    size_t n;
} plan_config_schema;

/* Read the schema from <plan_path>/.plan/manifest.json; a path without a
 * manifest has an empty schema.  A manifest's declarations are checked as
 * a recipe's are (it may come from an import).  Release with
 * plan_config_schema_release. */
int plan_config_schema_load(plan_ctx *ctx, const char *plan_path, plan_config_schema *out);
void plan_config_schema_release(plan_config_schema *s);
/* The key, or NULL. */
const plan_recipe_config *plan_config_schema_key(const plan_config_schema *s, const char *key);

/* Which store path gives name its schema: the plan named name in the
 * current generation of profile (when profile is not NULL and exists),
 * else the registered path of that name with the highest version (SemVer
 * precedence; the latest registered among equals).  PLAN_ERR_NOT_FOUND
 * with a message naming the way out when there is none.  Caller frees. */
int plan_config_find_plan(plan_store *store, const char *name, const char *profile,
                          char **path);

/* Check value for key of name against schema; the message names the key
 * and what was expected, and never repeats a secret value.
 * PLAN_ERR_INVALID or 0. */
int plan_config_validate(plan_ctx *ctx, const char *name, const plan_config_schema *schema,
                         const char *key, const char *value, bool secret);

typedef struct plan_run_config {
    plan_strlist env_names, env_values; /* variables to set in the run */
    int64_t version;                    /* config version used; 0 = defaults only */
    bool overridden;                    /* an override file was applied */
} plan_run_config;

/* Effective configuration of the plan at store path `plan_path` (its
 * manifest gives the schema) named `name`: stored values, else defaults;
 * override_file (JSON or YAML mapping key -> value, may be NULL) wins for
 * this run only and is validated the same way.  Writes the declared files
 * under config_dir (created, 0700; secrets 0600) and fills out.  A required
 * key (no default) that is unset is an error naming it and the command to
 * set it.  Release with plan_run_config_release. */
int plan_config_materialise(plan_store *store, const char *name, const char *plan_path,
                            const char *config_dir, const char *override_file,
                            plan_run_config *out);
void plan_run_config_release(plan_run_config *c);
/* ---- resource limits and isolation for plan run and plan env
 * (recipes/limits.c; docs/commands/run.md#limits) ---- */
enum {
    PLAN_LIMIT_CPU, PLAN_LIMIT_MEM, PLAN_LIMIT_NOFILE, PLAN_LIMIT_NPROC, PLAN_LIMIT_NICE,
    PLAN_LIMIT_COUNT
};

typedef struct plan_limits {
    bool set[PLAN_LIMIT_COUNT];
    bool required[PLAN_LIMIT_COUNT];  /* from --limit: an error when it cannot be applied */
    char text[PLAN_LIMIT_COUNT][32];  /* as written */
    double cpu;                       /* CPUs */
    uint64_t mem;                     /* bytes */
    long nofile, nproc, nice;
} plan_limits;

/* The key of a limit ("cpu", ...), by its index. */
const char *plan_limit_name(int which);
/* Set one limit from its text, validated as a recipe's resources are;
 * required marks it as asked for explicitly.  PLAN_ERR_INVALID naming the
 * key and what was expected. */
int plan_limits_set(plan_ctx *ctx, plan_limits *l, const char *key, const char *value,
                    bool required);
/* "cpu=0.5,mem=64M,nofile=256,nproc=32,nice=10" (any subset), each required. */
int plan_limits_parse(plan_ctx *ctx, plan_limits *l, const char *spec);
bool plan_limits_any(const plan_limits *l);

/* How the limits are applied: setrlimit (mem as RLIMIT_DATA, nofile,
 * nproc), setpriority (nice), and a cgroup v2 child group (memory.max,
 * cpu.max, pids.max) when /sys/fs/cgroup is a cgroup v2 hierarchy that
 * can be written.  A required limit that nothing can apply is an error;
 * a default one is left out and said so in the report. */
typedef struct plan_limits_setup plan_limits_setup;
/* Decide, and make the cgroup (named after name) if one is used.  Free
 * with plan_limits_setup_free, which removes the cgroup. */
int plan_limits_prepare(plan_ctx *ctx, const plan_limits *l, const char *name,
                        plan_limits_setup **out);
/* One line for people: "mem=64M (RLIMIT_DATA), nofile=256 (RLIMIT_NOFILE); not applied: cpu=0.5 (...)". */
const char *plan_limits_report(const plan_limits_setup *s);
/* In the forked child: join the cgroup first (so that everything the
 * child starts is in it), and set the rlimits and the nice value last,
 * right before exec (so that nothing of plan's own runs under a small
 * RLIMIT_DATA).  0, or -1 with a message in err. */
int plan_limits_join(const plan_limits_setup *s, char *err, size_t errlen);
int plan_limits_apply(const plan_limits_setup *s, char *err, size_t errlen);
void plan_limits_setup_free(plan_limits_setup *s);

typedef struct plan_isolation {
    bool no_network;
    const char *store_dir;          /* read-only inside */
    const char *const *keep;        /* directories that must stay reachable (run root, state, cwd) */
    size_t n_keep;
} plan_isolation;
/* Can this process isolate (mount, PID, IPC, and network with
 * no_network)?  0, or PLAN_ERR_FAILED naming the namespace that is
 * unavailable and the way out (run without --isolate). */
int plan_isolation_check(plan_ctx *ctx, bool no_network);
/* In the forked child, after plan_limits_join: enter the namespaces.
 * Returns 0 in the process that is to exec the command; the processes
 * above it forward signals and _exit with its status.  -1 with a message
 * in err. */
int plan_isolation_enter(const plan_isolation *iso, char *err, size_t errlen);

/* ---- merging plans into a new plan (docs/commands/merge.md) ---- */
typedef struct plan_merge_request {
    const plan_farm_plan *plans; /* registered store paths (held), in order */
    size_t n_plans;              /* at least 2 */
    const char *name, *version;  /* of the new plan */
    plan_collide strategy;
    const char *const *prefer;   /* names that win each conflict they are in */
    size_t n_prefer;
    bool merge_config;           /* deep-merge JSON and YAML files that differ */
} plan_merge_request;

typedef struct plan_merge_result {
    char *path;                  /* the new store path; caller frees */
    bool existed;                /* the same merge was there: nothing written */
    plan_merge_stats stats;
    size_t n_references;
} plan_merge_result;

/* Merge the plans: the union of their trees (store/merge.c), a merged
 * manifest (entry points, env, configuration schema, resources, depends,
 * lineage) and, with merge_config, JSON and YAML files merged key by key.
 * A plan without a readable manifest is merged as a plain tree.  Every
 * conflict (paths, entry points, configuration keys, key paths inside
 * files) is listed in one error.  Release with plan_merge_result_release. */
int plan_merge_plans(plan_store *store, const plan_merge_request *req, plan_merge_result *out);
void plan_merge_result_release(plan_merge_result *r);

/* The lineage recorded in a plan's manifest: the plans it was merged from,
 * each with its store path in this store (from its name, version and
 * content hash) and, when it was a merge too, its own lineage. */
typedef struct plan_lineage {
    char *name, *version, *content_hash;
    char *basename;              /* <digest>-<name>-<version> in this store */
    bool present;                /* registered here */
    struct plan_lineage *parts;  /* its own lineage */
    size_t n_parts;
} plan_lineage;

/* *n is 0 when the plan is not a merge (or has no manifest).  Free with
 * plan_lineage_free. */
int plan_lineage_read(plan_store *store, const char *path, plan_lineage **out, size_t *n);
void plan_lineage_free(plan_lineage *l, size_t n);

#endif
