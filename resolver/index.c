/* An in-memory package index (a provider for fixtures, benchmarks and small
 * indexes) and the text format of resolution problems (docs/solver.md). */
#include "resolver.h"

#include <stdlib.h>
#include <string.h>

typedef struct ix_version {
    char *version;
    plan_strlist names, ranges;
} ix_version;

typedef struct ix_pkg {
    char *name;
    ix_version *vers;
    size_t n, cap;
} ix_pkg;

struct plan_resolver_index {
    ix_pkg *pkgs;
    size_t n, cap;
    size_t *hash; /* index + 1, 0 = empty */
    size_t hashcap;
    ix_pkg *last;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

plan_resolver_index *plan_resolver_index_new(void)
{
    plan_resolver_index *ix = plan_xcalloc(1, sizeof(*ix));
    ix->hashcap = 64;
    ix->hash = plan_xcalloc(ix->hashcap, sizeof(size_t));
    return ix;
}

void plan_resolver_index_free(plan_resolver_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++) {
        for (size_t k = 0; k < ix->pkgs[i].n; k++) {
            free(ix->pkgs[i].vers[k].version);
            plan_strlist_release(&ix->pkgs[i].vers[k].names);
            plan_strlist_release(&ix->pkgs[i].vers[k].ranges);
        }
        free(ix->pkgs[i].vers);
        free(ix->pkgs[i].name);
    }
    free(ix->pkgs);
    free(ix->hash);
    free(ix);
}

static ix_pkg *ix_find(const plan_resolver_index *ix, const char *name)
{
    size_t i = fnv(name) & (ix->hashcap - 1);
    while (ix->hash[i]) {
        ix_pkg *p = &ix->pkgs[ix->hash[i] - 1];
        if (!strcmp(p->name, name))
            return p;
        i = (i + 1) & (ix->hashcap - 1);
    }
    return NULL;
}

static void ix_hash_put(plan_resolver_index *ix, size_t idx)
{
    size_t i = fnv(ix->pkgs[idx].name) & (ix->hashcap - 1);
    while (ix->hash[i])
        i = (i + 1) & (ix->hashcap - 1);
    ix->hash[i] = idx + 1;
}

void plan_resolver_index_add(plan_resolver_index *ix, const char *name, const char *version)
{
    ix_pkg *p = ix_find(ix, name);
    if (!p) {
        if (ix->n == ix->cap) {
            ix->cap = ix->cap ? ix->cap * 2 : 16;
            ix->pkgs = plan_xrealloc(ix->pkgs, ix->cap * sizeof(*ix->pkgs));
        }
        p = &ix->pkgs[ix->n];
        memset(p, 0, sizeof(*p));
        p->name = plan_xstrdup(name);
        ix->n++;
        if (ix->n * 2 > ix->hashcap) {
            free(ix->hash);
            ix->hashcap *= 2;
            ix->hash = plan_xcalloc(ix->hashcap, sizeof(size_t));
            for (size_t i = 0; i < ix->n; i++)
                ix_hash_put(ix, i);
        } else {
            ix_hash_put(ix, ix->n - 1);
        }
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4;
        p->vers = plan_xrealloc(p->vers, p->cap * sizeof(*p->vers));
    }
    ix_version *v = &p->vers[p->n++];
    v->version = plan_xstrdup(version);
    plan_strlist_init(&v->names);
    plan_strlist_init(&v->ranges);
    ix->last = p;
}

void plan_resolver_index_add_dep(plan_resolver_index *ix, const char *name, const char *range)
{
    if (!ix->last || !ix->last->n)
        return;
    ix_version *v = &ix->last->vers[ix->last->n - 1];
    plan_strlist_add(&v->names, name);
    plan_strlist_add(&v->ranges, range);
}

static int ix_versions(void *user, plan_ctx *ctx, const char *name, plan_strlist *out)
{
    (void)ctx;
    const ix_pkg *p = ix_find(user, name);
    if (!p)
        return PLAN_ERR_NOT_FOUND;
    for (size_t i = 0; i < p->n; i++)
        plan_strlist_add(out, p->vers[i].version);
    return 0;
}

static int ix_dependencies(void *user, plan_ctx *ctx, const char *name, const char *version,
                           plan_strlist *names, plan_strlist *ranges)
{
    const ix_pkg *p = ix_find(user, name);
    for (size_t i = 0; p && i < p->n; i++) {
        if (strcmp(p->vers[i].version, version))
            continue;
        for (size_t k = 0; k < p->vers[i].names.len; k++) {
            plan_strlist_add(names, p->vers[i].names.items[k]);
            plan_strlist_add(ranges, p->vers[i].ranges.items[k]);
        }
        return 0;
    }
    return plan_fail(ctx, PLAN_ERR_NOT_FOUND, "the index has no '%s@%s'", name, version);
}

plan_resolver_provider plan_resolver_index_provider(plan_resolver_index *ix)
{
    plan_resolver_provider p = {ix_versions, ix_dependencies, ix};
    return p;
}

/* ------------------------------------------------------------ problems */

enum { SEC_NONE, SEC_INDEX, SEC_REQUEST, SEC_LOCK, SEC_UPGRADE, SEC_RESULT, SEC_EXPLAIN };

static int section_of(const char *line, size_t len)
{
    static const struct {
        const char *name;
        int sec;
    } secs[] = {{"[index]", SEC_INDEX},     {"[request]", SEC_REQUEST},
                {"[lock]", SEC_LOCK},       {"[upgrade]", SEC_UPGRADE},
                {"[result]", SEC_RESULT},   {"[explain]", SEC_EXPLAIN}};
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        if (strlen(secs[i].name) == len && !memcmp(secs[i].name, line, len))
            return secs[i].sec;
    return -1;
}

/* Split "word rest..." with surrounding blanks trimmed. */
static void split_word(char *s, char **word, char **rest)
{
    while (*s == ' ' || *s == '\t')
        s++;
    *word = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    *rest = s;
}

void plan_resolver_problem_release(plan_resolver_problem *p)
{
    plan_resolver_index_free(p->index);
    plan_strlist_release(&p->req_names);
    plan_strlist_release(&p->req_ranges);
    plan_strlist_release(&p->lock_names);
    plan_strlist_release(&p->lock_versions);
    plan_strlist_release(&p->upgrade);
    free(p->expect_result);
    free(p->expect_explain);
    memset(p, 0, sizeof(*p));
}

static char *trim_block(plan_buf *b)
{
    while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
        plan_buf_truncate(b, b->len - 1);
    plan_buf_addc(b, '\n');
    return plan_buf_detach(b);
}

int plan_resolver_problem_parse(plan_ctx *ctx, const char *what, const char *text,
                                plan_resolver_problem *out)
{
    memset(out, 0, sizeof(*out));
    out->index = plan_resolver_index_new();
    plan_strlist_init(&out->req_names);
    plan_strlist_init(&out->req_ranges);
    plan_strlist_init(&out->lock_names);
    plan_strlist_init(&out->lock_versions);
    plan_strlist_init(&out->upgrade);
    plan_buf result, explain;
    plan_buf_init(&result);
    plan_buf_init(&explain);
    bool have_result = false, have_explain = false, have_version = false;
    int sec = SEC_NONE, rc = 0;
    size_t lineno = 0;
    const char *p = text;
    while (*p && !rc) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char *line = plan_xstrndup(p, len);
        p += len + (nl ? 1 : 0);
        int s = line[0] == '[' ? section_of(line, len) : -1;
        if (s >= 0) {
            sec = s;
            have_result = have_result || s == SEC_RESULT;
            have_explain = have_explain || s == SEC_EXPLAIN;
            free(line);
            continue;
        }
        if (sec == SEC_EXPLAIN) {
            /* Verbatim: it is compared with the solver's words. */
            if (explain.len || len)
                plan_buf_printf(&explain, "%s\n", line);
            free(line);
            continue;
        }
        char *c = line;
        while (*c == ' ' || *c == '\t')
            c++;
        if (!*c || *c == '#' || *c == '\r') {
            free(line);
            continue;
        }
        bool indented = c != line;
        char *word, *rest;
        split_word(line, &word, &rest);
        switch (sec) {
        case SEC_INDEX:
            if (indented) {
                if (!have_version)
                    rc = plan_fail(ctx, PLAN_ERR_INVALID,
                                   "%s:%zu: a dependency before any 'name version' line",
                                   what, lineno);
                else
                    plan_resolver_index_add_dep(out->index, word, *rest ? rest : "*");
            } else if (!*rest || strchr(rest, ' ')) {
                rc = plan_fail(ctx, PLAN_ERR_INVALID,
                               "%s:%zu: expected 'name version', got '%s %s'", what, lineno,
                               word, rest);
            } else {
                plan_resolver_index_add(out->index, word, rest);
                have_version = true;
            }
            break;
        case SEC_REQUEST:
            plan_strlist_add(&out->req_names, word);
            plan_strlist_add(&out->req_ranges, *rest ? rest : "*");
            break;
        case SEC_LOCK:
            if (!*rest)
                rc = plan_fail(ctx, PLAN_ERR_INVALID, "%s:%zu: a lock needs 'name version'",
                               what, lineno);
            plan_strlist_add(&out->lock_names, word);
            plan_strlist_add(&out->lock_versions, rest);
            break;
        case SEC_UPGRADE:
            plan_strlist_add(&out->upgrade, word);
            break;
        case SEC_RESULT:
            plan_buf_printf(&result, "%s %s\n", word, rest);
            break;
        default:
            rc = plan_fail(ctx, PLAN_ERR_INVALID,
                           "%s:%zu: text outside a section (start with [index])", what, lineno);
        }
        free(line);
    }
    if (have_result)
        out->expect_result = plan_buf_detach(&result);
    if (have_explain)
        out->expect_explain = trim_block(&explain);
    plan_buf_release(&result);
    plan_buf_release(&explain);
    if (rc)
        plan_resolver_problem_release(out);
    return rc;
}

plan_resolver *plan_resolver_problem_resolver(plan_ctx *ctx, plan_resolver_problem *p)
{
    plan_resolver_provider prov = plan_resolver_index_provider(p->index);
    plan_resolver *r = plan_resolver_new(ctx, &prov);
    for (size_t i = 0; i < p->req_names.len; i++)
        if (plan_resolver_require(r, p->req_names.items[i], p->req_ranges.items[i]))
            goto fail;
    for (size_t i = 0; i < p->lock_names.len; i++)
        if (plan_resolver_lock(r, p->lock_names.items[i], p->lock_versions.items[i]))
            goto fail;
    for (size_t i = 0; i < p->upgrade.len; i++)
        plan_resolver_upgrade(r, strcmp(p->upgrade.items[i], "*") ? p->upgrade.items[i] : NULL);
    return r;
fail:
    plan_resolver_free(r);
    return NULL;
}

char *plan_resolution_format(const plan_resolution *res)
{
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < res->count; i++)
        plan_buf_printf(&b, "%s %s\n", res->packages[i].name, res->packages[i].version);
    return plan_buf_detach(&b);
}
