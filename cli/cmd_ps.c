/* plan ps [--json]: the live run roots of this root. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int cmd_ps(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc > 1)
        return cli_usage(c, cmd, "'plan ps' takes no arguments");
    plan_store *store = NULL;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    plan_session *list = NULL;
    size_t n = 0;
    if (plan_store_sessions(store, &list, &n)) {
        plan_store_close(store);
        return cli_fail(c);
    }
    json_t *arr = c->json ? json_array() : NULL;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        const plan_session *s = &list[i];
        if (!s->live || !s->runroot)
            continue;
        shown++;
        if (arr) {
            json_t *plans = json_array();
            for (size_t k = 0; k < s->plans.len; k++)
                json_array_append_new(plans, json_string(s->plans.items[k]));
            json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s, s:s?, s:o}", "id", s->id,
                                                 "pid", (json_int_t)s->pid, "started",
                                                 (json_int_t)s->started, "run_root", s->runroot,
                                                 "command", s->command, "plans", plans));
            continue;
        }
        if (shown == 1)
            printf("%-16s %7s  %-19s  %-30s %s\n", "ID", "PID", "STARTED", "PLANS", "COMMAND");
        char when[32];
        time_t t = (time_t)s->started;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
        plan_buf plans;
        plan_buf_init(&plans);
        for (size_t k = 0; k < s->plans.len; k++)
            plan_buf_printf(&plans, "%s%s", k ? "," : "", s->plans.items[k]);
        printf("%-16s %7ld  %-19s  %-30s %s\n", s->id, s->pid, when, plans.data,
               s->command ? s->command : "");
        plan_buf_release(&plans);
    }
    if (arr)
        cli_print_json(json_pack("{s:o}", "run_roots", arr));
    else if (!shown && !c->quiet)
        fprintf(stderr, "plan: no live run roots\n");
    plan_sessions_free(list, n);
    plan_store_close(store);
    return EXIT_OK;
}
