/* The dependency solver: PubGrub over per-package version bitsets.
 *
 * The partial solution is a trail of assignments (decisions and
 * derivations).  Unit propagation derives what the incompatibilities force;
 * when one is fully satisfied, conflict resolution combines it with the
 * causes of its most recent satisfier until the result lets us jump back
 * and derive something new (conflict-driven learning with backjumping).
 * docs/solver.md describes the algorithm and the choices made here. */
#include "resolver.h"
#include "solver_int.h"

#include <stdlib.h>
#include <string.h>

#define ROOT 0u

/* ------------------------------------------------------------ arenas */

static size_t words_alloc(plan_resolver *r, uint32_t n)
{
    if (r->nw + n > r->capw) {
        r->capw = (r->nw + n) * 2 + 64;
        r->w = plan_xrealloc(r->w, r->capw * sizeof(*r->w));
    }
    size_t off = r->nw;
    memset(r->w + off, 0, n * sizeof(*r->w));
    r->nw += n;
    return off;
}

#define GROW(arr, n, cap)                                                  \
    do {                                                                   \
        if ((n) == (cap)) {                                                \
            (cap) = (cap) ? (cap) * 2 : 8;                                 \
            (arr) = plan_xrealloc((arr), (cap) * sizeof(*(arr)));          \
        }                                                                  \
    } while (0)

/* ---------------------------------------------------------- packages */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static void hash_insert(plan_resolver *r, uint32_t id)
{
    size_t i = hash_name(r->pkgs[id].name) & (r->hashcap - 1);
    while (r->hash[i] != NO_ID)
        i = (i + 1) & (r->hashcap - 1);
    r->hash[i] = id;
}

static uint32_t pkg_find(const plan_resolver *r, const char *name)
{
    size_t i = hash_name(name) & (r->hashcap - 1);
    while (r->hash[i] != NO_ID) {
        if (!strcmp(r->pkgs[r->hash[i]].name, name))
            return r->hash[i];
        i = (i + 1) & (r->hashcap - 1);
    }
    return NO_ID;
}

static int cmp_version_idx(const void *a, const void *b, void *vers)
{
    const plan_semver *v = vers;
    return plan_semver_compare_full(&v[*(const size_t *)a], &v[*(const size_t *)b]);
}

/* qsort_r with a context is a GNU extension; sort small index arrays by
 * insertion instead when there are few, which is the common case. */
static void sort_versions(plan_semver *vers, char **text, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        plan_semver v = vers[i];
        char *t = text[i];
        size_t k = i;
        while (k > 0 && plan_semver_compare_full(&vers[k - 1], &v) > 0) {
            vers[k] = vers[k - 1];
            text[k] = text[k - 1];
            k--;
        }
        vers[k] = v;
        text[k] = t;
    }
}

static void pkg_set_versions(plan_resolver *r, pkg *p, plan_strlist *list)
{
    p->vers = plan_xcalloc(list->len ? list->len : 1, sizeof(*p->vers));
    p->vtext = plan_xcalloc(list->len ? list->len : 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < list->len; i++) {
        if (plan_semver_parse(r->ctx, list->items[i], &p->vers[n])) {
            plan_warn(r->ctx, "skipping version '%s' of '%s': %s", list->items[i], p->name,
                      plan_ctx_error(r->ctx));
            plan_ctx_clear_error(r->ctx);
            continue;
        }
        p->vtext[n++] = plan_xstrdup(list->items[i]);
    }
    if (n > 1) {
        /* Large lists (registries) deserve better than insertion sort. */
        if (n > 64) {
            size_t *idx = plan_xmalloc(n * sizeof(*idx));
            for (size_t i = 0; i < n; i++)
                idx[i] = i;
            qsort_r(idx, n, sizeof(*idx), cmp_version_idx, p->vers);
            plan_semver *v2 = plan_xmalloc(n * sizeof(*v2));
            char **t2 = plan_xmalloc(n * sizeof(*t2));
            for (size_t i = 0; i < n; i++) {
                v2[i] = p->vers[idx[i]];
                t2[i] = p->vtext[idx[i]];
            }
            free(p->vers);
            free(p->vtext);
            p->vers = v2;
            p->vtext = t2;
            free(idx);
        } else {
            sort_versions(p->vers, p->vtext, n);
        }
    }
    p->nver = n;
    p->vshow = plan_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        p->vshow[i] = plan_semver_format(&p->vers[i]);
}

/* Find or add a package, listing its versions through the provider the
 * first time it is seen.  Returns its id, or NO_ID on a provider error. */
static uint32_t pkg_get(plan_resolver *r, const char *name)
{
    uint32_t id = pkg_find(r, name);
    if (id != NO_ID)
        return id;
    GROW(r->pkgs, r->npkgs, r->cappkgs);
    id = (uint32_t)r->npkgs++;
    pkg *p = &r->pkgs[id];
    memset(p, 0, sizeof(*p));
    p->name = plan_xstrdup(name);
    p->decided = p->locked = -1;
    p->mark = -1;
    if (r->npkgs * 2 > r->hashcap) {
        free(r->hash);
        r->hashcap *= 2;
        r->hash = plan_xmalloc(r->hashcap * sizeof(*r->hash));
        memset(r->hash, 0xff, r->hashcap * sizeof(*r->hash));
        for (uint32_t i = 0; i + 1 < r->npkgs; i++)
            hash_insert(r, i);
    }
    hash_insert(r, id);
    plan_strlist list;
    plan_strlist_init(&list);
    if (id == ROOT) {
        plan_strlist_add(&list, "0.0.0");
    } else {
        int rc = r->prov.versions(r->prov.user, r->ctx, name, &list);
        if (rc == PLAN_ERR_NOT_FOUND) {
            p->missing = true;
            plan_ctx_clear_error(r->ctx);
        } else if (rc) {
            plan_strlist_release(&list);
            return NO_ID;
        }
    }
    p = &r->pkgs[id];
    pkg_set_versions(r, p, &list);
    plan_strlist_release(&list);
    p->nwords = (uint32_t)(p->nver ? (p->nver + 63) / 64 : 1);
    p->lastmask = p->nver % 64 ? (1ULL << (p->nver % 64)) - 1 : (p->nver ? ~0ULL : 0);
    p->acc = plan_xcalloc(p->nwords, sizeof(uint64_t));
    /* Locks name versions by their spelling or by precedence. */
    for (size_t i = 0; i < r->lock_names.len; i++) {
        if (strcmp(r->lock_names.items[i], name))
            continue;
        plan_semver v;
        if (plan_semver_parse(NULL, r->lock_versions.items[i], &v))
            continue;
        for (size_t k = p->nver; k-- > 0;)
            if (!plan_semver_compare(&p->vers[k], &v)) {
                p->locked = (int32_t)k;
                break;
            }
        plan_semver_release(&v);
    }
    if (r->upgrade_all || plan_strlist_contains(&r->upgrades, name))
        p->locked = -1;
    return id;
}

/* The versions of p that a range matches, cached per (package, text). */
static uint32_t pkg_label(plan_resolver *r, uint32_t id, const char *text)
{
    pkg *p = &r->pkgs[id];
    for (size_t i = 0; i < p->nlabels; i++)
        if (!strcmp(p->labels[i].text, text))
            return (uint32_t)i;
    size_t off = words_alloc(r, p->nwords);
    p = &r->pkgs[id];
    GROW(p->labels, p->nlabels, p->caplabels);
    label *l = &p->labels[p->nlabels];
    memset(l, 0, sizeof(*l));
    l->text = plan_xstrdup(text);
    l->bits = off;
    plan_semver_range *range;
    if (plan_semver_range_parse(r->ctx, text, &range)) {
        l->error = plan_xstrdup(plan_ctx_error(r->ctx));
        plan_ctx_clear_error(r->ctx);
        l->empty = true;
    } else {
        uint64_t *b = W(r, off);
        bool any = false;
        for (size_t v = 0; v < p->nver; v++)
            if (plan_semver_range_satisfies(range, &p->vers[v])) {
                b[v / 64] |= 1ULL << (v % 64);
                any = true;
            }
        l->empty = !any;
        plan_semver_range_free(range);
    }
    return (uint32_t)p->nlabels++;
}

/* Fetch the dependencies of every version of p at once: a dependency
 * incompatibility can then cover every neighbouring version that has the
 * same dependency, which keeps explanations short and the search small. */
static int pkg_load_deps(plan_resolver *r, uint32_t id)
{
    if (r->pkgs[id].deps_loaded)
        return 0;
    size_t nver = r->pkgs[id].nver;
    dep **deps = plan_xcalloc(nver ? nver : 1, sizeof(*deps));
    size_t *ndeps = plan_xcalloc(nver ? nver : 1, sizeof(*ndeps));
    plan_strlist names, ranges;
    plan_strlist_init(&names);
    plan_strlist_init(&ranges);
    int rc = 0;
    for (size_t v = 0; v < nver && !rc; v++) {
        plan_strlist_release(&names);
        plan_strlist_release(&ranges);
        plan_strlist_init(&names);
        plan_strlist_init(&ranges);
        if (id == ROOT) {
            for (size_t i = 0; i < r->req_names.len; i++) {
                plan_strlist_add(&names, r->req_names.items[i]);
                plan_strlist_add(&ranges, r->req_ranges.items[i]);
            }
        } else {
            rc = r->prov.dependencies(r->prov.user, r->ctx, r->pkgs[id].name,
                                      r->pkgs[id].vtext[v], &names, &ranges);
            if (rc)
                break;
            if (names.len != ranges.len) {
                rc = plan_fail(r->ctx, PLAN_ERR_INVALID,
                               "the package source gave %zu names but %zu ranges for the "
                               "dependencies of '%s@%s'",
                               names.len, ranges.len, r->pkgs[id].name, r->pkgs[id].vtext[v]);
                break;
            }
        }
        deps[v] = plan_xcalloc(names.len ? names.len : 1, sizeof(dep));
        for (size_t i = 0; i < names.len; i++) {
            uint32_t d = pkg_get(r, names.items[i]);
            if (d == NO_ID) {
                rc = PLAN_ERR_FAILED;
                break;
            }
            deps[v][ndeps[v]].pkg = d;
            deps[v][ndeps[v]].label = pkg_label(r, d, ranges.items[i]);
            ndeps[v]++;
        }
    }
    plan_strlist_release(&names);
    plan_strlist_release(&ranges);
    pkg *p = &r->pkgs[id];
    p->deps = deps;
    p->ndeps = ndeps;
    p->deps_loaded = true;
    return rc ? (plan_ctx_error_code(r->ctx) ? plan_ctx_error_code(r->ctx) : rc) : 0;
}

/* ------------------------------------------------------------- terms */

static bool term_subset(const plan_resolver *r, uint32_t p, const uint64_t *a, bool aabs,
                        const uint64_t *b, bool babs)
{
    if (aabs && !babs)
        return false;
    for (uint32_t i = 0; i < r->pkgs[p].nwords; i++)
        if (a[i] & ~b[i])
            return false;
    return true;
}

static bool term_disjoint(const plan_resolver *r, uint32_t p, const uint64_t *a, bool aabs,
                          const uint64_t *b, bool babs)
{
    if (aabs && babs)
        return false;
    for (uint32_t i = 0; i < r->pkgs[p].nwords; i++)
        if (a[i] & b[i])
            return false;
    return true;
}

static bool bits_full(const pkg *p, const uint64_t *b)
{
    for (uint32_t i = 0; i + 1 < p->nwords; i++)
        if (b[i] != ~0ULL)
            return false;
    return (b[p->nwords - 1] & p->lastmask) == p->lastmask;
}

static void fill_all(const pkg *p, uint64_t *b)
{
    for (uint32_t i = 0; i < p->nwords; i++)
        b[i] = ~0ULL;
    b[p->nwords - 1] = p->lastmask;
}

enum { REL_SATISFIED, REL_CONTRADICTED, REL_INCONCLUSIVE };

/* How the partial solution relates to a term: it implies it, excludes it,
 * or neither yet. */
static int relation(plan_resolver *r, const term *t)
{
    pkg *p = &r->pkgs[t->pkg];
    const uint64_t *tb = W(r, t->bits);
    if (p->nasg == 0) {
        /* Nothing known: only a term allowing everything is implied. */
        if (t->absent && bits_full(p, tb))
            return REL_SATISFIED;
        return REL_INCONCLUSIVE;
    }
    if (term_subset(r, t->pkg, p->acc, p->acc_absent, tb, t->absent))
        return REL_SATISFIED;
    if (term_disjoint(r, t->pkg, p->acc, p->acc_absent, tb, t->absent))
        return REL_CONTRADICTED;
    return REL_INCONCLUSIVE;
}

/* Building an incompatibility: terms of the same package are intersected
 * (the incompatibility forbids all of them holding together). */
typedef struct builder {
    term *t;
    size_t n, cap;
} builder;

static void build_add(plan_resolver *r, builder *b, uint32_t p, const uint64_t *bits_src,
                      size_t src_off, bool absent)
{
    pkg *pk = &r->pkgs[p];
    if (pk->mark >= 0) {
        term *t = &b->t[pk->mark];
        uint64_t *dst = W(r, t->bits);
        const uint64_t *src = bits_src ? bits_src : W(r, src_off);
        for (uint32_t i = 0; i < pk->nwords; i++)
            dst[i] &= src[i];
        t->absent = t->absent && absent;
        return;
    }
    size_t off = words_alloc(r, pk->nwords);
    pk = &r->pkgs[p];
    const uint64_t *src = bits_src ? bits_src : W(r, src_off);
    memcpy(W(r, off), src, pk->nwords * sizeof(uint64_t));
    GROW(b->t, b->n, b->cap);
    b->t[b->n].pkg = p;
    b->t[b->n].absent = absent;
    b->t[b->n].bits = off;
    pk->mark = (int32_t)b->n++;
}

static uint32_t build_finish(plan_resolver *r, builder *b, uint8_t kind)
{
    GROW(r->incs, r->nincs, r->capincs);
    uint32_t id = (uint32_t)r->nincs++;
    incompat *inc = &r->incs[id];
    memset(inc, 0, sizeof(*inc));
    inc->kind = kind;
    inc->c1 = inc->c2 = NO_ID;
    inc->t0 = r->nterms;
    for (size_t i = 0; i < b->n; i++) {
        pkg *pk = &r->pkgs[b->t[i].pkg];
        pk->mark = -1;
        /* A term every world satisfies constrains nothing: leave it out. */
        if (b->t[i].absent && bits_full(pk, W(r, b->t[i].bits)))
            continue;
        GROW(r->terms, r->nterms, r->capterms);
        r->terms[r->nterms++] = b->t[i];
        GROW(pk->inc, pk->ninc, pk->capinc);
        pk->inc[pk->ninc++] = id;
        r->incs[id].nt++;
    }
    b->n = 0;
    return id;
}

/* ------------------------------------------------ the partial solution */

static void recompute_acc(plan_resolver *r, uint32_t id)
{
    pkg *p = &r->pkgs[id];
    fill_all(p, p->acc);
    p->acc_absent = true;
    for (size_t i = 0; i < p->nasg; i++) {
        const assign *a = &r->trail[p->asg[i]];
        const uint64_t *b = W(r, a->bits);
        for (uint32_t k = 0; k < p->nwords; k++)
            p->acc[k] &= b[k];
        p->acc_absent = p->acc_absent && a->absent;
    }
}

static void push_assign(plan_resolver *r, uint32_t id, size_t bits, bool absent, int32_t cause)
{
    GROW(r->trail, r->ntrail, r->captrail);
    assign *a = &r->trail[r->ntrail];
    a->pkg = id;
    a->bits = bits;
    a->absent = absent;
    a->level = r->level;
    a->cause = cause;
    pkg *p = &r->pkgs[id];
    GROW(p->asg, p->nasg, p->capasg);
    p->asg[p->nasg++] = (uint32_t)r->ntrail++;
    if (p->nasg == 1) {
        memcpy(p->acc, W(r, bits), p->nwords * sizeof(uint64_t));
        p->acc_absent = absent;
    } else {
        const uint64_t *b = W(r, bits);
        for (uint32_t k = 0; k < p->nwords; k++)
            p->acc[k] &= b[k];
        p->acc_absent = p->acc_absent && absent;
    }
    if (!p->acc_absent && !p->candidate && p->decided < 0) {
        p->candidate = true;
        GROW(r->cands, r->ncands, r->capcands);
        r->cands[r->ncands++] = id;
    }
}

/* Derive the negation of term t, because of incompatibility `cause`. */
static void derive(plan_resolver *r, const term *t, uint32_t cause)
{
    pkg *p = &r->pkgs[t->pkg];
    size_t off = words_alloc(r, p->nwords);
    p = &r->pkgs[t->pkg];
    const uint64_t *src = W(r, t->bits);
    uint64_t *dst = W(r, off);
    for (uint32_t k = 0; k < p->nwords; k++)
        dst[k] = ~src[k];
    dst[p->nwords - 1] &= p->lastmask;
    push_assign(r, t->pkg, off, !t->absent, (int32_t)cause);
}

static void decide(plan_resolver *r, uint32_t id, uint32_t v)
{
    pkg *p = &r->pkgs[id];
    size_t off = words_alloc(r, p->nwords);
    W(r, off)[v / 64] = 1ULL << (v % 64);
    r->level++;
    r->pkgs[id].decided = (int32_t)v;
    push_assign(r, id, off, false, -1);
}

static void backtrack(plan_resolver *r, int32_t level)
{
    size_t first_dirty = r->nstack;
    while (r->ntrail > 0 && r->trail[r->ntrail - 1].level > level) {
        assign *a = &r->trail[--r->ntrail];
        pkg *p = &r->pkgs[a->pkg];
        p->nasg--;
        if (a->cause < 0)
            p->decided = -1;
        if (p->mark != -2) {
            p->mark = -2; /* dirty; the stack is free scratch space here */
            GROW(r->stack, r->nstack, r->capstack);
            r->stack[r->nstack++] = a->pkg;
        }
    }
    for (size_t i = first_dirty; i < r->nstack; i++) {
        uint32_t id = r->stack[i];
        r->pkgs[id].mark = -1;
        recompute_acc(r, id);
        pkg *p = &r->pkgs[id];
        if (p->nasg && !p->acc_absent && !p->candidate && p->decided < 0) {
            p->candidate = true;
            GROW(r->cands, r->ncands, r->capcands);
            r->cands[r->ncands++] = id;
        }
    }
    r->nstack = first_dirty;
    r->level = level;
}

/* ------------------------------------------------- conflict resolution */

/* The first position in the trail from which the partial solution implies
 * term t, or SIZE_MAX if it never does. */
static size_t first_satisfier(plan_resolver *r, const term *t, uint64_t *scratch)
{
    pkg *p = &r->pkgs[t->pkg];
    const uint64_t *tb = W(r, t->bits);
    fill_all(p, scratch);
    bool absent = true;
    for (size_t i = 0; i < p->nasg; i++) {
        const assign *a = &r->trail[p->asg[i]];
        const uint64_t *b = W(r, a->bits);
        for (uint32_t k = 0; k < p->nwords; k++)
            scratch[k] &= b[k];
        absent = absent && a->absent;
        if (term_subset(r, t->pkg, scratch, absent, tb, t->absent))
            return p->asg[i];
    }
    return SIZE_MAX;
}

static bool is_failure(const plan_resolver *r, const incompat *inc)
{
    if (inc->nt == 0)
        return true;
    return inc->nt == 1 && r->terms[inc->t0].pkg == ROOT && !r->terms[inc->t0].absent;
}

static uint64_t *scratch_words(plan_resolver *r, uint32_t n, uint64_t **buf, size_t *cap)
{
    (void)r;
    if (*cap < n) {
        *cap = n;
        *buf = plan_xrealloc(*buf, n * sizeof(uint64_t));
    }
    return *buf;
}

/* Learn from a satisfied incompatibility.  Returns the incompatibility to
 * propagate after backjumping, or NO_ID when it proves there is no
 * solution (r->failure is set). */
static uint32_t resolve_conflict(plan_resolver *r, uint32_t id)
{
    uint64_t *scratch = NULL;
    size_t scap = 0;
    builder b = {0};
    r->result.conflicts++;
    while (1) {
        if (is_failure(r, &r->incs[id])) {
            r->failure = id;
            free(scratch);
            free(b.t);
            return NO_ID;
        }
        /* The satisfier: the assignment after which every term holds. */
        size_t sat_pos = 0;
        uint32_t sat_term = 0;
        int32_t previous = 1;
        incompat inc = r->incs[id];
        size_t *pos = plan_xmalloc(inc.nt * sizeof(*pos));
        for (uint32_t i = 0; i < inc.nt; i++) {
            const term *t = &r->terms[inc.t0 + i];
            uint64_t *s = scratch_words(r, r->pkgs[t->pkg].nwords, &scratch, &scap);
            pos[i] = first_satisfier(r, t, s);
            if (pos[i] != SIZE_MAX && (i == 0 || pos[i] > sat_pos || sat_pos == SIZE_MAX)) {
                sat_pos = pos[i];
                sat_term = i;
            }
        }
        for (uint32_t i = 0; i < inc.nt; i++)
            if (i != sat_term && pos[i] != SIZE_MAX && r->trail[pos[i]].level > previous)
                previous = r->trail[pos[i]].level;
        free(pos);
        const assign sat = r->trail[sat_pos];
        const term T = r->terms[inc.t0 + sat_term];
        pkg *p = &r->pkgs[T.pkg];
        /* If the satisfier alone does not imply the term, an earlier
         * assignment of the same package helped, and its level counts. */
        const uint64_t *sb = W(r, sat.bits), *tb = W(r, T.bits);
        if (!term_subset(r, T.pkg, sb, sat.absent, tb, T.absent)) {
            uint64_t *s = scratch_words(r, p->nwords, &scratch, &scap);
            memcpy(s, sb, p->nwords * sizeof(uint64_t));
            bool absent = sat.absent;
            for (size_t i = 0; i < p->nasg && p->asg[i] < sat_pos; i++) {
                const assign *a = &r->trail[p->asg[i]];
                const uint64_t *ab = W(r, a->bits);
                for (uint32_t k = 0; k < p->nwords; k++)
                    s[k] &= ab[k];
                absent = absent && a->absent;
                if (term_subset(r, T.pkg, s, absent, W(r, T.bits), T.absent)) {
                    if (a->level > previous)
                        previous = a->level;
                    break;
                }
            }
        }
        if (sat.cause < 0 || previous < sat.level) {
            backtrack(r, previous);
            free(scratch);
            free(b.t);
            return id;
        }
        /* Resolve with the satisfier's cause: the package's terms join by
         * union, everything else by intersection. */
        const incompat cause = r->incs[sat.cause];
        for (uint32_t i = 0; i < inc.nt; i++) {
            const term *t = &r->terms[inc.t0 + i];
            if (t->pkg != T.pkg)
                build_add(r, &b, t->pkg, NULL, t->bits, t->absent);
        }
        for (uint32_t i = 0; i < cause.nt; i++) {
            const term *t = &r->terms[cause.t0 + i];
            if (t->pkg != T.pkg)
                build_add(r, &b, t->pkg, NULL, t->bits, t->absent);
        }
        uint64_t *u = scratch_words(r, p->nwords, &scratch, &scap);
        memcpy(u, W(r, T.bits), p->nwords * sizeof(uint64_t));
        bool uabs = T.absent;
        for (uint32_t i = 0; i < cause.nt; i++) {
            const term *t = &r->terms[cause.t0 + i];
            if (t->pkg == T.pkg) {
                const uint64_t *cb = W(r, t->bits);
                for (uint32_t k = 0; k < p->nwords; k++)
                    u[k] |= cb[k];
                uabs = uabs || t->absent;
            }
        }
        build_add(r, &b, T.pkg, u, 0, uabs);
        uint32_t nid = build_finish(r, &b, INC_DERIVED);
        r->incs[nid].c1 = id;
        r->incs[nid].c2 = (uint32_t)sat.cause;
        id = nid;
    }
}

/* -------------------------------------------------------- propagation */

enum { INC_NONE, INC_SAT, INC_ALMOST };

static int incompat_state(plan_resolver *r, uint32_t id, uint32_t *unsat)
{
    const incompat *inc = &r->incs[id];
    uint32_t u = NO_ID;
    for (uint32_t i = 0; i < inc->nt; i++) {
        int rel = relation(r, &r->terms[inc->t0 + i]);
        if (rel == REL_CONTRADICTED)
            return INC_NONE;
        if (rel == REL_INCONCLUSIVE) {
            if (u != NO_ID)
                return INC_NONE;
            u = i;
        }
    }
    *unsat = u;
    return u == NO_ID ? INC_SAT : INC_ALMOST;
}

/* Returns 0, or 1 when the request has no solution. */
static int propagate(plan_resolver *r, uint32_t start)
{
    size_t base = r->nstack;
    GROW(r->stack, r->nstack, r->capstack);
    r->stack[r->nstack++] = start;
    while (r->nstack > base) {
        uint32_t id = r->stack[--r->nstack];
        for (size_t i = r->pkgs[id].ninc; i-- > 0;) {
            uint32_t inc = r->pkgs[id].inc[i], u;
            int st = incompat_state(r, inc, &u);
            if (st == INC_NONE)
                continue;
            if (st == INC_SAT) {
                uint32_t root = resolve_conflict(r, inc);
                if (root == NO_ID) {
                    r->nstack = base;
                    return 1;
                }
                int st2 = incompat_state(r, root, &u);
                if (st2 != INC_ALMOST) {
                    /* Cannot happen if the learning is right; fail loudly
                     * rather than loop. */
                    r->failure = root;
                    r->nstack = base;
                    return 1;
                }
                const term t = r->terms[r->incs[root].t0 + u];
                derive(r, &t, root);
                r->nstack = base;
                GROW(r->stack, r->nstack, r->capstack);
                r->stack[r->nstack++] = t.pkg;
                break;
            }
            const term t = r->terms[r->incs[inc].t0 + u];
            derive(r, &t, inc);
            GROW(r->stack, r->nstack, r->capstack);
            r->stack[r->nstack++] = t.pkg;
        }
    }
    return 0;
}

/* ---------------------------------------------------------- decisions */

static bool has_dep(const pkg *p, size_t v, uint32_t d, uint32_t l)
{
    for (size_t i = 0; i < p->ndeps[v]; i++)
        if (p->deps[v][i].pkg == d && p->deps[v][i].label == l)
            return true;
    return false;
}

/* The dependency incompatibilities of id@v, each covering the run of
 * neighbouring versions with the same dependency.  Returns how many new
 * ones start at *first (they are consecutive). */
static size_t add_dependencies(plan_resolver *r, uint32_t id, uint32_t v, uint32_t *first)
{
    size_t made = 0;
    *first = (uint32_t)r->nincs;
    builder b = {0};
    for (size_t i = 0; i < r->pkgs[id].ndeps[v]; i++) {
        pkg *p = &r->pkgs[id];
        dep d = p->deps[v][i];
        uint32_t lo = v, hi = v;
        while (lo > 0 && has_dep(p, lo - 1, d.pkg, d.label))
            lo--;
        while (hi + 1 < p->nver && has_dep(p, hi + 1, d.pkg, d.label))
            hi++;
        bool seen = false;
        for (size_t k = 0; k < p->nmade && !seen; k++) {
            const incompat *o = &r->incs[p->made[k]];
            seen = o->dep == d.pkg && o->label == d.label && o->vlo == lo && o->vhi == hi;
        }
        if (seen)
            continue;
        uint64_t *run = plan_xcalloc(p->nwords, sizeof(uint64_t));
        for (uint32_t k = lo; k <= hi; k++)
            run[k / 64] |= 1ULL << (k % 64);
        build_add(r, &b, id, run, 0, false);
        free(run);
        const pkg *dp = &r->pkgs[d.pkg];
        const label *l = &dp->labels[d.label];
        uint8_t state = l->error ? DEP_BAD : dp->missing ? DEP_MISSING
                                          : l->empty     ? DEP_EMPTY
                                                         : DEP_OK;
        if (state == DEP_OK) {
            /* "not dep in L": every other version, or no dep at all. */
            uint32_t nw = dp->nwords;
            uint64_t *neg = plan_xmalloc(nw * sizeof(uint64_t));
            const uint64_t *lb = W(r, l->bits);
            for (uint32_t k = 0; k < nw; k++)
                neg[k] = ~lb[k];
            neg[nw - 1] &= dp->lastmask;
            build_add(r, &b, d.pkg, neg, 0, true);
            free(neg);
        }
        uint32_t nid = build_finish(r, &b, INC_DEP);
        incompat *inc = &r->incs[nid];
        inc->dep_state = state;
        inc->pkg = id;
        inc->dep = d.pkg;
        inc->label = d.label;
        inc->vlo = lo;
        inc->vhi = hi;
        p = &r->pkgs[id];
        GROW(p->made, p->nmade, p->capmade);
        p->made[p->nmade++] = nid;
        made++;
    }
    free(b.t);
    return made;
}

static int popcount_acc(const pkg *p)
{
    int n = 0;
    for (uint32_t i = 0; i < p->nwords; i++)
        n += __builtin_popcountll(p->acc[i]);
    return n;
}

/* Pick the next package to decide: the one with the fewest versions left,
 * since a conflict there is found soonest; NO_ID when all are decided. */
static uint32_t choose_package(plan_resolver *r)
{
    uint32_t best = NO_ID;
    int best_n = 0;
    size_t out = 0;
    for (size_t i = 0; i < r->ncands; i++) {
        uint32_t id = r->cands[i];
        pkg *p = &r->pkgs[id];
        if (p->decided >= 0 || p->nasg == 0 || p->acc_absent) {
            p->candidate = false;
            continue;
        }
        r->cands[out++] = id;
        int n = popcount_acc(p);
        if (best == NO_ID || n < best_n) {
            best = id;
            best_n = n;
        }
    }
    r->ncands = out;
    return best;
}

static uint32_t choose_version(const pkg *p)
{
    if (p->locked >= 0 && (p->acc[p->locked / 64] >> (p->locked % 64) & 1))
        return (uint32_t)p->locked;
    for (uint32_t i = p->nwords; i-- > 0;)
        if (p->acc[i])
            return i * 64 + 63 - (uint32_t)__builtin_clzll(p->acc[i]);
    return NO_ID;
}

/* ----------------------------------------------------------- results */

static int cmp_resolved(const void *a, const void *b)
{
    return strcmp(((const plan_resolved *)a)->name, ((const plan_resolved *)b)->name);
}

static void build_result(plan_resolver *r)
{
    size_t n = 0;
    uint32_t *slot = plan_xmalloc(r->npkgs * sizeof(*slot));
    for (uint32_t i = 1; i < r->npkgs; i++)
        if (r->pkgs[i].decided >= 0)
            n++;
    plan_resolved *out = plan_xcalloc(n ? n : 1, sizeof(*out));
    size_t k = 0;
    for (uint32_t i = 1; i < r->npkgs; i++)
        if (r->pkgs[i].decided >= 0) {
            out[k].name = r->pkgs[i].name;
            out[k].version = r->pkgs[i].vtext[r->pkgs[i].decided];
            out[k].parent = SIZE_MAX;
            k++;
        }
    qsort(out, n, sizeof(*out), cmp_resolved);
    for (uint32_t i = 0; i < r->npkgs; i++)
        slot[i] = NO_ID;
    for (size_t i = 0; i < n; i++)
        slot[pkg_find(r, out[i].name)] = (uint32_t)i;
    /* Breadth first from the request, so the recorded parent gives the
     * shortest chain of requirements (what `plan why` prints). */
    bool *seen = plan_xcalloc(n ? n : 1, sizeof(bool));
    uint32_t *queue = plan_xmalloc((n + 1) * sizeof(*queue));
    size_t qh = 0, qt = 0;
    queue[qt++] = ROOT;
    while (qh < qt) {
        uint32_t id = queue[qh++];
        const pkg *p = &r->pkgs[id];
        uint32_t v = (uint32_t)p->decided;
        size_t me = id == ROOT ? SIZE_MAX : slot[id];
        if (me != SIZE_MAX) {
            out[me].deps = plan_xcalloc(p->ndeps[v] ? p->ndeps[v] : 1, sizeof(size_t));
            out[me].dep_ranges = plan_xcalloc(p->ndeps[v] ? p->ndeps[v] : 1, sizeof(char *));
        }
        for (size_t i = 0; i < p->ndeps[v]; i++) {
            dep d = p->deps[v][i];
            uint32_t s = slot[d.pkg];
            if (s == NO_ID || d.pkg == id)
                continue;
            const char *text = r->pkgs[d.pkg].labels[d.label].text;
            if (me != SIZE_MAX) {
                out[me].deps[out[me].ndeps] = s;
                out[me].dep_ranges[out[me].ndeps++] = text;
            }
            if (!seen[s]) {
                seen[s] = true;
                out[s].parent = me;
                out[s].required_as = text;
                queue[qt++] = d.pkg;
            }
        }
    }
    free(queue);
    free(seen);
    free(slot);
    r->result.packages = out;
    r->result.count = n;
}

/* ---------------------------------------------------------------- api */

plan_resolver *plan_resolver_new(plan_ctx *ctx, const plan_resolver_provider *provider)
{
    plan_resolver *r = plan_xcalloc(1, sizeof(*r));
    r->ctx = ctx;
    r->prov = *provider;
    r->hashcap = 64;
    r->hash = plan_xmalloc(r->hashcap * sizeof(*r->hash));
    memset(r->hash, 0xff, r->hashcap * sizeof(*r->hash));
    plan_strlist_init(&r->req_names);
    plan_strlist_init(&r->req_ranges);
    plan_strlist_init(&r->lock_names);
    plan_strlist_init(&r->lock_versions);
    plan_strlist_init(&r->upgrades);
    plan_strlist_init(&r->strings);
    return r;
}

void plan_resolver_free(plan_resolver *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->npkgs; i++) {
        pkg *p = &r->pkgs[i];
        for (size_t v = 0; v < p->nver; v++) {
            plan_semver_release(&p->vers[v]);
            free(p->vtext[v]);
            free(p->vshow[v]);
            if (p->deps)
                free(p->deps[v]);
        }
        for (size_t l = 0; l < p->nlabels; l++) {
            free(p->labels[l].text);
            free(p->labels[l].error);
        }
        free(p->labels);
        free(p->vers);
        free(p->vtext);
        free(p->vshow);
        free(p->deps);
        free(p->ndeps);
        free(p->made);
        free(p->inc);
        free(p->asg);
        free(p->acc);
        free(p->name);
    }
    for (size_t i = 0; i < r->result.count; i++) {
        free(r->result.packages[i].deps);
        free(r->result.packages[i].dep_ranges);
    }
    free(r->result.packages);
    free(r->pkgs);
    free(r->hash);
    free(r->w);
    free(r->terms);
    free(r->incs);
    free(r->trail);
    free(r->cands);
    free(r->stack);
    free(r->explanation);
    plan_strlist_release(&r->req_names);
    plan_strlist_release(&r->req_ranges);
    plan_strlist_release(&r->lock_names);
    plan_strlist_release(&r->lock_versions);
    plan_strlist_release(&r->upgrades);
    plan_strlist_release(&r->strings);
    free(r);
}

int plan_resolver_require(plan_resolver *r, const char *name, const char *range)
{
    plan_semver_range *rg;
    if (!*name)
        return plan_fail(r->ctx, PLAN_ERR_INVALID, "a requirement has an empty package name");
    if (plan_semver_range_parse(r->ctx, range, &rg))
        return plan_fail_wrap(r->ctx, PLAN_ERR_INVALID, "the requirement on '%s'", name);
    plan_semver_range_free(rg);
    plan_strlist_add(&r->req_names, name);
    plan_strlist_add(&r->req_ranges, range);
    return 0;
}

int plan_resolver_lock(plan_resolver *r, const char *name, const char *version)
{
    plan_semver v;
    if (plan_semver_parse(r->ctx, version, &v))
        return plan_fail_wrap(r->ctx, PLAN_ERR_INVALID, "the lock of '%s'", name);
    plan_semver_release(&v);
    plan_strlist_add(&r->lock_names, name);
    plan_strlist_add(&r->lock_versions, version);
    return 0;
}

void plan_resolver_upgrade(plan_resolver *r, const char *name)
{
    if (!name)
        r->upgrade_all = true;
    else
        plan_strlist_add(&r->upgrades, name);
}

int plan_resolver_solve(plan_resolver *r, const plan_resolution **out)
{
    *out = NULL;
    if (r->solved)
        return plan_fail(r->ctx, PLAN_ERR_INVALID,
                         "a resolver solves once; create a new one to solve again");
    r->solved = true;
    if (pkg_get(r, "") != ROOT)
        return plan_fail(r->ctx, PLAN_ERR_FAILED, "internal: the root package is not first");
    int rc = pkg_load_deps(r, ROOT);
    if (rc)
        return rc;
    /* "The root is selected" is the one fact we start from. */
    builder b = {0};
    uint64_t none = 0;
    build_add(r, &b, ROOT, &none, 0, true);
    build_finish(r, &b, INC_ROOT);
    free(b.t);
    uint32_t next = ROOT;
    while (1) {
        if (propagate(r, next)) {
            r->unsolvable = true;
            r->explanation = solver_explain(r, r->failure);
            return plan_fail(r->ctx, PLAN_ERR_FAILED,
                             "no set of versions satisfies the request (see the explanation)");
        }
        uint32_t id = choose_package(r);
        if (id == NO_ID)
            break;
        if ((rc = pkg_load_deps(r, id)))
            return rc;
        pkg *p = &r->pkgs[id];
        uint32_t v = choose_version(p);
        if (v == NO_ID)
            return plan_fail(r->ctx, PLAN_ERR_FAILED,
                             "internal: no version left for '%s' to decide", p->name);
        uint32_t first;
        size_t n = add_dependencies(r, id, v, &first);
        /* Decide only if no new dependency is already ruled out; if one
         * is, propagation excludes this version instead. */
        bool conflict = false;
        for (size_t k = 0; k < n && !conflict; k++) {
            const incompat *inc = &r->incs[first + k];
            bool others = true;
            for (uint32_t t = 0; t < inc->nt && others; t++) {
                const term *tm = &r->terms[inc->t0 + t];
                if (tm->pkg != id)
                    others = relation(r, tm) == REL_SATISFIED;
            }
            conflict = others;
        }
        if (!conflict) {
            decide(r, id, v);
            r->result.decisions++;
        }
        next = id;
    }
    build_result(r);
    *out = &r->result;
    return 0;
}

const char *plan_resolver_explain(const plan_resolver *r)
{
    return r->unsolvable ? r->explanation : NULL;
}
