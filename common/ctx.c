/* The context: last error and the event sink. */
#include "common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct plan_ctx {
    plan_buf error;
    int error_code;
    plan_event_fn events;
    void *events_user;
    /* Worker threads report progress too; the front end's renderer is
     * not expected to be reentrant, so events are serialised here. */
    pthread_mutex_t emit_lock;
};

plan_ctx *plan_ctx_new(void)
{
    plan_ctx *ctx = plan_xcalloc(1, sizeof(*ctx));
    plan_buf_init(&ctx->error);
    pthread_mutex_init(&ctx->emit_lock, NULL);
    return ctx;
}

void plan_ctx_free(plan_ctx *ctx)
{
    if (!ctx)
        return;
    plan_buf_release(&ctx->error);
    pthread_mutex_destroy(&ctx->emit_lock);
    free(ctx);
}

void plan_ctx_set_events(plan_ctx *ctx, plan_event_fn fn, void *user)
{
    ctx->events = fn;
    ctx->events_user = user;
}

static int set_error(plan_ctx *ctx, int code, const char *fmt, va_list ap)
{
    if (!ctx)
        return code; /* a caller that does not want the message */
    plan_buf_reset(&ctx->error);
    plan_buf_vprintf(&ctx->error, fmt, ap);
    ctx->error_code = code;
    return code;
}

int plan_fail(plan_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(ctx, code, fmt, ap);
    va_end(ap);
    return code;
}

int plan_fail_errno(plan_ctx *ctx, int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(ctx, code, fmt, ap);
    va_end(ap);
    if (ctx)
        plan_buf_printf(&ctx->error, ": %s", strerror(errnum));
    return code;
}

int plan_fail_wrap(plan_ctx *ctx, int code, const char *fmt, ...)
{
    if (!ctx)
        return code;
    plan_buf old;
    va_list ap;
    plan_buf_init(&old);
    plan_buf_add(&old, ctx->error.data, ctx->error.len);
    va_start(ap, fmt);
    set_error(ctx, code, fmt, ap);
    va_end(ap);
    if (old.len)
        plan_buf_printf(&ctx->error, ": %s", old.data);
    plan_buf_release(&old);
    return code;
}

const char *plan_ctx_error(const plan_ctx *ctx)
{
    return ctx->error.len ? ctx->error.data : "unknown error";
}

int plan_ctx_error_code(const plan_ctx *ctx)
{
    return ctx->error_code;
}

void plan_ctx_clear_error(plan_ctx *ctx)
{
    plan_buf_reset(&ctx->error);
    ctx->error_code = 0;
}

void plan_emit(plan_ctx *ctx, const plan_event *ev)
{
    if (!ctx || !ctx->events)
        return;
    pthread_mutex_lock(&ctx->emit_lock);
    ctx->events(ev, ctx->events_user);
    pthread_mutex_unlock(&ctx->emit_lock);
}

void plan_emit_phase(plan_ctx *ctx, const char *phase, uint64_t total, bool bytes)
{
    plan_event ev = {.kind = PLAN_EV_PHASE, .phase = phase, .total = total, .bytes = bytes};
    plan_emit(ctx, &ev);
}

void plan_emit_progress(plan_ctx *ctx, const char *phase, uint64_t done, uint64_t total,
                        bool bytes)
{
    plan_event ev = {.kind = PLAN_EV_PROGRESS, .phase = phase, .done = done,
                     .total = total, .bytes = bytes};
    plan_emit(ctx, &ev);
}

void plan_emit_done(plan_ctx *ctx, const char *phase)
{
    plan_event ev = {.kind = PLAN_EV_DONE, .phase = phase};
    plan_emit(ctx, &ev);
}

static void emit_message(plan_ctx *ctx, plan_event_kind kind, const char *fmt, va_list ap)
{
    if (!ctx || !ctx->events)
        return;
    plan_buf msg;
    plan_buf_init(&msg);
    plan_buf_vprintf(&msg, fmt, ap);
    plan_event ev = {.kind = kind, .message = msg.data};
    plan_emit(ctx, &ev);
    plan_buf_release(&msg);
}

void plan_info(plan_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_message(ctx, PLAN_EV_INFO, fmt, ap);
    va_end(ap);
}

void plan_waiting(plan_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_message(ctx, PLAN_EV_WAIT, fmt, ap);
    va_end(ap);
}

void plan_warn(plan_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_message(ctx, PLAN_EV_WARN, fmt, ap);
    va_end(ap);
}
