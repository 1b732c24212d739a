/* Signals: Ctrl-C (and TERM, HUP) during long work set a flag that the
 * libraries poll, so they can stop cleanly and leave nothing behind. */
#include "cli.h"

#include <signal.h>
#include <string.h>

/* The one piece of global state in plan: a signal handler can reach
 * nothing else. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

volatile sig_atomic_t *cli_catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking wait returns EINTR and sees the flag. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return &interrupted;
}
