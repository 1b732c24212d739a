/* recipes_int.h - private to recipes/. */
#ifndef PLAN_RECIPES_INT_H
#define PLAN_RECIPES_INT_H

#include "recipes.h"

/* NULL when text is a valid strict SemVer version / npm-style range, else
 * why not (caller frees). */
char *recipe_check_version(const char *text);
char *recipe_check_range(const char *text);
/* Compare two valid versions by SemVer precedence (<0, 0, >0). */
int recipe_version_compare(const char *a, const char *b);
/* Does the valid version satisfy the valid range? */
bool recipe_range_satisfied(const char *range, const char *version);

/* Unpack an archive (or copy a plain file) into dir under the hostile-input
 * rules of docs/formats/recipe.md ("Sources"). */
int recipe_unpack(plan_ctx *ctx, const char *archive, const char *dir, int strip,
                  const char *display);

/* PLAN_CONFIG_<KEY>: the variable every config key is given in a run
 * (upper case, '-' as '_'; caller frees). */
char *recipe_config_env_name(const char *key);
/* The rules of a recipe's config declarations, for manifests read back:
 * a key name, a variable of 'env' (not PLAN_...), and a 'file' (NULL when
 * valid, else what was expected). */
bool recipe_config_key_ok(const char *key);
bool recipe_config_env_ok(const char *env);
const char *recipe_config_file_problem(const char *file);

/* value with $out and ${out} replaced by path (caller frees). */
char *recipe_expand_out(const char *value, const char *path);

#endif
