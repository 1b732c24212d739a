/* solver_int.h - private to resolver/: the solver's state, shared by the
 * PubGrub core (solver.c) and the failure explanation (explain.c).
 *
 * Every package's versions are known (the provider lists them all), so a
 * set of versions is a bitset over the package's sorted version list, plus
 * one more bit for "the package is not selected at all".  A positive term
 * "foo in S" is the worlds S; a negative term "not foo in S" is every other
 * version and also "no foo".  With that, intersection, union, complement
 * and subset are plain word operations, and range matching happens once per
 * (range, package) instead of once per comparison. */
#ifndef PLAN_RESOLVER_SOLVER_INT_H
#define PLAN_RESOLVER_SOLVER_INT_H

#include "resolver.h"

#define NO_ID UINT32_MAX

/* A range as written against one package, with the versions it matches. */
typedef struct label {
    char *text;
    size_t bits;  /* offset into the word arena */
    bool empty;   /* matches no version */
    char *error;  /* the range does not parse: why (owned) */
} label;

typedef struct dep {
    uint32_t pkg, label;
} dep;

typedef struct pkg {
    char *name;
    bool missing;            /* the provider has no package of this name */
    size_t nver;
    plan_semver *vers;       /* ascending precedence */
    char **vtext;            /* the provider's spelling, per version */
    char **vshow;            /* formatted for messages, per version */
    uint32_t nwords;
    uint64_t lastmask;       /* the valid bits of the last word */

    uint32_t *inc;           /* incompatibilities that mention it */
    size_t ninc, capinc;
    uint32_t *asg;           /* its assignments: positions in the trail */
    size_t nasg, capasg;
    uint64_t *acc;           /* intersection of its assignments */
    bool acc_absent;
    int32_t decided;         /* version index, or -1 */
    int32_t locked;          /* preferred version index, or -1 */
    bool candidate;          /* on the list of packages to decide */
    int32_t mark;            /* scratch for building incompatibilities */

    label *labels;
    size_t nlabels, caplabels;
    bool deps_loaded;
    dep **deps;              /* per version */
    size_t *ndeps;
    uint32_t *made;          /* dependency incompatibilities built from it */
    size_t nmade, capmade;
} pkg;

typedef struct term {
    uint32_t pkg;
    bool absent;
    size_t bits;
} term;

enum { INC_ROOT, INC_DEP, INC_DERIVED };
enum { DEP_OK, DEP_EMPTY, DEP_MISSING, DEP_BAD };

typedef struct incompat {
    size_t t0;
    uint32_t nt;
    uint8_t kind, dep_state;
    uint32_t c1, c2;        /* derived: the two it was resolved from */
    uint32_t pkg, dep;      /* dependency: who depends on whom */
    uint32_t vlo, vhi;      /* dependency: the versions of pkg, inclusive */
    uint32_t label;         /* dependency: index into dep's labels */
} incompat;

typedef struct assign {
    uint32_t pkg;
    bool absent;
    size_t bits;
    int32_t level;
    int32_t cause;          /* incompatibility, or -1 for a decision */
} assign;

struct plan_resolver {
    plan_ctx *ctx;
    plan_resolver_provider prov;

    pkg *pkgs;
    size_t npkgs, cappkgs;
    uint32_t *hash;          /* open addressing, name -> package */
    size_t hashcap;

    uint64_t *w;             /* the word arena behind every bitset */
    size_t nw, capw;
    term *terms;
    size_t nterms, capterms;
    incompat *incs;
    size_t nincs, capincs;
    assign *trail;
    size_t ntrail, captrail;
    int32_t level;

    uint32_t *cands;
    size_t ncands, capcands;
    uint32_t *stack;
    size_t nstack, capstack;

    plan_strlist req_names, req_ranges;
    plan_strlist lock_names, lock_versions;
    plan_strlist upgrades;
    bool upgrade_all;

    bool solved, unsolvable;
    uint32_t failure;        /* the incompatibility that proves it */
    char *explanation;
    plan_resolution result;
    plan_strlist strings;    /* owns the strings the result points to */
};

static inline uint64_t *W(const plan_resolver *r, size_t off) { return r->w + off; }

/* explain.c */
char *solver_explain(plan_resolver *r, uint32_t failure);
/* Describe a set of versions of package p (bits at off) for people. */
void solver_describe_set(plan_resolver *r, uint32_t p, size_t off, plan_buf *out);

#endif
