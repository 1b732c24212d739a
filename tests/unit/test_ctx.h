/* A context shared by a whole group of unit tests: include it, pass setup
 * and teardown to cmocka_run_group_tests_name, and use ctx. */
#ifndef PLAN_TEST_CTX_H
#define PLAN_TEST_CTX_H

#include "common/common.h"

static plan_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = plan_ctx_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plan_ctx_free(ctx);
    return 0;
}

#endif
