/* The fixture of the unit tests that need a store: a context, a fresh
 * root with its store open, and private folders for a source tree, for run
 * roots and for the archives a test writes (private, as the tests of other
 * checkouts may run at the same time).  Include after test_helpers.h and
 * store/store.h; pass store_fixture_setup/_teardown to cmocka. */
#ifndef PLAN_TEST_STORE_FIXTURE_H
#define PLAN_TEST_STORE_FIXTURE_H

typedef struct fixture {
    plan_ctx *ctx;
    char *root, *src, *run, *out;
    plan_store *store;
} fixture;

static int store_fixture_setup(void **state)
{
    fixture *f = plan_xcalloc(1, sizeof(*f));
    f->ctx = plan_ctx_new();
    f->root = th_tmpdir();
    f->src = th_tmpdir();
    f->run = th_tmpdir();
    f->out = th_tmpdir();
    if (plan_store_open(f->ctx, f->root, &f->store))
        fail_msg("open: %s", plan_ctx_error(f->ctx));
    *state = f;
    return 0;
}

static int store_fixture_teardown(void **state)
{
    fixture *f = *state;
    plan_store_close(f->store);
    plan_ctx_free(f->ctx);
    th_rmtree(f->root);
    th_rmtree(f->src);
    th_rmtree(f->run);
    th_rmtree(f->out);
    free(f);
    return 0;
}

#endif
