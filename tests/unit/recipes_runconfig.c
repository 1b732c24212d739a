/* Unit tests for a plan's configuration against its schema: reading the
 * schema from a manifest (hostile ones refused), which store path gives a
 * name its schema, validation messages, and materialising a run. */
#include "test_helpers.h"
#include "recipes/recipes.h"
#include "store_fixture.h"

static const char schema_json[] =
    "{\"format\": \"plan-manifest-v1\", \"config\": {"
    "\"port\": {\"type\": \"int\", \"default\": \"8080\", \"env\": \"PORT\"},"
    "\"level\": {\"type\": \"string\", \"allowed\": [\"debug\", \"info\"], \"default\": \"info\"},"
    "\"motd\": {\"type\": \"string\", \"default\": \"hi\", \"file\": \"etc/motd\"},"
    "\"token\": {\"type\": \"string\", \"secret\": true},"
    "\"debug\": {\"type\": \"bool\", \"default\": \"false\"}}}";

/* A store path name-version whose manifest is text. */
static char *add_plan(fixture *f, const char *name, const char *version, const char *manifest)
{
    char *dir = plan_xasprintf("%s/%s-%s", f->src, name, version);
    th_write_str(dir, ".plan/manifest.json", manifest);
    plan_add_opts o = {.dir = dir, .name = name, .version = version};
    plan_add_result r;
    if (plan_store_add(f->store, &o, &r))
        fail_msg("add: %s", plan_ctx_error(f->ctx));
    free(dir);
    return r.path;
}

static const char *env_of(const plan_run_config *c, const char *name)
{
    ssize_t i = plan_strlist_index(&c->env_names, name);
    return i >= 0 ? c->env_values.items[i] : NULL;
}

static char *read_text(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    plan_buf b;
    plan_buf_init(&b);
    assert_int_equal(plan_fs_read_file(p, 1 << 20, &b), 0);
    free(p);
    return plan_buf_detach(&b);
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char *p = plan_path_join(dir, rel);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    return st.st_mode & 0777;
}

static void schema_is_read_sorted_and_checked(void **state)
{
    fixture *f = *state;
    char *p = add_plan(f, "svc", "1.0.0", schema_json);
    plan_config_schema s;
    assert_int_equal(plan_config_schema_load(f->ctx, p, &s), 0);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.keys[0].key, "debug");
    const plan_recipe_config *k = plan_config_schema_key(&s, "level");
    assert_int_equal(k->allowed.len, 2);
    assert_true(plan_config_schema_key(&s, "token")->secret);
    assert_string_equal(plan_config_schema_key(&s, "motd")->file, "etc/motd");
    assert_null(plan_config_schema_key(&s, "nope"));
    /* validation names the key and what was expected */
    assert_int_equal(plan_config_validate(f->ctx, "svc", &s, "port", "x", false), PLAN_ERR_INVALID);
    assert_string_equal(plan_ctx_error(f->ctx),
                        "config key 'port' of 'svc': expected an integer for type int, found 'x'");
    assert_int_equal(plan_config_validate(f->ctx, "svc", &s, "level", "hunter2", true),
                     PLAN_ERR_INVALID);
    assert_null(strstr(plan_ctx_error(f->ctx), "hunter2"));
    assert_int_equal(plan_config_validate(f->ctx, "svc", &s, "prot", "1", false), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "did you mean 'port'?"));
    assert_int_equal(plan_config_validate(f->ctx, "svc", &s, "level", "debug", false), 0);
    plan_ctx_clear_error(f->ctx);
    plan_config_schema_release(&s);
    free(p);
}

/* Generated hostile declarations: each is refused when read back. */
static void hostile_manifests_are_refused(void **state)
{
    fixture *f = *state;
    const char *decls[] = {
        "\"k\": {\"type\": \"string\", \"file\": \"../../etc/passwd\"}",
        "\"k\": {\"type\": \"string\", \"file\": \"/etc/passwd\"}",
        "\"k\": {\"type\": \"string\", \"file\": \"a//b\"}",
        "\"k\": {\"type\": \"string\", \"file\": \"config.json\"}",
        "\"k\": {\"type\": \"string\", \"file\": \"secrets/x\"}",
        "\"k\": {\"type\": \"string\", \"env\": \"PLAN_RUN_CONFIG\"}",
        "\"k\": {\"type\": \"string\", \"env\": \"A=B\"}",
        "\"k\": {\"type\": \"float\"}",
        "\"k\": {\"type\": \"int\", \"default\": \"ten\"}",
        "\"k\": {\"type\": \"int\", \"allowed\": [\"1\", \"x\"]}",
        "\"k\": {\"type\": \"string\", \"allowed\": \"a\"}",
        "\"../k\": {\"type\": \"string\"}",
        "\"k/x\": {\"type\": \"string\"}",
        "\"k\": [1]",
    };
    for (size_t i = 0; i < sizeof(decls) / sizeof(decls[0]); i++) {
        char *m = plan_xasprintf("{\"config\": {%s}}", decls[i]);
        char *version = plan_xasprintf("1.0.%zu", i);
        char *p = add_plan(f, "bad", version, m);
        plan_config_schema s;
        int rc = plan_config_schema_load(f->ctx, p, &s);
        if (rc != PLAN_ERR_CORRUPT)
            fail_msg("accepted %s", decls[i]);
        assert_non_null(strstr(plan_ctx_error(f->ctx), "declares config key"));
        plan_ctx_clear_error(f->ctx);
        free(m);
        free(version);
        free(p);
    }
    /* no manifest at all: an empty schema */
    char *dir = plan_xasprintf("%s/bare", f->src);
    th_write_str(dir, "x", "x");
    plan_add_opts o = {.dir = dir, .name = "bare", .version = "1.0"};
    plan_add_result r;
    assert_int_equal(plan_store_add(f->store, &o, &r), 0);
    plan_config_schema s;
    assert_int_equal(plan_config_schema_load(f->ctx, r.path, &s), 0);
    assert_int_equal(s.n, 0);
    plan_config_schema_release(&s);
    free(r.path);
    free(dir);
}

static void the_highest_version_gives_the_schema(void **state)
{
    fixture *f = *state;
    char *a = add_plan(f, "svc", "1.2.0", schema_json);
    char *b = add_plan(f, "svc", "1.10.0", "{\"config\": {}}"); /* SemVer, not text order */
    char *c = add_plan(f, "svc-extra", "9.0.0", "{\"config\": {}}");
    char *path = NULL;
    assert_int_equal(plan_config_find_plan(f->store, "svc", NULL, &path), 0);
    assert_string_equal(path, b);
    free(path);
    assert_int_equal(plan_config_find_plan(f->store, "svc", "no-such-profile", &path), 0);
    assert_string_equal(path, b);
    free(path);
    assert_int_equal(plan_config_find_plan(f->store, "sv", NULL, &path), PLAN_ERR_NOT_FOUND);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "--path"));
    plan_ctx_clear_error(f->ctx);
    free(a);
    free(b);
    free(c);
}

static void materialise_writes_what_the_schema_declares(void **state)
{
    fixture *f = *state;
    char *p = add_plan(f, "svc", "1.0.0", schema_json);
    char *dir = plan_path_join(f->run, "config");
    plan_run_config rc;
    /* token is required */
    assert_int_equal(plan_config_materialise(f->store, "svc", p, dir, NULL, &rc), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "plan config set svc token VALUE --secret"));
    plan_ctx_clear_error(f->ctx);
    int64_t v;
    assert_int_equal(plan_store_config_set(f->store, "svc", "token", "s3cret", true, &v), 0);
    assert_int_equal(plan_store_config_set(f->store, "svc", "port", "9000", false, &v), 0);
    assert_int_equal(plan_config_materialise(f->store, "svc", p, dir, NULL, &rc), 0);
    assert_int_equal(rc.version, 2);
    assert_false(rc.overridden);
    assert_string_equal(env_of(&rc, "PORT"), "9000");
    assert_string_equal(env_of(&rc, "PLAN_CONFIG_PORT"), "9000");
    assert_string_equal(env_of(&rc, "PLAN_CONFIG_LEVEL"), "info");
    assert_null(env_of(&rc, "PLAN_CONFIG_TOKEN"));
    assert_string_equal(env_of(&rc, "PLAN_RUN_CONFIG"), dir);
    assert_string_equal(env_of(&rc, "PLAN_RUN_CONFIG_VERSION"), "2");
    plan_run_config_release(&rc);
    assert_int_equal(mode_of(dir, "."), 0700);
    assert_int_equal(mode_of(dir, "secrets/token"), 0600);
    char *t = read_text(dir, "secrets/token");
    assert_string_equal(t, "s3cret");
    free(t);
    t = read_text(dir, "etc/motd");
    assert_string_equal(t, "hi");
    free(t);
    t = read_text(dir, "config.json");
    assert_non_null(strstr(t, "\"port\": 9000"));
    assert_non_null(strstr(t, "\"debug\": false"));
    assert_null(strstr(t, "s3cret"));
    free(t);
    /* an override wins for the run, and is checked */
    char *ov = plan_path_join(f->run, "o.yaml");
    th_write_str(f->run, "o.yaml", "level: debug\nport: 1\n");
    assert_int_equal(plan_config_materialise(f->store, "svc", p, dir, ov, &rc), 0);
    assert_true(rc.overridden);
    assert_string_equal(env_of(&rc, "PORT"), "1");
    assert_string_equal(env_of(&rc, "PLAN_CONFIG_LEVEL"), "debug");
    plan_run_config_release(&rc);
    th_write_str(f->run, "o.yaml", "level: trace\n");
    assert_int_equal(plan_config_materialise(f->store, "svc", p, dir, ov, &rc), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "expected one of 'debug', 'info'"));
    plan_ctx_clear_error(f->ctx);
    th_write_str(f->run, "o.yaml", "a: &x 1\nb: *x\n");
    assert_int_equal(plan_config_materialise(f->store, "svc", p, dir, ov, &rc), PLAN_ERR_INVALID);
    plan_ctx_clear_error(f->ctx);
    /* a stored value the plan no longer accepts */
    char *q = add_plan(f, "svc", "2.0.0",
                       "{\"config\": {\"port\": {\"type\": \"int\", \"allowed\": [\"80\"]}}}");
    assert_int_equal(plan_config_materialise(f->store, "svc", q, dir, NULL, &rc), PLAN_ERR_INVALID);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "the value set in version 2 no longer fits"));
    plan_ctx_clear_error(f->ctx);
    free(q);
    free(ov);
    free(dir);
    free(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fixture_setup, store_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(schema_is_read_sorted_and_checked),
        T(hostile_manifests_are_refused),
        T(the_highest_version_gives_the_schema),
        T(materialise_writes_what_the_schema_declares),
    };
    return cmocka_run_group_tests_name("recipes runconfig", tests, NULL, NULL);
}
