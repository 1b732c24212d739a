/*
 * resolver.h - SemVer versions and npm-style ranges, and the dependency
 * solver (PubGrub) that picks one version per package name.
 *
 * Versions follow SemVer 2.0.0 strictly; ranges follow npm's grammar and
 * meaning (docs/formats/semver.md).  The solver reads packages through a
 * small provider interface, so the same code serves recipe repositories,
 * registry indexes and test fixtures (docs/solver.md).
 *
 * Like every library here it never prints and never exits: errors are
 * negative plan_err codes with a message on the plan_ctx.  A NULL ctx is
 * accepted by the SemVer functions when the caller does not want the
 * message (plan semver skips invalid versions that way).
 */
#ifndef PLAN_RESOLVER_H
#define PLAN_RESOLVER_H

#include "../common/common.h"

/* ---------------------------------------------------------------- SemVer */

/* npm's limits: longer versions and larger numbers are refused, which also
 * bounds the work any input can cause. */
#define PLAN_SEMVER_MAX_LEN 256
#define PLAN_SEMVER_MAX_NUMBER 9007199254740991ULL /* 2^53 - 1 */
/* Our limits for ranges (npm has none): long enough for any real range. */
#define PLAN_SEMVER_RANGE_MAX_LEN 2048
#define PLAN_SEMVER_RANGE_MAX_COMPARATORS 256

typedef struct plan_semver {
    uint64_t major, minor, patch;
    char *prerelease; /* "beta.2" without the '-', or NULL; owned */
    char *build;      /* "exp.sha.5114f85" without the '+', or NULL; owned */
} plan_semver;

/* Parse a strict SemVer 2.0.0 version.  A leading 'v' is accepted (as npm
 * does) and dropped; surrounding whitespace is not.  On success *out owns
 * its strings: release it with plan_semver_release.  PLAN_ERR_INVALID with
 * a message otherwise, and *out is left empty. */
int plan_semver_parse(plan_ctx *ctx, const char *text, plan_semver *out);
void plan_semver_release(plan_semver *v);
/* Deep copy into *out (release it as above). */
void plan_semver_copy(plan_semver *out, const plan_semver *v);
/* SemVer precedence: negative, 0 or positive.  Build metadata is ignored,
 * so 1.0.0+a and 1.0.0+b compare equal. */
int plan_semver_compare(const plan_semver *a, const plan_semver *b);
/* As plan_semver_compare, then build metadata bytewise (none first): a
 * total order for sorting and display. */
int plan_semver_compare_full(const plan_semver *a, const plan_semver *b);
/* "1.2.3-beta.1+build.7" (build metadata kept for display); caller frees. */
char *plan_semver_format(const plan_semver *v);

/* A parsed range: sets of comparators joined by "||".  Opaque. */
typedef struct plan_semver_range plan_semver_range;

/* Parse an npm range ("^1.2.3", "1.x || >=2.5.0 <3", "1.2 - 2", ...).
 * *out is owned by the caller: free it with plan_semver_range_free.
 * PLAN_ERR_INVALID with a message naming the bad part otherwise. */
int plan_semver_range_parse(plan_ctx *ctx, const char *text, plan_semver_range **out);
void plan_semver_range_free(plan_semver_range *r);
/* npm's satisfies(): some set has every comparator true, and a prerelease
 * version only matches a set with a comparator that names a prerelease of
 * the same major.minor.patch. */
bool plan_semver_range_satisfies(const plan_semver_range *r, const plan_semver *v);
/* True when the range mentions a prerelease anywhere (so it may match one). */
bool plan_semver_range_has_prerelease(const plan_semver_range *r);
/* The desugared form, comparators joined by spaces and sets by "||", as
 * npm's validRange prints it ("^1.2.3" -> ">=1.2.3 <2.0.0-0", "*" -> "*").
 * Caller frees. */
char *plan_semver_range_format(const plan_semver_range *r);

/* ---------------------------------------------------------------- solver */

/* Where the solver reads packages.  Both callbacks return 0, or a negative
 * plan_err with a message on ctx, which aborts the solve with that error.
 * Strings added to the lists are copied by the lists (plan_strlist_add). */
typedef struct plan_resolver_provider {
    /* Every version of `name`, in any order, as the source spells them
     * (invalid ones are skipped with a warning event).  PLAN_ERR_NOT_FOUND
     * (no message needed) when there is no package of that name: the
     * solver turns it into an explanation rather than an error. */
    int (*versions)(void *user, plan_ctx *ctx, const char *name, plan_strlist *out);
    /* The dependencies of name@version: names[i] needs ranges[i]. */
    int (*dependencies)(void *user, plan_ctx *ctx, const char *name, const char *version,
                        plan_strlist *names, plan_strlist *ranges);
    void *user;
} plan_resolver_provider;

typedef struct plan_resolver plan_resolver;

/* A solver for one resolution.  The provider struct is copied; its user
 * data must outlive the solver.  Free with plan_resolver_free. */
plan_resolver *plan_resolver_new(plan_ctx *ctx, const plan_resolver_provider *provider);
void plan_resolver_free(plan_resolver *r);

/* What the user asked for: name must be satisfied by range.  A name asked
 * for twice must satisfy both.  PLAN_ERR_INVALID if the range does not
 * parse (the message names it). */
int plan_resolver_require(plan_resolver *r, const char *name, const char *range);
/* A locked (preferred) version: chosen whenever it still satisfies every
 * requirement, so a new resolution moves only what it must. */
int plan_resolver_lock(plan_resolver *r, const char *name, const char *version);
/* Forget the lock of `name` (plan upgrade NAME); NULL forgets all locks. */
void plan_resolver_upgrade(plan_resolver *r, const char *name);

/* One package of a solution. */
typedef struct plan_resolved {
    const char *name;
    const char *version;      /* as the provider spelled it */
    /* Why it is here, for `plan why`: the package whose dependency pulled
     * it in first (breadth-first from the request), as an index into the
     * solution, or SIZE_MAX when the request itself asks for it; and the
     * range of that requirement.  Following `parent` reaches the request. */
    size_t parent;
    const char *required_as;
    /* Its own dependencies, each an index into the solution and the range
     * asked for (deps[i] needs ranges[i]). */
    size_t *deps;
    const char **dep_ranges;
    size_t ndeps;
} plan_resolved;

typedef struct plan_resolution {
    plan_resolved *packages;  /* sorted by name */
    size_t count;
    /* How hard it was: decisions taken and conflicts resolved. */
    uint64_t decisions, conflicts;
} plan_resolution;

/* Solve.  On success returns 0 and *out points to a resolution owned by the
 * resolver (valid until plan_resolver_free).  When no set of versions
 * satisfies the request, returns PLAN_ERR_FAILED with a one-line message on
 * the context, and plan_resolver_explain gives the whole explanation.  Any
 * other code is an error from the provider or bad input. */
int plan_resolver_solve(plan_resolver *r, const plan_resolution **out);
/* After a failed solve: the explanation in plain words, several lines,
 * ending with what the user could change; NULL if the solve did not fail
 * for lack of a solution.  Owned by the resolver. */
const char *plan_resolver_explain(const plan_resolver *r);

/* ---- an in-memory index: the provider for fixtures and small indexes ---- */

typedef struct plan_resolver_index plan_resolver_index;

plan_resolver_index *plan_resolver_index_new(void); /* free with _index_free */
void plan_resolver_index_free(plan_resolver_index *ix);
/* Add name@version (strings copied); later calls add to the latest one. */
void plan_resolver_index_add(plan_resolver_index *ix, const char *name, const char *version);
void plan_resolver_index_add_dep(plan_resolver_index *ix, const char *name, const char *range);
/* A provider that reads ix (which must outlive the solve). */
plan_resolver_provider plan_resolver_index_provider(plan_resolver_index *ix);

/* A resolution problem in the text format of docs/solver.md (sections
 * [index], [request], [lock], [upgrade], and the expectations [result] and
 * [explain] that the tests compare against). */
typedef struct plan_resolver_problem {
    plan_resolver_index *index;
    plan_strlist req_names, req_ranges;
    plan_strlist lock_names, lock_versions;
    plan_strlist upgrade;     /* "*" alone means every lock */
    char *expect_result;      /* lines "name version", or NULL; owned */
    char *expect_explain;     /* or NULL; owned */
} plan_resolver_problem;

/* Parse `text` (what names it for messages: a file name).  On success the
 * caller releases *out with plan_resolver_problem_release.  On a syntax
 * error PLAN_ERR_INVALID with "what:line: ..." and *out is released. */
int plan_resolver_problem_parse(plan_ctx *ctx, const char *what, const char *text,
                                plan_resolver_problem *out);
void plan_resolver_problem_release(plan_resolver_problem *p);
/* A resolver loaded with the problem's request, locks and upgrades, reading
 * its index (p must outlive it).  NULL with a message if a range is bad. */
plan_resolver *plan_resolver_problem_resolver(plan_ctx *ctx, plan_resolver_problem *p);
/* The text the [result] section is compared with: "name version\n" per
 * package, sorted by name.  Caller frees. */
char *plan_resolution_format(const plan_resolution *res);

/* ---------------------------------------------------------------- lockfile */

/* plan.lock (docs/formats/lockfile.md): the exact resolved closure of a
 * plan.yaml.  One package per name. */
typedef struct plan_lock_package {
    char *name, *version;
    char *source;       /* "recipes" (later: a registry name) */
    char *recipe;       /* the recipe file, relative to plan.yaml's folder */
    char *recipe_hash;  /* identity: BLAKE2b of the recipe file, "blake2b:<hex>" */
    char *path;         /* its store path's basename once built, else NULL */
    plan_strlist dep_names, dep_ranges; /* its dependencies */
    char *required_by;  /* the package that pulled it in; NULL: plan.yaml did */
    char *required_as;  /* and the range it asked for */
} plan_lock_package;

typedef struct plan_lock {
    plan_strlist request_names, request_ranges; /* plan.yaml's packages */
    plan_lock_package *packages;
    size_t n, cap;
} plan_lock;

plan_lock *plan_lock_new(void); /* free with plan_lock_free */
void plan_lock_free(plan_lock *lock);
/* Append a package (strings copied); fill its other fields directly. */
plan_lock_package *plan_lock_add(plan_lock *lock, const char *name, const char *version);
const plan_lock_package *plan_lock_find(const plan_lock *lock, const char *name);
/* The lock's packages in request order: those named (in the order of
 * names, each once; names the lock lacks are passed over), then every
 * other one in the lock's order.  order receives lock->n indexes into
 * lock->packages: the order prefer-first and prefer-last mean. */
void plan_lock_request_order(const plan_lock *lock, const plan_strlist *names, size_t *order);
/* Put the packages in name order (the order of the text). */
void plan_lock_sort(plan_lock *lock);
/* The deterministic text (sorts the packages); caller frees. */
char *plan_lock_format(plan_lock *lock);
/* Write atomically (temporary file, fsync, rename). */
int plan_lock_write(plan_ctx *ctx, const char *file, plan_lock *lock);
/* The same for a cache of locks: replaced atomically, but not waited for
 * on disk (a power cut may leave it empty, which a reader takes for a
 * miss). */
int plan_lock_write_cache(plan_ctx *ctx, const char *file, plan_lock *lock);
/* Read and validate; PLAN_ERR_NOT_FOUND when the file does not exist. */
int plan_lock_read(plan_ctx *ctx, const char *file, plan_lock **out);

#endif
