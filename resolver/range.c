/* npm-style ranges: parsing into comparator sets, matching, formatting.
 *
 * Every form is rewritten ("desugared") into plain comparators the way npm
 * does it, including the "-0" on exclusive upper bounds (<2.0.0-0), so that
 * a prerelease of the next major never sneaks in and the prerelease rule in
 * set_satisfies gives npm's answers.  docs/formats/semver.md has the table. */
#include "resolver.h"
#include "semver_int.h"

#include <stdlib.h>
#include <string.h>

typedef enum { OP_ANY, OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op;

typedef struct comparator {
    cmp_op op;
    plan_semver v; /* build is always NULL: it plays no part in a range */
} comparator;

typedef struct cset {
    comparator *c;
    size_t n, cap;
} cset;

struct plan_semver_range {
    cset *sets;
    size_t nsets;
    bool has_prerelease;
};

/* A version as written in a range: up to three parts, any of them a
 * wildcard or missing (both count as "x"). */
typedef struct partial {
    bool x[3];
    uint64_t n[3];
    char *pre;
} partial;

typedef struct parser {
    plan_ctx *ctx;
    const char *text; /* the whole range, for messages */
    size_t ncomparators;
    bool has_prerelease;
    const char *cur; /* the comparator being read, for messages */
    size_t curlen;
} parser;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int fail_tok(parser *ps, const char *tok, size_t len, const char *why)
{
    if (ps->cur) {
        tok = ps->cur;
        len = ps->curlen;
    }
    return semver_fail(ps->ctx, PLAN_ERR_INVALID, "invalid range '%s': %s in '%.*s'", ps->text,
                     why, (int)len, tok);
}

static void add_cmp(parser *ps, cset *set, cmp_op op, uint64_t M, uint64_t m, uint64_t p,
                    const char *pre)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 4;
        set->c = plan_xrealloc(set->c, set->cap * sizeof(*set->c));
    }
    comparator *c = &set->c[set->n++];
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->v.major = M;
    c->v.minor = m;
    c->v.patch = p;
    c->v.prerelease = pre ? plan_xstrdup(pre) : NULL;
    ps->ncomparators++;
}

static int parse_partial(parser *ps, const char *s, size_t len, partial *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = s, *end = s + len;
    if (p < end && *p == 'v')
        p++;
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (p == end) {
                for (int k = i; k < 3; k++)
                    out->x[k] = true;
                break;
            }
            if (*p != '.')
                return fail_tok(ps, s, len, "expected '.' between version numbers");
            p++;
        }
        if (p < end && (*p == 'x' || *p == 'X' || *p == '*')) {
            out->x[i] = true;
            p++;
            continue;
        }
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == p)
            return fail_tok(ps, s, len, "expected a number, 'x' or '*'");
        if (semver_number(p, (size_t)(q - p), &out->n[i]))
            return fail_tok(ps, s, len,
                            "a version number has a leading zero or is larger than 2^53-1");
        p = q;
    }
    bool any_x = out->x[0] || out->x[1] || out->x[2];
    if (p < end && (*p == '-' || *p == '+')) {
        /* npm ignores a qualifier after a wildcard; we refuse to guess. */
        if (any_x)
            return fail_tok(ps, s, len,
                            "a prerelease or build cannot follow a wildcard or partial "
                            "version");
        const char *pre = NULL, *pre_end = NULL;
        if (*p == '-') {
            pre = ++p;
            while (p < end && *p != '+')
                p++;
            pre_end = p;
            const char *why = semver_check_idents(pre, (size_t)(pre_end - pre), true);
            if (why) {
                plan_buf b;
                plan_buf_init(&b);
                plan_buf_printf(&b, "the prerelease %s", why);
                int rc = fail_tok(ps, s, len, b.data);
                plan_buf_release(&b);
                return rc;
            }
        }
        if (p < end && *p == '+') {
            const char *build = ++p;
            const char *why = semver_check_idents(build, (size_t)(end - build), false);
            if (why) {
                plan_buf b;
                plan_buf_init(&b);
                plan_buf_printf(&b, "the build metadata %s", why);
                int rc = fail_tok(ps, s, len, b.data);
                plan_buf_release(&b);
                return rc;
            }
            p = end;
        }
        if (pre) {
            out->pre = plan_xstrndup(pre, (size_t)(pre_end - pre));
            ps->has_prerelease = true;
        }
    }
    if (p != end)
        return fail_tok(ps, s, len, "unexpected character");
    return 0;
}

/* A bare partial or one after <, <=, >, >=, = (op OP_ANY for bare). */
static void desugar_primitive(parser *ps, cset *set, cmp_op op, const partial *v)
{
    bool xM = v->x[0], xm = v->x[1], xp = v->x[2];
    uint64_t M = v->n[0], m = v->n[1], p = v->n[2];
    if (op == OP_EQ && (xM || xm || xp))
        op = OP_ANY;
    if (xM) {
        /* ">*" and "<*" can match nothing; every other form of "*" is any. */
        if (op == OP_GT || op == OP_LT)
            add_cmp(ps, set, OP_LT, 0, 0, 0, "0");
        else
            add_cmp(ps, set, OP_ANY, 0, 0, 0, NULL);
        return;
    }
    if (op != OP_ANY && (xm || xp)) {
        if (xm)
            m = 0;
        p = 0;
        const char *pre = NULL;
        if (op == OP_GT) {
            op = OP_GE;
            if (xm)
                M++;
            else
                m++;
        } else if (op == OP_LE) {
            op = OP_LT;
            if (xm)
                M++;
            else
                m++;
        }
        if (op == OP_LT)
            pre = "0";
        add_cmp(ps, set, op, M, m, p, pre);
        return;
    }
    if (xm) {
        add_cmp(ps, set, OP_GE, M, 0, 0, NULL);
        add_cmp(ps, set, OP_LT, M + 1, 0, 0, "0");
    } else if (xp) {
        add_cmp(ps, set, OP_GE, M, m, 0, NULL);
        add_cmp(ps, set, OP_LT, M, m + 1, 0, "0");
    } else {
        add_cmp(ps, set, op == OP_ANY ? OP_EQ : op, M, m, p, v->pre);
    }
}

static void desugar_tilde(parser *ps, cset *set, const partial *v)
{
    uint64_t M = v->n[0], m = v->n[1], p = v->n[2];
    if (v->x[0]) {
        add_cmp(ps, set, OP_ANY, 0, 0, 0, NULL);
    } else if (v->x[1]) {
        add_cmp(ps, set, OP_GE, M, 0, 0, NULL);
        add_cmp(ps, set, OP_LT, M + 1, 0, 0, "0");
    } else {
        add_cmp(ps, set, OP_GE, M, m, v->x[2] ? 0 : p, v->pre);
        add_cmp(ps, set, OP_LT, M, m + 1, 0, "0");
    }
}

/* Caret: the leftmost non-zero part may not change. */
static void desugar_caret(parser *ps, cset *set, const partial *v)
{
    uint64_t M = v->n[0], m = v->n[1], p = v->n[2];
    if (v->x[0]) {
        add_cmp(ps, set, OP_ANY, 0, 0, 0, NULL);
    } else if (v->x[1]) {
        add_cmp(ps, set, OP_GE, M, 0, 0, NULL);
        add_cmp(ps, set, OP_LT, M + 1, 0, 0, "0");
    } else if (v->x[2]) {
        add_cmp(ps, set, OP_GE, M, m, 0, NULL);
        if (M == 0)
            add_cmp(ps, set, OP_LT, M, m + 1, 0, "0");
        else
            add_cmp(ps, set, OP_LT, M + 1, 0, 0, "0");
    } else {
        add_cmp(ps, set, OP_GE, M, m, p, v->pre);
        if (M == 0 && m == 0)
            add_cmp(ps, set, OP_LT, 0, 0, p + 1, "0");
        else if (M == 0)
            add_cmp(ps, set, OP_LT, 0, m + 1, 0, "0");
        else
            add_cmp(ps, set, OP_LT, M + 1, 0, 0, "0");
    }
}

/* "A - B": inclusive at both ends, a partial B covering all it names. */
static void desugar_hyphen(parser *ps, cset *set, const partial *a, const partial *b)
{
    size_t before = set->n;
    if (!a->x[0]) {
        if (a->x[1])
            add_cmp(ps, set, OP_GE, a->n[0], 0, 0, NULL);
        else if (a->x[2])
            add_cmp(ps, set, OP_GE, a->n[0], a->n[1], 0, NULL);
        else
            add_cmp(ps, set, OP_GE, a->n[0], a->n[1], a->n[2], a->pre);
    }
    if (!b->x[0]) {
        if (b->x[1])
            add_cmp(ps, set, OP_LT, b->n[0] + 1, 0, 0, "0");
        else if (b->x[2])
            add_cmp(ps, set, OP_LT, b->n[0], b->n[1] + 1, 0, "0");
        else
            add_cmp(ps, set, OP_LE, b->n[0], b->n[1], b->n[2], b->pre);
    }
    if (set->n == before)
        add_cmp(ps, set, OP_ANY, 0, 0, 0, NULL);
}

typedef struct token {
    const char *s;
    size_t len;
} token;

/* The operators npm lets stand apart from their version ("> 1.2", "~ 1"). */
static size_t op_len(const char *s, size_t len)
{
    if (len >= 2 && (!strncmp(s, ">=", 2) || !strncmp(s, "<=", 2) || !strncmp(s, "~>", 2)))
        return 2;
    if (len >= 1 && strchr("<>=~^", s[0]))
        return 1;
    return 0;
}

static int parse_set(parser *ps, const char *s, size_t len, cset *set)
{
    token toks[PLAN_SEMVER_RANGE_MAX_COMPARATORS + 2];
    size_t nt = 0;
    const char *end = s + len, *p = s;
    while (p < end) {
        while (p < end && is_space(*p))
            p++;
        if (p == end)
            break;
        const char *q = p;
        while (q < end && !is_space(*q))
            q++;
        if (nt == sizeof(toks) / sizeof(toks[0]))
            return semver_fail(ps->ctx, PLAN_ERR_INVALID,
                             "invalid range '%.60s...': more than %d comparators", ps->text,
                             PLAN_SEMVER_RANGE_MAX_COMPARATORS);
        /* An operator on its own takes the next word as its version. */
        if (op_len(p, (size_t)(q - p)) == (size_t)(q - p)) {
            const char *r = q;
            while (r < end && is_space(*r))
                r++;
            if (r == end)
                return fail_tok(ps, p, (size_t)(q - p), "an operator without a version");
            while (r < end && !is_space(*r))
                r++;
            q = r;
        }
        toks[nt].s = p;
        toks[nt].len = (size_t)(q - p);
        nt++;
        p = q;
    }
    if (nt == 0) {
        add_cmp(ps, set, OP_ANY, 0, 0, 0, NULL);
        return 0;
    }
    if (nt == 3 && toks[1].len == 1 && toks[1].s[0] == '-' && !op_len(toks[0].s, toks[0].len) &&
        !op_len(toks[2].s, toks[2].len)) {
        partial a, b;
        if (parse_partial(ps, toks[0].s, toks[0].len, &a))
            return PLAN_ERR_INVALID;
        if (parse_partial(ps, toks[2].s, toks[2].len, &b)) {
            free(a.pre);
            return PLAN_ERR_INVALID;
        }
        desugar_hyphen(ps, set, &a, &b);
        free(a.pre);
        free(b.pre);
        return 0;
    }
    for (size_t i = 0; i < nt; i++) {
        const char *t = toks[i].s;
        size_t tl = toks[i].len, ol = op_len(t, tl);
        ps->cur = t;
        ps->curlen = tl;
        const char *v = t + ol;
        while (v < t + tl && is_space(*v))
            v++;
        if (v == t + tl)
            return fail_tok(ps, t, tl, "an operator without a version");
        if (*v == '-' && ol == 0 && tl == 1)
            return fail_tok(ps, t, tl,
                            "a '-' that is not a hyphen range 'A - B' (spaces around it, "
                            "nothing else in the set)");
        partial pv;
        if (parse_partial(ps, v, (size_t)(t + tl - v), &pv))
            return PLAN_ERR_INVALID;
        if (ol == 1 && t[0] == '^')
            desugar_caret(ps, set, &pv);
        else if (t[0] == '~' && ol >= 1)
            desugar_tilde(ps, set, &pv);
        else {
            cmp_op op = OP_ANY;
            if (ol == 2)
                op = t[0] == '>' ? OP_GE : OP_LE;
            else if (ol == 1)
                op = t[0] == '>' ? OP_GT : t[0] == '<' ? OP_LT : OP_EQ;
            desugar_primitive(ps, set, op, &pv);
        }
        free(pv.pre);
        ps->cur = NULL;
        if (ps->ncomparators > PLAN_SEMVER_RANGE_MAX_COMPARATORS)
            return semver_fail(ps->ctx, PLAN_ERR_INVALID,
                             "invalid range '%.60s...': more than %d comparators", ps->text,
                             PLAN_SEMVER_RANGE_MAX_COMPARATORS);
    }
    return 0;
}

int plan_semver_range_parse(plan_ctx *ctx, const char *text, plan_semver_range **out)
{
    *out = NULL;
    size_t len = strlen(text);
    if (len > PLAN_SEMVER_RANGE_MAX_LEN)
        return semver_fail(ctx, PLAN_ERR_INVALID,
                         "invalid range '%.60s...': longer than %d characters", text,
                         PLAN_SEMVER_RANGE_MAX_LEN);
    parser ps = {ctx, text, 0, false, NULL, 0};
    plan_semver_range *r = plan_xcalloc(1, sizeof(*r));
    const char *p = text, *end = text + len;
    size_t cap = 0;
    while (1) {
        const char *q = p;
        while (q < end && *q != '|')
            q++;
        if (q < end && (q + 1 == end || q[1] != '|')) {
            plan_semver_range_free(r);
            return semver_fail(ctx, PLAN_ERR_INVALID,
                             "invalid range '%s': a single '|' (alternatives are joined "
                             "with '||')",
                             text);
        }
        if (r->nsets == cap) {
            cap = cap ? cap * 2 : 2;
            r->sets = plan_xrealloc(r->sets, cap * sizeof(*r->sets));
        }
        cset *set = &r->sets[r->nsets++];
        memset(set, 0, sizeof(*set));
        if (parse_set(&ps, p, (size_t)(q - p), set)) {
            plan_semver_range_free(r);
            return PLAN_ERR_INVALID;
        }
        if (ps.ncomparators > PLAN_SEMVER_RANGE_MAX_COMPARATORS) {
            plan_semver_range_free(r);
            return semver_fail(ctx, PLAN_ERR_INVALID,
                             "invalid range '%.60s...': more than %d comparators", text,
                             PLAN_SEMVER_RANGE_MAX_COMPARATORS);
        }
        if (q == end)
            break;
        p = q + 2;
    }
    r->has_prerelease = ps.has_prerelease;
    *out = r;
    return 0;
}

void plan_semver_range_free(plan_semver_range *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nsets; i++) {
        for (size_t k = 0; k < r->sets[i].n; k++)
            plan_semver_release(&r->sets[i].c[k].v);
        free(r->sets[i].c);
    }
    free(r->sets);
    free(r);
}

static bool cmp_test(const comparator *c, const plan_semver *v)
{
    if (c->op == OP_ANY)
        return true;
    int d = plan_semver_compare(v, &c->v);
    switch (c->op) {
    case OP_EQ: return d == 0;
    case OP_LT: return d < 0;
    case OP_LE: return d <= 0;
    case OP_GT: return d > 0;
    case OP_GE: return d >= 0;
    default: return true;
    }
}

static bool set_satisfies(const cset *set, const plan_semver *v)
{
    for (size_t i = 0; i < set->n; i++)
        if (!cmp_test(&set->c[i], v))
            return false;
    if (!v->prerelease)
        return true;
    /* A prerelease is only wanted by a set that names one of the same
     * major.minor.patch: "^1.2.3-beta" takes 1.2.3-rc but not 1.3.0-rc. */
    for (size_t i = 0; i < set->n; i++) {
        const comparator *c = &set->c[i];
        if (c->op != OP_ANY && c->v.prerelease && c->v.major == v->major &&
            c->v.minor == v->minor && c->v.patch == v->patch)
            return true;
    }
    return false;
}

bool plan_semver_range_satisfies(const plan_semver_range *r, const plan_semver *v)
{
    for (size_t i = 0; i < r->nsets; i++)
        if (set_satisfies(&r->sets[i], v))
            return true;
    return false;
}

bool plan_semver_range_has_prerelease(const plan_semver_range *r)
{
    return r->has_prerelease;
}

char *plan_semver_range_format(const plan_semver_range *r)
{
    static const char *ops[] = {"", "", "<", "<=", ">", ">="};
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < r->nsets; i++) {
        const cset *set = &r->sets[i];
        if (i)
            plan_buf_adds(&b, "||");
        bool only_any = true;
        for (size_t k = 0; k < set->n; k++)
            only_any = only_any && set->c[k].op == OP_ANY;
        if (only_any) {
            plan_buf_adds(&b, "*");
            continue;
        }
        bool first = true;
        for (size_t k = 0; k < set->n; k++) {
            /* "*" beside other comparators adds nothing (npm drops it). */
            if (set->c[k].op == OP_ANY)
                continue;
            if (!first)
                plan_buf_addc(&b, ' ');
            first = false;
            plan_buf_adds(&b, ops[set->c[k].op]);
            semver_format_to(&b, &set->c[k].v, false);
        }
    }
    return plan_buf_detach(&b);
}
