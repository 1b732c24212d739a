/* Unit tests for common/: buffers, string lists, paths, sizes, hex. */
#include "test_helpers.h"

static void buf_grows_and_stays_terminated(void **state)
{
    (void)state;
    plan_buf b;
    plan_buf_init(&b);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 1000; i++)
        plan_buf_addc(&b, 'x');
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[1000], '\0');
    plan_buf_printf(&b, "%d-%s", 42, "y");
    assert_int_equal(b.len, 1004);
    assert_string_equal(b.data + 1000, "42-y");
    plan_buf_truncate(&b, 3);
    assert_string_equal(b.data, "xxx");
    char *owned = plan_buf_detach(&b);
    assert_string_equal(owned, "xxx");
    assert_string_equal(b.data, "");
    free(owned);
    plan_buf_release(&b);
}

static void buf_detach_of_empty_is_owned(void **state)
{
    (void)state;
    plan_buf b;
    plan_buf_init(&b);
    char *s = plan_buf_detach(&b);
    assert_string_equal(s, "");
    free(s); /* must be a real allocation */
}

static void strmap_finds_every_key_through_growth(void **state)
{
    (void)state;
    plan_strmap m;
    plan_strmap_init(&m);
    assert_int_equal(plan_strmap_get(&m, "absent"), -1); /* empty: no table yet */
    char key[32];
    for (size_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "b%03zu", i);
        assert_true(plan_strmap_put(&m, key, i));
    }
    assert_int_equal(m.len, 1000);
    assert_true(m.cap >= 2000); /* never more than half full */
    for (size_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "b%03zu", i);
        assert_int_equal(plan_strmap_get(&m, key), (ssize_t)i);
    }
    assert_int_equal(plan_strmap_get(&m, "b1000"), -1);
    assert_int_equal(plan_strmap_get(&m, ""), -1);
    /* a second put replaces the value and is not new */
    assert_false(plan_strmap_put(&m, "b007", 70));
    assert_int_equal(plan_strmap_get(&m, "b007"), 70);
    assert_int_equal(m.len, 1000);
    assert_true(plan_strmap_put(&m, "", 5)); /* the empty string is a key like any */
    assert_int_equal(plan_strmap_get(&m, ""), 5);
    /* forgotten, then set again: absent in between */
    assert_false(plan_strmap_put(&m, "b008", (size_t)-1));
    assert_int_equal(plan_strmap_get(&m, "b008"), -1);
    assert_true(plan_strmap_put(&m, "b008", 8));
    assert_int_equal(plan_strmap_get(&m, "b008"), 8);
    plan_strmap_release(&m);
    assert_int_equal(plan_strmap_get(&m, "b007"), -1);
}

static void strlist_sorts_bytewise(void **state)
{
    (void)state;
    plan_strlist l;
    plan_strlist_init(&l);
    plan_strlist_add(&l, "b");
    plan_strlist_add(&l, "a/b");
    plan_strlist_add(&l, "a-b");
    plan_strlist_add(&l, "\xc3\xa9");
    plan_strlist_sort(&l);
    assert_string_equal(l.items[0], "a-b");
    assert_string_equal(l.items[1], "a/b");
    assert_string_equal(l.items[2], "b");
    assert_string_equal(l.items[3], "\xc3\xa9"); /* high bytes sort last */
    assert_true(plan_strlist_contains(&l, "b"));
    assert_false(plan_strlist_contains(&l, "c"));
    for (size_t i = 0; i < l.len; i++)
        assert_true(plan_strlist_contains_sorted(&l, l.items[i]));
    assert_false(plan_strlist_contains_sorted(&l, "c"));
    assert_false(plan_strlist_contains_sorted(&l, "a"));
    plan_strlist_release(&l);
    plan_strlist_init(&l);
    assert_false(plan_strlist_contains_sorted(&l, "a")); /* empty: no base at all */
    plan_strlist_release(&l);
}

static void path_absolute_normalises(void **state)
{
    (void)state;
    char *p = plan_path_absolute("/a//b/./c/../d/");
    assert_string_equal(p, "/a/b/d");
    free(p);
    p = plan_path_absolute("/../..");
    assert_string_equal(p, "/");
    free(p);
    p = plan_path_join("/x/", "y");
    assert_string_equal(p, "/x/y");
    free(p);
}

static void link_targets_are_judged_lexically(void **state)
{
    (void)state;
    assert_true(plan_path_link_inside("a/link", "b"));
    assert_true(plan_path_link_inside("a/link", "../b"));
    assert_false(plan_path_link_inside("a/link", "../../b"));
    assert_true(plan_path_link_inside("a/b/link", "../../x/./y"));
    assert_false(plan_path_link_inside("link", ".."));
    assert_true(plan_path_link_inside("link", "x/.."));
    assert_false(plan_path_link_inside("link", "x/../.."));
    assert_false(plan_path_link_inside("link", "/etc/passwd"));
    assert_false(plan_path_link_inside("link", ""));
}

static void sizes_parse_and_format(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(plan_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(plan_parse_size("10M", &v), 0);
    assert_int_equal(v, 10u << 20);
    assert_int_equal(plan_parse_size("1.5GiB", &v), 0);
    assert_int_equal(v, 3u << 29);
    assert_int_equal(plan_parse_size("2KB", &v), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(plan_parse_size("ten", &v), -1);
    assert_int_equal(plan_parse_size("5Q", &v), -1);
    assert_int_equal(plan_parse_size("-1", &v), -1);
    char out[32];
    plan_format_size(512, out, sizeof(out));
    assert_string_equal(out, "512 B");
    plan_format_size(3 << 20, out, sizeof(out));
    assert_string_equal(out, "3.0 MiB");
}

static void hex_round_trips(void **state)
{
    (void)state;
    uint8_t in[4] = {0x00, 0x7f, 0xa5, 0xff}, back[4];
    char text[9];
    plan_hex_encode(in, 4, text);
    assert_string_equal(text, "007fa5ff");
    assert_int_equal(plan_hex_decode(text, back, 4), 0);
    assert_memory_equal(in, back, 4);
    assert_int_equal(plan_hex_decode("007fa5f", back, 4), -1);
    assert_int_equal(plan_hex_decode("007fa5fg", back, 4), -1);
    assert_int_equal(plan_hex_decode("007FA5FF", back, 4), -1); /* lower case only */
}

static void edit_distance_counts_edits(void **state)
{
    (void)state;
    assert_int_equal(plan_edit_distance("store", "store"), 0);
    assert_int_equal(plan_edit_distance("stor", "store"), 1);
    assert_int_equal(plan_edit_distance("sotre", "store"), 2);
    assert_int_equal(plan_edit_distance("", "abc"), 3);
}

static void events(const plan_event *ev, void *user)
{
    int *count = user;
    if (ev->kind == PLAN_EV_WARN && strstr(ev->message, "careful 7"))
        (*count)++;
}

static void ctx_keeps_errors_and_emits(void **state)
{
    (void)state;
    plan_ctx *ctx = plan_ctx_new();
    assert_int_equal(plan_fail(ctx, PLAN_ERR_IO, "cannot open '%s'", "x"), PLAN_ERR_IO);
    assert_string_equal(plan_ctx_error(ctx), "cannot open 'x'");
    plan_fail_wrap(ctx, PLAN_ERR_FAILED, "while adding");
    assert_string_equal(plan_ctx_error(ctx), "while adding: cannot open 'x'");
    assert_int_equal(plan_ctx_error_code(ctx), PLAN_ERR_FAILED);
    plan_fail_errno(ctx, PLAN_ERR_IO, 2, "reading '%s'", "y");
    assert_string_equal(plan_ctx_error(ctx), "reading 'y': No such file or directory");
    int count = 0;
    plan_ctx_set_events(ctx, events, &count);
    plan_warn(ctx, "careful %d", 7);
    assert_int_equal(count, 1);
    plan_ctx_free(ctx);
}

static void rmtree_removes_read_only_trees(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    th_write_str(dir, "a/b/c.txt", "x");
    char *a = plan_path_join(dir, "a"), *b = plan_path_join(dir, "a/b");
    chmod(b, 0555);
    chmod(a, 0555);
    assert_int_equal(plan_fs_rmtree(a), 0);
    struct stat st;
    assert_int_not_equal(lstat(a, &st), 0);
    assert_int_equal(plan_fs_rmtree(a), 0); /* missing is fine */
    free(a);
    free(b);
    th_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_grows_and_stays_terminated),
        cmocka_unit_test(buf_detach_of_empty_is_owned),
        cmocka_unit_test(strlist_sorts_bytewise),
        cmocka_unit_test(strmap_finds_every_key_through_growth),
        cmocka_unit_test(path_absolute_normalises),
        cmocka_unit_test(link_targets_are_judged_lexically),
        cmocka_unit_test(sizes_parse_and_format),
        cmocka_unit_test(hex_round_trips),
        cmocka_unit_test(edit_distance_counts_edits),
        cmocka_unit_test(ctx_keeps_errors_and_emits),
        cmocka_unit_test(rmtree_removes_read_only_trees),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
