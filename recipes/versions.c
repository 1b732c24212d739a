/* Versions and ranges for recipes, through the resolver's SemVer. */
#include "recipes_int.h"
#include "../resolver/resolver.h"

#include <stdlib.h>

char *recipe_check_version(const char *text)
{
    /* The range grammar tolerates "v1.2.3"; a recipe's own version is the
     * strict form, since it also names a store path. */
    const char *store_why = plan_store_check_version(text);
    if (store_why)
        return plan_xstrdup(store_why);
    plan_ctx *ctx = plan_ctx_new();
    plan_semver v;
    char *why = NULL;
    if (plan_semver_parse(ctx, text, &v) != 0)
        why = plan_xstrdup(plan_ctx_error(ctx));
    else
        plan_semver_release(&v);
    plan_ctx_free(ctx);
    return why;
}

char *recipe_check_range(const char *text)
{
    plan_ctx *ctx = plan_ctx_new();
    plan_semver_range *r = NULL;
    char *why = NULL;
    if (plan_semver_range_parse(ctx, text, &r) != 0)
        why = plan_xstrdup(plan_ctx_error(ctx));
    plan_semver_range_free(r);
    plan_ctx_free(ctx);
    return why;
}

/* Both are valid: recipes are checked when loaded. */
int recipe_version_compare(const char *a, const char *b)
{
    plan_ctx *ctx = plan_ctx_new();
    plan_semver x, y;
    int c = 0;
    if (plan_semver_parse(ctx, a, &x) == 0) {
        if (plan_semver_parse(ctx, b, &y) == 0) {
            c = plan_semver_compare(&x, &y);
            plan_semver_release(&y);
        }
        plan_semver_release(&x);
    }
    plan_ctx_free(ctx);
    return c;
}

bool recipe_range_satisfied(const char *range, const char *version)
{
    plan_ctx *ctx = plan_ctx_new();
    plan_semver_range *r = NULL;
    plan_semver v;
    bool ok = false;
    if (plan_semver_range_parse(ctx, range, &r) == 0 && plan_semver_parse(ctx, version, &v) == 0) {
        ok = plan_semver_range_satisfies(r, &v);
        plan_semver_release(&v);
    }
    plan_semver_range_free(r);
    plan_ctx_free(ctx);
    return ok;
}
