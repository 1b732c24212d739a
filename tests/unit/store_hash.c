/* Unit tests for the canonical serialization, hashing and digests. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "store/store.h"


static void hash_dir(const char *dir, const char *mask, unsigned threads, char *text)
{
    plan_hash h;
    int rc = plan_store_hash_tree(ctx, dir, mask, threads, &h, NULL);
    if (rc)
        fail_msg("hashing '%s': %s", dir, plan_ctx_error(ctx));
    plan_hash_format(&h, text);
}

static void base32_encodes_msb_first(void **state)
{
    (void)state;
    char out[40];
    uint8_t zeros[20] = {0};
    plan_base32_encode(zeros, 20, out);
    assert_string_equal(out, "00000000000000000000000000000000");
    uint8_t ff[20];
    memset(ff, 0xff, sizeof(ff));
    plan_base32_encode(ff, 20, out);
    assert_string_equal(out, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    uint8_t one[5] = {0x08, 0x86, 0x42, 0x98, 0xe8}; /* 00001 00010 00011 ... */
    plan_base32_encode(one, 5, out);
    assert_string_equal(out, "12345678");
    assert_false(plan_base32_valid_char('e'));
    assert_false(plan_base32_valid_char('o'));
    assert_true(plan_base32_valid_char('z'));
}

static void hash_text_round_trips(void **state)
{
    (void)state;
    plan_hash h, back;
    for (int i = 0; i < PLAN_HASH_BYTES; i++)
        h.bytes[i] = (uint8_t)(i * 7);
    char text[PLAN_HASH_TEXT_LEN + 1];
    plan_hash_format(&h, text);
    assert_int_equal(strlen(text), PLAN_HASH_TEXT_LEN);
    assert_int_equal(plan_hash_parse(text, &back), 0);
    assert_memory_equal(h.bytes, back.bytes, PLAN_HASH_BYTES);
    assert_int_equal(plan_hash_parse("sha256:00", &back), -1);
}

/* Hashes ignore timestamps, owners and mode bits other than exec, but see
 * every byte, name, type and the exec bit. */
static void hash_sees_exactly_what_the_format_says(void **state)
{
    (void)state;
    char *a = th_tmpdir();
    th_write_str(a, "bin/tool", "#!/bin/sh\n");
    th_write_str(a, "share/doc.txt", "doc");
    th_symlink(a, "latest", "bin/tool");
    char base[PLAN_HASH_TEXT_LEN + 1], other[PLAN_HASH_TEXT_LEN + 1];
    hash_dir(a, NULL, 0, base);

    char *p = plan_path_join(a, "share/doc.txt");
    chmod(p, 0600); /* not exec: ignored */
    struct timespec t[2] = {{12345, 0}, {12345, 0}};
    utimensat(AT_FDCWD, p, t, 0);
    hash_dir(a, NULL, 0, other);
    assert_string_equal(base, other);

    chmod(p, 0700); /* exec: seen */
    hash_dir(a, NULL, 0, other);
    assert_string_not_equal(base, other);
    chmod(p, 0644);

    th_write_str(a, "share/doc.txt", "dog");
    hash_dir(a, NULL, 0, other);
    assert_string_not_equal(base, other);
    th_write_str(a, "share/doc.txt", "doc");
    hash_dir(a, NULL, 0, other);
    assert_string_equal(base, other);

    char *l = plan_path_join(a, "latest");
    unlink(l);
    th_symlink(a, "latest", "bin/tool2");
    hash_dir(a, NULL, 0, other);
    assert_string_not_equal(base, other);
    free(l);
    free(p);
    th_rmtree(a);
}

static void hash_is_the_same_on_any_thread_count(void **state)
{
    (void)state;
    char *a = th_tmpdir();
    char name[32], data[64];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "d%d/f%d", i % 7, i);
        snprintf(data, sizeof(data), "file number %d\n", i);
        th_write_str(a, name, data);
    }
    char one[PLAN_HASH_TEXT_LEN + 1], many[PLAN_HASH_TEXT_LEN + 1];
    hash_dir(a, NULL, 1, one);
    hash_dir(a, NULL, 8, many);
    assert_string_equal(one, many);
    th_rmtree(a);
}

static void empty_directory_hashes_the_magic_only(void **state)
{
    (void)state;
    char *a = th_tmpdir();
    char text[PLAN_HASH_TEXT_LEN + 1];
    hash_dir(a, NULL, 0, text);
    /* BLAKE2b-256 of "plan-tree-v1\0" alone, computed independently with
     * Python's hashlib (docs/formats/serialization.md). */
    assert_string_equal(text, "blake2b:03ac22fdaef3fb99611efbb6847112dad45d5571758ba1b346febf2f"
                              "0e6a701f");
    plan_tree_stats st;
    plan_hash h;
    assert_int_equal(plan_store_hash_tree(ctx, a, NULL, 0, &h, &st), 0);
    assert_int_equal(st.files + st.dirs + st.symlinks + st.bytes, 0);
    th_rmtree(a);
}

static void special_files_are_refused(void **state)
{
    (void)state;
    char *a = th_tmpdir();
    char *fifo = plan_path_join(a, "pipe");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    plan_hash h;
    assert_int_equal(plan_store_hash_tree(ctx, a, NULL, 0, &h, NULL), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(ctx), "is a fifo"));
    assert_non_null(strstr(plan_ctx_error(ctx), "pipe"));
    free(fifo);
    th_rmtree(a);
}

/* The mask must find a digest wherever it is, even across the boundary
 * between two reads of a large file. */
static void mask_finds_digests_across_read_boundaries(void **state)
{
    (void)state;
    const char *d1 = "0123456789abcdfghjklmnpqrstvwxyz";
    const char *d2 = "zyxwvtsrqpnmlkjhgfdcba9876543210";
    size_t size = 3 * 256 * 1024;
    char *buf = plan_xmalloc(size);
    char *a = th_tmpdir(), *b = th_tmpdir();
    size_t offsets[] = {0, 256 * 1024 - 10, 2 * 256 * 1024 - 31, size - 32};
    for (int round = 0; round < 2; round++) {
        memset(buf, 'q', size);
        for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++)
            memcpy(buf + offsets[i], round ? d2 : d1, 32);
        th_write(round ? b : a, "big", buf, size, 0644);
        th_symlink(round ? b : a, "link", round ? d2 : d1);
    }
    char ha[PLAN_HASH_TEXT_LEN + 1], hb[PLAN_HASH_TEXT_LEN + 1];
    hash_dir(a, d1, 0, ha);
    hash_dir(b, d2, 0, hb);
    assert_string_equal(ha, hb); /* same tree modulo its own digest */
    hash_dir(a, NULL, 0, ha);
    hash_dir(b, NULL, 0, hb);
    assert_string_not_equal(ha, hb);
    free(buf);
    th_rmtree(a);
    th_rmtree(b);
}

static void digest_depends_on_every_fingerprint_field(void **state)
{
    (void)state;
    plan_hash h;
    memset(h.bytes, 1, sizeof(h.bytes));
    char d[5][PLAN_DIGEST_CHARS + 1];
    plan_store_digest("/s", "n", "1", &h, d[0]);
    plan_store_digest("/t", "n", "1", &h, d[1]);
    plan_store_digest("/s", "m", "1", &h, d[2]);
    plan_store_digest("/s", "n", "2", &h, d[3]);
    h.bytes[0] = 2;
    plan_store_digest("/s", "n", "1", &h, d[4]);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(strlen(d[i]), PLAN_DIGEST_CHARS);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(d[i], d[j]);
    }
}

static void names_and_versions_are_checked(void **state)
{
    (void)state;
    assert_null(plan_store_check_name("hello"));
    assert_null(plan_store_check_name("lib.foo_bar+2-x"));
    assert_non_null(plan_store_check_name(""));
    assert_non_null(plan_store_check_name("-x"));
    assert_non_null(plan_store_check_name("a/b"));
    assert_non_null(plan_store_check_name("a b"));
    assert_null(plan_store_check_version("1.2.3-rc.1+build.5"));
    assert_non_null(plan_store_check_version("1.0/.."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base32_encodes_msb_first),
        cmocka_unit_test(hash_text_round_trips),
        cmocka_unit_test(hash_sees_exactly_what_the_format_says),
        cmocka_unit_test(hash_is_the_same_on_any_thread_count),
        cmocka_unit_test(empty_directory_hashes_the_magic_only),
        cmocka_unit_test(special_files_are_refused),
        cmocka_unit_test(mask_finds_digests_across_read_boundaries),
        cmocka_unit_test(digest_depends_on_every_fingerprint_field),
        cmocka_unit_test(names_and_versions_are_checked),
    };
    return cmocka_run_group_tests_name("store_hash", tests, setup, teardown);
}
