/* Unit tests for reference scanning and digest rewriting. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "store/store.h"


#define D1 "0123456789abcdfghjklmnpqrstvwxyz"
#define D2 "zyxwvtsrqpnmlkjhgfdcba9876543210"
#define D3 "11111111111111111111111111111111"
#define D4 "22222222222222222222222222222222"

static void scan_finds_digests_in_contents_links_and_names(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    /* D1 inside a binary-looking file, straddling a 256 KiB read boundary. */
    size_t size = 600 * 1024;
    char *buf = plan_xcalloc(1, size);
    memcpy(buf + 256 * 1024 - 13, "/store/" D1 "-lib-1.0/lib", 7 + 32 + 12);
    th_write(dir, "bin/prog", buf, size, 0755);
    th_symlink(dir, "libdir", "/store/" D2 "-other-2.0/lib");
    th_write_str(dir, "names/" D3 ".conf", "nothing here");
    const char *digests[] = {D1, D2, D3, D4};
    bool found[4];
    assert_int_equal(plan_store_scan_refs(ctx, dir, digests, 4, found), 0);
    assert_true(found[0]);
    assert_true(found[1]);
    assert_true(found[2]);
    assert_false(found[3]);
    free(buf);
    th_rmtree(dir);
}

static void scan_ignores_near_misses(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    /* 31 characters of D1, and D1 with one character outside the alphabet. */
    th_write_str(dir, "a", "x" "0123456789abcdfghjklmnpqrstvwxy" "!");
    th_write_str(dir, "b", "0123456789abcdfghjklmnpqrstvwxe");
    const char *digests[] = {D1};
    bool found[1];
    assert_int_equal(plan_store_scan_refs(ctx, dir, digests, 1, found), 0);
    assert_false(found[0]);
    /* A digest embedded in a longer base32 run is still a reference. */
    th_write_str(dir, "c", "zz" D1 "zz");
    assert_int_equal(plan_store_scan_refs(ctx, dir, digests, 1, found), 0);
    assert_true(found[0]);
    th_rmtree(dir);
}

static void scan_rejects_malformed_digests(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    const char *digests[] = {"short"};
    bool found[1];
    assert_int_equal(plan_store_scan_refs(ctx, dir, digests, 1, found), PLAN_ERR_INVALID);
    th_rmtree(dir);
}

static char *read_all(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    plan_buf b;
    plan_buf_init(&b);
    assert_int_equal(plan_fs_read_file(p, 1 << 24, &b), 0);
    free(p);
    return plan_buf_detach(&b);
}

/* The property builds rely on: a tree that names its own temporary digest
 * hashes, masked, exactly like the tree rewritten to its final digest. */
static void rewrite_preserves_the_masked_hash(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    size_t size = 300 * 1024;
    char *buf = plan_xmalloc(size);
    memset(buf, 'a', size);
    memcpy(buf + 262144 - 5, D1, 32);          /* across the read boundary */
    memcpy(buf + 10, "/store/" D1 "/x", 41);
    th_write(dir, "bin/prog", buf, size, 0555); /* read-only, as builds leave it */
    th_symlink(dir, "self", "/store/" D1 "/bin/prog");
    th_write_str(dir, "share/" D1 ".txt", "named after itself");

    plan_hash before, after;
    assert_int_equal(plan_store_hash_tree(ctx, dir, D1, 0, &before, NULL), 0);
    uint64_t count = 0;
    assert_int_equal(plan_store_rewrite_digest(ctx, dir, D1, D2, &count), 0);
    assert_int_equal(count, 4);
    assert_int_equal(plan_store_hash_tree(ctx, dir, D2, 0, &after, NULL), 0);
    assert_memory_equal(before.bytes, after.bytes, PLAN_HASH_BYTES);

    char *text = read_all(dir, "bin/prog");
    assert_null(memmem(text, size, D1, 32));
    assert_memory_equal(text + 262144 - 5, D2, 32);
    free(text);
    char target[256];
    char *link = plan_path_join(dir, "self");
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "/store/" D2 "/bin/prog");
    char *renamed = plan_path_join(dir, "share/" D2 ".txt");
    struct stat st;
    assert_int_equal(lstat(renamed, &st), 0);
    char *prog = plan_path_join(dir, "bin/prog");
    assert_int_equal(lstat(prog, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0555); /* mode restored */
    free(prog);
    free(renamed);
    free(link);
    free(buf);
    th_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scan_finds_digests_in_contents_links_and_names),
        cmocka_unit_test(scan_ignores_near_misses),
        cmocka_unit_test(scan_rejects_malformed_digests),
        cmocka_unit_test(rewrite_preserves_the_masked_hash),
    };
    return cmocka_run_group_tests_name("store_refs", tests, setup, teardown);
}
