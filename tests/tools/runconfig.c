/* runconfig: what 'plan run' does with a plan's configuration, for the
 * config scenarios (tests/cli/config.bats) while 'plan run' is written.
 *
 *   runconfig ROOT NAME PLAN_PATH CONFIG_DIR [OVERRIDE_FILE]
 *       plan_config_materialise; print "version N", "overridden yes|no",
 *       then every variable as NAME=VALUE, sorted by name; on failure the
 *       library's message on stderr and exit 1 */
#include "../../common/common.h"
#include "../../recipes/recipes.h"
#include "../../store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: runconfig ROOT NAME PLAN_PATH CONFIG_DIR [OVERRIDE_FILE]\n");
        return 2;
    }
    plan_ctx *ctx = plan_ctx_new();
    plan_store *store = NULL;
    plan_run_config rc;
    int code = 0;
    if (plan_store_open(ctx, argv[1], &store) ||
        plan_config_materialise(store, argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL,
                                &rc)) {
        fprintf(stderr, "runconfig: %s\n", plan_ctx_error(ctx));
        code = 1;
    } else {
        printf("version %lld\noverridden %s\n", (long long)rc.version,
               rc.overridden ? "yes" : "no");
        plan_strlist lines;
        plan_strlist_init(&lines);
        for (size_t i = 0; i < rc.env_names.len; i++)
            plan_strlist_take(&lines, plan_xasprintf("%s=%s", rc.env_names.items[i],
                                                     rc.env_values.items[i]));
        plan_strlist_sort(&lines);
        for (size_t i = 0; i < lines.len; i++)
            printf("%s\n", lines.items[i]);
        plan_strlist_release(&lines);
        plan_run_config_release(&rc);
    }
    plan_store_close(store);
    plan_ctx_free(ctx);
    return code;
}
