/* SemVer 2.0.0 versions: strict parsing, precedence, formatting. */
#include "resolver.h"
#include "semver_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int semver_fail(plan_ctx *ctx, int code, const char *fmt, ...)
{
    if (!ctx)
        return code;
    plan_buf b;
    plan_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    plan_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    plan_fail(ctx, code, "%s", b.data);
    plan_buf_release(&b);
    return code;
}

static bool is_ident_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A numeric part: "0" or no leading zero, at most 2^53-1 (npm's bound, so
 * the same inputs are accepted here and there). */
int semver_number(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || (len > 1 && s[0] == '0'))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        if (v > (PLAN_SEMVER_MAX_NUMBER - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Dot-separated identifiers, none empty; prerelease numerics may not have
 * leading zeros (build metadata may). */
const char *semver_check_idents(const char *s, size_t len, bool prerelease)
{
    if (len == 0)
        return "is empty";
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!is_ident_char(s[i]))
                return "has a character other than letters, digits, '-' and '.'";
            continue;
        }
        size_t n = i - start;
        if (n == 0)
            return "has an empty identifier";
        if (prerelease && n > 1 && s[start] == '0') {
            bool numeric = true;
            for (size_t k = start; k < i; k++)
                numeric = numeric && is_digit(s[k]);
            if (numeric)
                return "has a numeric identifier with a leading zero";
        }
        start = i + 1;
    }
    return NULL;
}

int semver_parse_core(plan_ctx *ctx, const char *text, size_t len, plan_semver *out,
                      const char *what)
{
    memset(out, 0, sizeof(*out));
    const char *s = text, *end = text + len;
    if (s < end && *s == 'v')
        s++;
    uint64_t *parts[3] = {&out->major, &out->minor, &out->patch};
    static const char *names[3] = {"major", "minor", "patch"};
    for (int i = 0; i < 3; i++) {
        const char *p = s;
        while (p < end && is_digit(*p))
            p++;
        if (semver_number(s, (size_t)(p - s), parts[i]))
            return semver_fail(ctx, PLAN_ERR_INVALID,
                             "invalid %s '%.*s': the %s number must be digits without a "
                             "leading zero, at most %llu",
                             what, (int)len, text, names[i],
                             (unsigned long long)PLAN_SEMVER_MAX_NUMBER);
        s = p;
        if (i < 2) {
            if (s >= end || *s != '.')
                return semver_fail(ctx, PLAN_ERR_INVALID,
                                 "invalid %s '%.*s': expected MAJOR.MINOR.PATCH", what,
                                 (int)len, text);
            s++;
        }
    }
    const char *pre = NULL, *pre_end = NULL, *build = NULL;
    if (s < end && *s == '-') {
        pre = ++s;
        while (s < end && *s != '+')
            s++;
        pre_end = s;
        const char *why = semver_check_idents(pre, (size_t)(pre_end - pre), true);
        if (why)
            return semver_fail(ctx, PLAN_ERR_INVALID, "invalid %s '%.*s': the prerelease %s",
                             what, (int)len, text, why);
    }
    if (s < end && *s == '+') {
        build = ++s;
        const char *why = semver_check_idents(build, (size_t)(end - build), false);
        if (why)
            return semver_fail(ctx, PLAN_ERR_INVALID,
                             "invalid %s '%.*s': the build metadata %s", what, (int)len,
                             text, why);
        s = end;
    }
    if (s != end)
        return semver_fail(ctx, PLAN_ERR_INVALID,
                         "invalid %s '%.*s': unexpected '%c' after the version numbers", what,
                         (int)len, text, *s);
    if (pre)
        out->prerelease = plan_xstrndup(pre, (size_t)(pre_end - pre));
    if (build)
        out->build = plan_xstrndup(build, (size_t)(end - build));
    return 0;
}

int plan_semver_parse(plan_ctx *ctx, const char *text, plan_semver *out)
{
    size_t len = strlen(text);
    if (len > PLAN_SEMVER_MAX_LEN) {
        memset(out, 0, sizeof(*out));
        return semver_fail(ctx, PLAN_ERR_INVALID,
                         "invalid version '%.40s...': longer than %d characters", text,
                         PLAN_SEMVER_MAX_LEN);
    }
    return semver_parse_core(ctx, text, len, out, "version");
}

void plan_semver_release(plan_semver *v)
{
    if (!v)
        return;
    free(v->prerelease);
    free(v->build);
    v->prerelease = v->build = NULL;
}

void plan_semver_copy(plan_semver *out, const plan_semver *v)
{
    *out = *v;
    out->prerelease = v->prerelease ? plan_xstrdup(v->prerelease) : NULL;
    out->build = v->build ? plan_xstrdup(v->build) : NULL;
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

/* Compare one prerelease identifier: numeric ones by value (length first,
 * since there are no leading zeros) and below alphanumeric ones, which
 * compare in ASCII order. */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    bool anum = true, bnum = true;
    for (size_t i = 0; i < an; i++)
        anum = anum && is_digit(a[i]);
    for (size_t i = 0; i < bn; i++)
        bnum = bnum && is_digit(b[i]);
    if (anum && bnum) {
        if (an != bn)
            return an < bn ? -1 : 1;
        int c = memcmp(a, b, an);
        return c < 0 ? -1 : c > 0;
    }
    if (anum != bnum)
        return anum ? -1 : 1;
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c < 0 ? -1 : 1;
    return cmp_u64(an, bn);
}

int semver_compare_prerelease(const char *a, const char *b)
{
    /* A version without prerelease ranks above any prerelease of it. */
    if (!a || !b)
        return !a && !b ? 0 : !a ? 1 : -1;
    while (1) {
        size_t an = strcspn(a, "."), bn = strcspn(b, ".");
        int c = cmp_ident(a, an, b, bn);
        if (c)
            return c;
        a += an;
        b += bn;
        if (!*a || !*b)
            return !*a && !*b ? 0 : !*a ? -1 : 1; /* more fields rank higher */
        a++;
        b++;
    }
}

int plan_semver_compare(const plan_semver *a, const plan_semver *b)
{
    int c = cmp_u64(a->major, b->major);
    if (!c)
        c = cmp_u64(a->minor, b->minor);
    if (!c)
        c = cmp_u64(a->patch, b->patch);
    if (!c)
        c = semver_compare_prerelease(a->prerelease, b->prerelease);
    return c;
}

int plan_semver_compare_full(const plan_semver *a, const plan_semver *b)
{
    int c = plan_semver_compare(a, b);
    if (c || (!a->build && !b->build))
        return c;
    if (!a->build || !b->build)
        return a->build ? 1 : -1;
    c = strcmp(a->build, b->build);
    return c < 0 ? -1 : c > 0;
}

void semver_format_to(plan_buf *b, const plan_semver *v, bool with_build)
{
    plan_buf_printf(b, "%llu.%llu.%llu", (unsigned long long)v->major,
                    (unsigned long long)v->minor, (unsigned long long)v->patch);
    if (v->prerelease)
        plan_buf_printf(b, "-%s", v->prerelease);
    if (with_build && v->build)
        plan_buf_printf(b, "+%s", v->build);
}

char *plan_semver_format(const plan_semver *v)
{
    plan_buf b;
    plan_buf_init(&b);
    semver_format_to(&b, v, true);
    return plan_buf_detach(&b);
}
