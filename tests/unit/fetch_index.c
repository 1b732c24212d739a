/* Unit tests for fetch/: reading a registry index (signed by a key made
 * here), and the cache key for remembered publisher checks. */
#include "test_helpers.h"
#include "test_ctx.h"
#include "fetch/fetch.h"

#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>

typedef struct signer {
    char *dir;
    plan_registry reg;
    plan_seckey sec;
} signer;

static void signer_make(signer *s)
{
    s->dir = th_tmpdir();
    memset(&s->reg, 0, sizeof(s->reg));
    s->reg.name = plan_xstrdup("main");
    s->reg.url = plan_xstrdup("http://127.0.0.1:1");
    assert_int_equal(plan_key_generate(ctx, s->dir, "registry", &s->reg.key), 0);
    assert_int_equal(plan_key_load_secret(ctx, s->dir, "registry", &s->sec), 0);
}

static void signer_free(signer *s)
{
    plan_seckey_wipe(&s->sec);
    plan_pubkey_release(&s->reg.key);
    free(s->reg.name);
    free(s->reg.url);
    th_rmtree(s->dir);
}

static json_t *entry(const char *version)
{
    return json_pack("{s:s, s:b}", "version", version, "yanked", false);
}

/* The index of hello holding the given entries (taken), signed. */
static char *signed_index(signer *s, json_t *packages)
{
    json_t *sg = json_pack("{s:s, s:s, s:I, s:I, s:o}", "type", "index", "name", "hello",
                           "version", (json_int_t)1, "expires", (json_int_t)4102444800,
                           "packages", packages);
    char *text = plan_signed_wrap(&s->sec, sg);
    assert_non_null(text);
    return text;
}

static void index_opens_when_every_version_is_once(void **state)
{
    (void)state;
    signer s;
    signer_make(&s);
    char *text = signed_index(&s, json_pack("[o, o]", entry("1.0.0"), entry("1.1.0")));
    json_t *out = NULL;
    assert_int_equal(plan_registry_index_open(ctx, &s.reg, "hello", text, strlen(text), NULL,
                                              &out),
                     0);
    assert_int_equal(json_array_size(json_object_get(out, "packages")), 2);
    json_decref(out);
    free(text);
    signer_free(&s);
}

/* A registry's own signature over an index that lists a version twice is
 * no excuse: an entry is known by its version, so the second could pass on
 * the first one's publisher signature. */
static void index_with_a_version_twice_is_refused(void **state)
{
    (void)state;
    signer s;
    signer_make(&s);
    json_t *forged = entry("1.0.0");
    json_object_set_new(forged, "yanked", json_true());
    char *text = signed_index(&s, json_pack("[o, o, o]", forged, entry("1.0.0"), entry("1.1.0")));
    json_t *out = NULL;
    assert_int_equal(plan_registry_index_open(ctx, &s.reg, "hello", text, strlen(text), NULL,
                                              &out),
                     PLAN_ERR_HOSTILE);
    assert_null(out);
    assert_non_null(strstr(plan_ctx_error(ctx), "lists version 1.0.0 twice"));
    plan_ctx_clear_error(ctx);
    free(text);
    signer_free(&s);
}

static void cache_key_is_made_private_and_replaced_when_open(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    char *file = plan_path_join(dir, "sub/cache-key");
    uint8_t a[PLAN_CACHE_KEY_BYTES], b[PLAN_CACHE_KEY_BYTES], c[PLAN_CACHE_KEY_BYTES];
    assert_int_equal(plan_cache_key_load(ctx, file, a), 0);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 2 * PLAN_CACHE_KEY_BYTES + 1);
    /* the same key next time */
    assert_int_equal(plan_cache_key_load(ctx, file, b), 0);
    assert_memory_equal(a, b, sizeof(a));
    /* open to others: no secret any more, so a new one */
    assert_int_equal(chmod(file, 0644), 0);
    assert_int_equal(plan_cache_key_load(ctx, file, c), 0);
    assert_memory_not_equal(a, c, sizeof(a));
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* malformed: replaced too */
    th_write_str(dir, "sub/cache-key", "not a key\n");
    assert_int_equal(chmod(file, 0600), 0);
    assert_int_equal(plan_cache_key_load(ctx, file, b), 0);
    assert_memory_not_equal(b, c, sizeof(b));
    /* no temporary file is left behind */
    char *sub = plan_path_join(dir, "sub");
    DIR *d = opendir(sub);
    assert_non_null(d);
    size_t entries = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        entries += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1);
    free(sub);
    free(file);
    th_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_opens_when_every_version_is_once),
        cmocka_unit_test(index_with_a_version_twice_is_refused),
        cmocka_unit_test(cache_key_is_made_private_and_replaced_when_open),
    };
    return cmocka_run_group_tests_name("fetch", tests, setup, teardown);
}
