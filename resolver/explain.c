/* Explaining a failed resolution in plain words.
 *
 * The proof that no solution exists is the tree of derived
 * incompatibilities under the one that failed; its leaves are facts from
 * the request and the index.  We walk it from the leaves up and write one
 * sentence per derivation, folding chains of single facts into one
 * sentence, and numbering a conclusion only when a later sentence refers
 * back to it.  Then we list what the user could change: the leaves that
 * came from the request or from missing packages and versions. */
#include "resolver.h"
#include "solver_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define ROOT 0u

typedef struct ex {
    plan_resolver *r;
    uint32_t *refs;   /* how many derived incompatibilities use each one */
    uint32_t *line;   /* its line number once written, or 0 */
    uint32_t nlines;
    plan_buf out;
} ex;

static bool is_derived(const plan_resolver *r, uint32_t id)
{
    return r->incs[id].kind == INC_DERIVED;
}

/* ------------------------------------------------------ sets and terms */

static bool bits_equal(const plan_resolver *r, const pkg *p, size_t a, size_t b)
{
    return !memcmp(W(r, a), W(r, b), p->nwords * sizeof(uint64_t));
}

static bool bits_all(const pkg *p, const uint64_t *b)
{
    for (uint32_t i = 0; i + 1 < p->nwords; i++)
        if (b[i] != ~0ULL)
            return false;
    return (b[p->nwords - 1] & p->lastmask) == p->lastmask;
}

static bool has_bit(const uint64_t *b, size_t v) { return b[v / 64] >> (v % 64) & 1; }

/* A range someone wrote that matches exactly these versions, if any. */
static const char *label_for(plan_resolver *r, uint32_t id, size_t off)
{
    const pkg *p = &r->pkgs[id];
    for (size_t i = 0; i < p->nlabels; i++)
        if (!p->labels[i].error && !p->labels[i].empty &&
            bits_equal(r, p, p->labels[i].bits, off))
            return p->labels[i].text;
    return NULL;
}

/* As label_for, but a wildcard says less than the bare name. */
static const char *specific_label(plan_resolver *r, uint32_t id, size_t off)
{
    const char *l = label_for(r, id, off);
    return l && strcmp(l, "*") && strcmp(l, "") && strcmp(l, "x") ? l : NULL;
}

void solver_describe_set(plan_resolver *r, uint32_t id, size_t off, plan_buf *out)
{
    const pkg *p = &r->pkgs[id];
    /* The range as someone wrote it reads best. */
    const char *l = label_for(r, id, off);
    if (l) {
        plan_buf_adds(out, l);
        return;
    }
    const uint64_t *b = W(r, off);
    bool first = true;
    for (size_t v = 0; v < p->nver;) {
        if (!has_bit(b, v)) {
            v++;
            continue;
        }
        size_t e = v;
        while (e + 1 < p->nver && has_bit(b, e + 1))
            e++;
        if (!first)
            plan_buf_adds(out, " || ");
        first = false;
        if (v == e)
            plan_buf_adds(out, p->vshow[v]);
        else if (e + 1 == p->nver)
            plan_buf_printf(out, ">=%s", p->vshow[v]);
        else if (v == 0)
            plan_buf_printf(out, "<=%s", p->vshow[e]);
        else
            plan_buf_printf(out, ">=%s <=%s", p->vshow[v], p->vshow[e]);
        v = e + 1;
    }
    if (first)
        plan_buf_adds(out, "<no version>");
}

/* "foo ^1.2.0", or "every version of foo" when the set is all of them. */
static void pos_phrase(ex *e, uint32_t id, size_t off, plan_buf *out)
{
    plan_resolver *r = e->r;
    const pkg *p = &r->pkgs[id];
    if (bits_all(p, W(r, off)) && !specific_label(r, id, off)) {
        plan_buf_adds(out, p->name); /* any version of it */
        return;
    }
    plan_buf_printf(out, "%s ", p->name);
    solver_describe_set(r, id, off, out);
}

/* What a negative term asks for, stated positively: "not foo in S" holds
 * unless foo is chosen in S, so the demand is a version outside S. */
static void need_phrase(ex *e, const term *t, plan_buf *out)
{
    plan_resolver *r = e->r;
    const pkg *p = &r->pkgs[t->pkg];
    uint64_t *c = plan_xmalloc(p->nwords * sizeof(uint64_t));
    const uint64_t *b = W(r, t->bits);
    for (uint32_t i = 0; i < p->nwords; i++)
        c[i] = ~b[i];
    c[p->nwords - 1] &= p->lastmask;
    /* Describe through a temporary slot past the end of the arena. */
    size_t off = r->nw;
    if (r->nw + p->nwords > r->capw) {
        r->capw = (r->nw + p->nwords) * 2;
        r->w = plan_xrealloc(r->w, r->capw * sizeof(uint64_t));
    }
    memcpy(r->w + off, c, p->nwords * sizeof(uint64_t));
    if (bits_all(p, c) && !specific_label(r, t->pkg, off)) {
        plan_buf_adds(out, p->name);
    } else {
        plan_buf_printf(out, "%s ", p->name);
        solver_describe_set(r, t->pkg, off, out);
    }
    free(c);
}

static void join_list(plan_buf *out, const plan_strlist *items, const char *last)
{
    for (size_t i = 0; i < items->len; i++) {
        if (i)
            plan_buf_adds(out, i + 1 == items->len ? last : ", ");
        plan_buf_adds(out, items->items[i]);
    }
}

/* The versions of the depending package covered by a dependency fact. */
static void run_subject(ex *e, const incompat *inc, plan_buf *out, bool *plural)
{
    const pkg *p = &e->r->pkgs[inc->pkg];
    *plural = false;
    if (inc->vlo == inc->vhi)
        plan_buf_printf(out, "%s %s", p->name, p->vshow[inc->vlo]);
    else if (inc->vlo == 0 && inc->vhi + 1 == p->nver)
        plan_buf_printf(out, "every version of %s", p->name);
    else {
        plan_buf_printf(out, "%s %s to %s", p->name, p->vshow[inc->vlo], p->vshow[inc->vhi]);
        *plural = true;
    }
}

/* Prereleases that only the prerelease rule keeps out, as a hint. */
static void prerelease_hint(ex *e, uint32_t id, const label *l, plan_buf *out)
{
    const pkg *p = &e->r->pkgs[id];
    plan_semver_range *range;
    if (plan_semver_range_parse(NULL, l->text, &range))
        return;
    for (size_t v = p->nver; v-- > 0;) {
        if (!p->vers[v].prerelease)
            continue;
        plan_semver bare = p->vers[v];
        bare.prerelease = NULL;
        bare.build = NULL;
        /* The prerelease leads up to a release the range takes. */
        if (plan_semver_range_satisfies(range, &bare)) {
            plan_buf_printf(out, "; %s %s is a prerelease, which a range matches only if it "
                                 "names a prerelease of %llu.%llu.%llu",
                            p->name, p->vshow[v], (unsigned long long)bare.major,
                            (unsigned long long)bare.minor, (unsigned long long)bare.patch);
            break;
        }
    }
    plan_semver_range_free(range);
}

static void dep_text(ex *e, const incompat *inc, plan_buf *out)
{
    plan_resolver *r = e->r;
    const pkg *d = &r->pkgs[inc->dep];
    const label *l = &d->labels[inc->label];
    bool plural = false;
    if (inc->pkg == ROOT)
        plan_buf_adds(out, "the request needs ");
    else {
        run_subject(e, inc, out, &plural);
        plan_buf_adds(out, plural ? " depend on " : " depends on ");
    }
    bool any = !strcmp(l->text, "*") || !strcmp(l->text, "") || !strcmp(l->text, "x");
    switch (inc->dep_state) {
    case DEP_MISSING:
        plan_buf_printf(out, "%s, which is not a known package", d->name);
        break;
    case DEP_BAD:
        plan_buf_printf(out, "%s '%s', which is not a valid range", d->name, l->text);
        break;
    case DEP_EMPTY:
        if (any)
            plan_buf_printf(out, "%s, which has no release version", d->name);
        else
            plan_buf_printf(out, "%s %s, which no version of %s matches", d->name, l->text,
                            d->name);
        if (d->nver == 0)
            plan_buf_printf(out, " (%s has no versions)", d->name);
        else if (d->nver == 1)
            plan_buf_printf(out, " (%s has only %s)", d->name, d->vshow[0]);
        else
            plan_buf_printf(out, " (%s has %zu versions, %s to %s)", d->name, d->nver,
                            d->vshow[0], d->vshow[d->nver - 1]);
        prerelease_hint(e, inc->dep, l, out);
        break;
    default:
        if (any)
            plan_buf_printf(out, "%s", d->name);
        else
            plan_buf_printf(out, "%s %s", d->name, l->text);
    }
}

static void incompat_text(ex *e, uint32_t id, plan_buf *out)
{
    plan_resolver *r = e->r;
    const incompat *inc = &r->incs[id];
    if (inc->kind == INC_DEP) {
        dep_text(e, inc, out);
        return;
    }
    if (inc->kind == INC_ROOT) {
        plan_buf_adds(out, "the request is to be satisfied");
        return;
    }
    bool root = false;
    plan_strlist pos, neg;
    plan_strlist_init(&pos);
    plan_strlist_init(&neg);
    plan_buf b;
    plan_buf_init(&b);
    bool all_pos = false;
    for (uint32_t i = 0; i < inc->nt; i++) {
        const term *t = &r->terms[inc->t0 + i];
        plan_buf_reset(&b);
        if (t->pkg == ROOT) {
            root = root || !t->absent;
            continue;
        }
        if (t->absent) {
            need_phrase(e, t, &b);
            plan_strlist_add(&neg, b.data);
        } else {
            all_pos = bits_all(&r->pkgs[t->pkg], W(r, t->bits));
            pos_phrase(e, t->pkg, t->bits, &b);
            plan_strlist_add(&pos, b.data);
        }
    }
    if (pos.len == 0 && neg.len == 0) {
        plan_buf_adds(out, "the request cannot be satisfied");
    } else if (pos.len == 0) {
        plan_buf_adds(out, root ? "the request needs " : "one of these is needed: ");
        join_list(out, &neg, " or ");
    } else if (neg.len == 0) {
        if (pos.len == 1 && all_pos) {
            plan_buf_printf(out, "no version of %s can be used",
                            r->pkgs[r->terms[inc->t0 + (r->terms[inc->t0].pkg == ROOT)].pkg].name);
        } else if (pos.len == 1) {
            plan_buf_printf(out, "%s cannot be used", pos.items[0]);
        } else {
            join_list(out, &pos, " and ");
            plan_buf_adds(out, pos.len == 2 ? " cannot be used together"
                                            : " cannot all be used together");
        }
    } else {
        join_list(out, &pos, " and ");
        plan_buf_adds(out, pos.len == 1 ? " requires " : " together require ");
        join_list(out, &neg, " or ");
    }
    plan_buf_release(&b);
    plan_strlist_release(&pos);
    plan_strlist_release(&neg);
}

/* ---------------------------------------------------------- the proof */

static void count_refs(ex *e, uint32_t id)
{
    /* Iterative: a long proof must not exhaust the C stack. */
    plan_resolver *r = e->r;
    size_t cap = 64, n = 0;
    uint32_t *st = plan_xmalloc(cap * sizeof(*st));
    bool *seen = plan_xcalloc(r->nincs, sizeof(bool));
    st[n++] = id;
    seen[id] = true;
    while (n) {
        uint32_t x = st[--n];
        if (!is_derived(r, x))
            continue;
        uint32_t c[2] = {r->incs[x].c1, r->incs[x].c2};
        for (int k = 0; k < 2; k++) {
            e->refs[c[k]]++;
            if (!seen[c[k]]) {
                seen[c[k]] = true;
                if (n + 1 >= cap) {
                    cap *= 2;
                    st = plan_xrealloc(st, cap * sizeof(*st));
                }
                st[n++] = c[k];
            }
        }
    }
    free(seen);
    free(st);
}

/* Append one sentence "<lead><text of id>." and number it if asked. */
static void write_line(ex *e, uint32_t id, const char *lead, bool numbered)
{
    plan_buf s;
    plan_buf_init(&s);
    plan_buf_adds(&s, lead);
    incompat_text(e, id, &s);
    plan_buf_addc(&s, '.');
    if (s.len)
        s.data[0] = (char)toupper((unsigned char)s.data[0]);
    if (numbered) {
        e->line[id] = ++e->nlines;
        plan_buf_printf(&e->out, "(%u) ", e->line[id]);
    }
    plan_buf_adds(&e->out, s.data);
    plan_buf_addc(&e->out, '\n');
    plan_buf_release(&s);
}

static void text_of(ex *e, uint32_t id, plan_buf *b)
{
    incompat_text(e, id, b);
    if (e->line[id])
        plan_buf_printf(b, " (%u)", e->line[id]);
}

/* A derived incompatibility made of two facts fits in one sentence. */
static bool single_line(const plan_resolver *r, uint32_t id)
{
    return !is_derived(r, r->incs[id].c1) && !is_derived(r, r->incs[id].c2);
}

static void visit(ex *e, uint32_t id, bool conclusion);

static void because(ex *e, uint32_t id, uint32_t a, uint32_t b, const char *start,
                    bool numbered)
{
    plan_buf lead, ta, tb;
    plan_buf_init(&lead);
    plan_buf_init(&ta);
    plan_buf_init(&tb);
    plan_buf_adds(&lead, start);
    text_of(e, a, &ta);
    if (b != NO_ID)
        text_of(e, b, &tb);
    const char *need = "the request needs ";
    size_t nl = strlen(need);
    if (b != NO_ID && !strncmp(ta.data, need, nl) && !strncmp(tb.data, need, nl) &&
        !strchr(ta.data, ',') && !strchr(tb.data, ',') && !strstr(ta.data, " or ") &&
        !strstr(tb.data, " or ")) {
        /* Two plain demands of the request read as one. */
        plan_buf_printf(&lead, "%s and %s", ta.data, tb.data + nl);
    } else if (b != NO_ID) {
        /* A fact ending in a relative clause goes last, so that "and"
         * does not seem to continue the clause. */
        bool swap = strstr(ta.data, ", which") && !strstr(tb.data, ", which");
        plan_buf_printf(&lead, "%s and %s", swap ? tb.data : ta.data,
                        swap ? ta.data : tb.data);
    } else {
        plan_buf_adds(&lead, ta.data);
    }
    plan_buf_release(&ta);
    plan_buf_release(&tb);
    plan_buf_adds(&lead, ", ");
    write_line(e, id, lead.data, numbered);
    plan_buf_release(&lead);
}

static void visit(ex *e, uint32_t id, bool conclusion)
{
    plan_resolver *r = e->r;
    const incompat *inc = &r->incs[id];
    bool numbered = conclusion || e->refs[id] > 1;
    uint32_t a = inc->c1, b = inc->c2;
    bool ad = is_derived(r, a), bd = is_derived(r, b);
    if (ad && bd) {
        if (e->line[a] && e->line[b]) {
            because(e, id, a, b, "because ", numbered);
        } else if (e->line[a] || e->line[b]) {
            uint32_t with = e->line[a] ? a : b, without = e->line[a] ? b : a;
            visit(e, without, false);
            because(e, id, with, NO_ID, "and because ", numbered);
        } else if (single_line(r, a) || single_line(r, b)) {
            uint32_t first = single_line(r, b) ? a : b, second = first == a ? b : a;
            visit(e, first, false);
            visit(e, second, false);
            write_line(e, id, "so ", numbered);
        } else {
            visit(e, a, true);
            plan_buf_addc(&e->out, '\n');
            visit(e, b, false);
            because(e, id, a, NO_ID, "and because ", numbered);
        }
    } else if (ad || bd) {
        uint32_t d = ad ? a : b, x = ad ? b : a;
        const incompat *di = &r->incs[d];
        if (e->line[d]) {
            because(e, id, x, d, "because ", numbered);
        } else if (e->refs[d] <= 1 && (is_derived(r, di->c1) != is_derived(r, di->c2)) &&
                   !e->line[is_derived(r, di->c1) ? di->c1 : di->c2]) {
            /* Fold: the derived cause's own fact joins this sentence. */
            uint32_t dd = is_derived(r, di->c1) ? di->c1 : di->c2;
            uint32_t dx = dd == di->c1 ? di->c2 : di->c1;
            visit(e, dd, false);
            because(e, id, dx, x, "and because ", numbered);
        } else {
            visit(e, d, false);
            because(e, id, x, NO_ID, "and because ", numbered);
        }
    } else {
        because(e, id, a, b, "because ", numbered);
    }
}

/* ----------------------------------------------------- what to change */

static void collect_fixes(ex *e, uint32_t top, plan_buf *out)
{
    plan_resolver *r = e->r;
    plan_strlist reqs, other;
    plan_strlist_init(&reqs);
    plan_strlist_init(&other);
    bool *seen = plan_xcalloc(r->nincs, sizeof(bool));
    size_t cap = 64, n = 0;
    uint32_t *st = plan_xmalloc(cap * sizeof(*st));
    st[n++] = top;
    seen[top] = true;
    plan_buf b;
    plan_buf_init(&b);
    while (n) {
        uint32_t x = st[--n];
        const incompat *inc = &r->incs[x];
        if (inc->kind == INC_DERIVED) {
            uint32_t c[2] = {inc->c1, inc->c2};
            for (int k = 0; k < 2; k++)
                if (!seen[c[k]]) {
                    seen[c[k]] = true;
                    if (n + 1 >= cap) {
                        cap *= 2;
                        st = plan_xrealloc(st, cap * sizeof(*st));
                    }
                    st[n++] = c[k];
                }
            continue;
        }
        if (inc->kind != INC_DEP)
            continue;
        const pkg *d = &r->pkgs[inc->dep];
        const char *range = d->labels[inc->label].text;
        plan_buf_reset(&b);
        if (inc->dep_state == DEP_MISSING) {
            plan_buf_printf(&b, "check the name '%s' or add a package of that name", d->name);
            if (!plan_strlist_contains(&other, b.data))
                plan_strlist_add(&other, b.data);
        } else if (inc->dep_state == DEP_BAD) {
            plan_buf_printf(&b, "fix the range '%s' that %s %s gives for %s", range,
                            r->pkgs[inc->pkg].name, r->pkgs[inc->pkg].vshow[inc->vlo],
                            d->name);
            plan_strlist_add(&other, b.data);
        } else if (inc->dep_state == DEP_EMPTY && inc->pkg != ROOT) {
            plan_buf_printf(&b, "make a version of %s matching %s available", d->name, range);
            if (!plan_strlist_contains(&other, b.data))
                plan_strlist_add(&other, b.data);
        }
        if (inc->pkg == ROOT && inc->dep_state != DEP_MISSING) {
            plan_buf_reset(&b);
            if (!strcmp(range, "*") || !*range)
                plan_buf_printf(&b, "%s", d->name);
            else
                plan_buf_printf(&b, "%s %s", d->name, range);
            if (!plan_strlist_contains(&reqs, b.data))
                plan_strlist_add(&reqs, b.data);
        }
    }
    plan_strlist_sort(&reqs);
    plan_strlist all;
    plan_strlist_init(&all);
    if (reqs.len) {
        plan_buf_reset(&b);
        plan_buf_adds(&b, "change or drop the request for ");
        join_list(&b, &reqs, " or ");
        plan_strlist_add(&all, b.data);
    }
    for (size_t i = 0; i < other.len; i++)
        plan_strlist_add(&all, other.items[i]);
    if (all.len) {
        plan_buf_adds(out, "To fix this, ");
        join_list(out, &all, "; or ");
        plan_buf_adds(out, ".\n");
    }
    plan_strlist_release(&all);
    plan_buf_release(&b);
    free(st);
    free(seen);
    plan_strlist_release(&reqs);
    plan_strlist_release(&other);
}

char *solver_explain(plan_resolver *r, uint32_t failure)
{
    ex e = {0};
    e.r = r;
    e.refs = plan_xcalloc(r->nincs, sizeof(uint32_t));
    e.line = plan_xcalloc(r->nincs, sizeof(uint32_t));
    plan_buf_init(&e.out);
    if (is_derived(r, failure)) {
        count_refs(&e, failure);
        visit(&e, failure, false);
    } else {
        /* A single fact defeats the request on its own. */
        write_line(&e, failure, "", false);
    }
    plan_buf_addc(&e.out, '\n');
    collect_fixes(&e, failure, &e.out);
    free(e.refs);
    free(e.line);
    return plan_buf_detach(&e.out);
}
