/* Rendering: events to progress bars and messages, errors, JSON. */
#include "cli.h"
#include "realise.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_clear_progress(cli *c)
{
    if (c->progress.drawn) {
        fputs("\r\033[K", stderr);
        c->progress.drawn = false;
    }
}

static void draw_bar(cli *c)
{
    progress_state *p = &c->progress;
    if (!p->total && !p->bytes) {
        /* Work of unknown size (a build): a status line, not a bar. */
        fprintf(stderr, "\r\033[K%s ... %llu lines of output, %.0f s", p->phase,
                (unsigned long long)p->done, now_seconds() - p->started);
        fflush(stderr);
        p->drawn = true;
        return;
    }
    char done[24], total[24];
    int width = 30;
    int filled = p->total ? (int)((double)p->done / (double)p->total * width) : 0;
    if (filled > width)
        filled = width;
    if (p->bytes) {
        plan_format_size(p->done, done, sizeof(done));
        plan_format_size(p->total, total, sizeof(total));
    } else {
        snprintf(done, sizeof(done), "%llu", (unsigned long long)p->done);
        snprintf(total, sizeof(total), "%llu", (unsigned long long)p->total);
    }
    fprintf(stderr, "\r\033[K%-10s [", p->phase);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : ' ', stderr);
    fprintf(stderr, "] %3d%% %s / %s", p->total ? (int)(100.0 * (double)p->done / (double)p->total) : 0,
            done, total);
    fflush(stderr);
    p->drawn = true;
}

void cli_render_event(const plan_event *ev, void *user)
{
    cli *c = user;
    progress_state *p = &c->progress;
    switch (ev->kind) {
    case PLAN_EV_PHASE:
        snprintf(p->phase, sizeof(p->phase), "%s", ev->phase);
        p->done = 0;
        p->total = ev->total;
        p->bytes = ev->bytes;
        p->started = now_seconds();
        p->last_draw = 0;
        if (c->verbose && !c->tty) {
            char size[24];
            plan_format_size(ev->total, size, sizeof(size));
            if (ev->bytes)
                fprintf(stderr, "plan: %s %s\n", ev->phase, size);
            else if (ev->total)
                fprintf(stderr, "plan: %s %llu items\n", ev->phase,
                        (unsigned long long)ev->total);
            else
                fprintf(stderr, "plan: %s\n", ev->phase);
        }
        break;
    case PLAN_EV_PROGRESS: {
        p->done = ev->done;
        p->total = ev->total;
        if (!c->tty || c->quiet)
            break;
        double t = now_seconds();
        /* Only long work gets a bar, and at most ten redraws a second. */
        if (t - p->started < 0.3 || t - p->last_draw < 0.1)
            break;
        p->last_draw = t;
        draw_bar(c);
        break;
    }
    case PLAN_EV_DONE:
        cli_clear_progress(c);
        break;
    case PLAN_EV_INFO:
        if (c->verbose) {
            cli_clear_progress(c);
            fprintf(stderr, "plan: %s\n", ev->message);
        }
        break;
    case PLAN_EV_WAIT:
        /* Said unless -q: otherwise a wait looks like a hang. */
        if (!c->quiet) {
            cli_clear_progress(c);
            fprintf(stderr, "plan: %s\n", ev->message);
        }
        break;
    case PLAN_EV_LOG:
        cli_clear_progress(c);
        fprintf(stderr, "%s\n", ev->message);
        break;
    case PLAN_EV_WARN:
        cli_clear_progress(c);
        fprintf(stderr, "%splan: warning:%s %s\n", c->color ? "\033[33m" : "",
                c->color ? "\033[0m" : "", ev->message);
        break;
    }
}

static void print_error(cli *c, const char *msg)
{
    cli_clear_progress(c);
    fprintf(stderr, "%splan: error:%s %s\n", c->color ? "\033[31m" : "",
            c->color ? "\033[0m" : "", msg);
}

int cli_fail(cli *c)
{
    print_error(c, plan_ctx_error(c->ctx));
    return EXIT_FAILURE_;
}

int cli_error(cli *c, const char *fmt, ...)
{
    plan_buf b;
    va_list ap;
    plan_buf_init(&b);
    va_start(ap, fmt);
    plan_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    print_error(c, b.data);
    plan_buf_release(&b);
    return EXIT_FAILURE_;
}

int cli_usage(cli *c, const command *cmd, const char *fmt, ...)
{
    plan_buf b;
    va_list ap;
    plan_buf_init(&b);
    va_start(ap, fmt);
    plan_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    cli_clear_progress(c);
    fprintf(stderr, "plan: %s\n", b.data);
    if (cmd) {
        bool is_store_sub = cmd >= plan_store_commands &&
                            cmd < plan_store_commands + plan_store_command_count;
        fprintf(stderr, "plan: see 'plan %s%s --help'\n", is_store_sub ? "store " : "",
                cmd->name);
    }
    plan_buf_release(&b);
    return EXIT_USAGE;
}

void cli_print_help(const command *cmd)
{
    fputs(cmd->help, stdout);
}

bool cli_wants_help(const command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli_print_help(cmd);
            return true;
        }
    }
    return false;
}

void cli_print_json(json_t *json)
{
    char *s = json_dumps(json, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(json);
}

/* Read the configuration file, once: 0 (no file is an empty
 * configuration), or its error, on the context and not yet reported. */
static int config_read(cli *c)
{
    if (c->config_read)
        return 0;
    char *file = cli_config_file(c);
    int r = plan_config_load(c->ctx, file, &c->config);
    free(file);
    if (r == PLAN_ERR_NOT_FOUND) {
        plan_ctx_clear_error(c->ctx);
        c->config = NULL;
        r = 0;
    }
    c->config_read = r == 0;
    return r;
}

int cli_config(cli *c, const plan_project **out)
{
    if (config_read(c))
        return cli_fail(c);
    *out = c->config;
    return EXIT_OK;
}

const plan_project *cli_config_quiet(cli *c)
{
    if (config_read(c))
        plan_ctx_clear_error(c->ctx);
    return c->config_read ? c->config : NULL;
}

/* Deferred unless the configuration asks for more: see
 * docs/formats/store-path.md, "Durability". */
static plan_store_options store_options(const plan_project *cfg)
{
    bool immediate = cfg && cfg->durability && !strcmp(cfg->durability, "immediate");
    return (plan_store_options){
        .durability = immediate ? PLAN_DURABILITY_IMMEDIATE : PLAN_DURABILITY_DEFERRED};
}

bool cli_flushes(cli *c)
{
    return store_options(cli_config_quiet(c)).durability == PLAN_DURABILITY_IMMEDIATE;
}

int cli_open_store(cli *c, plan_store **out)
{
    const plan_project *cfg = NULL;
    if (cli_config(c, &cfg))
        return EXIT_FAILURE_;
    plan_store_options o = store_options(cfg);
    if (plan_store_open_with(c->ctx, c->root, &o, out))
        return cli_fail(c);
    return 0;
}

int cli_open_store_quietly(cli *c, plan_store **out)
{
    plan_store_options o = store_options(cli_config_quiet(c));
    return plan_store_open_with(c->ctx, c->root, &o, out);
}

json_t *cli_path_info_json(const plan_path_info *info)
{
    json_t *refs = json_array();
    for (size_t i = 0; i < info->references.len; i++)
        json_array_append_new(refs, json_string(info->references.items[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "path", info->path,
                     "name", info->name, "version", info->version, "digest", info->digest,
                     "content_hash", info->content_hash, "size", (json_int_t)info->size,
                     "closure_size", (json_int_t)info->closure_size, "registered",
                     (json_int_t)info->registered, "references", refs);
}
