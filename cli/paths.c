/* Where things live for the front end: cache, logs, GC roots. */
#include "cli.h"

#include <stdlib.h>

char *cli_cache_dir(const cli *c)
{
    /* An explicit root holds everything, so tests stay self-contained. */
    if (c->root_explicit)
        return plan_path_join(c->root, "cache");
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg == '/')
        return plan_path_join(xdg, "plan");
    const char *home = getenv("HOME");
    return plan_xasprintf("%s/.cache/plan", home && *home ? home : "/tmp");
}

char *cli_log_dir(const cli *c)
{
    return plan_path_join(c->root, "var/log/builds");
}

int cli_parse_threads(cli *c, const command *cmd, const char *text, long *out)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (*end || end == text || n < 1 || n > 64)
        return cli_usage(c, cmd, "--threads wants a number from 1 to 64, not '%s'", text);
    *out = n;
    return 0;
}
