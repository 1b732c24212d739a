/* libFuzzer target for the recipe parser (make fuzz): any input must be
 * accepted or refused with a message, in bounded time, without a crash,
 * a leak or undefined behaviour. */
#include "recipes/recipes.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plan_ctx *ctx = plan_ctx_new();
    plan_recipe *r = NULL;
    if (plan_recipe_parse(ctx, "fuzz.yaml", (const char *)data, size, &r) == 0)
        plan_recipe_free(r);
    else if (!plan_ctx_error(ctx)[0])
        __builtin_trap(); /* a refusal must say why */
    plan_ctx_free(ctx);
    return 0;
}
