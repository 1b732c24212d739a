/* Signals: Ctrl-C (and TERM, HUP) during long work set a flag that the
 * libraries poll, so they can stop cleanly and leave nothing behind; and
 * while plan env or plan run waits for its command, the signals sent to
 * plan are passed on to it. */
#include "cli.h"

#include <signal.h>
#include <string.h>

/* The only global state in plan: a signal handler can reach nothing else. */
static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t forward_pid;   /* the command plan waits for, or 0 */
static volatile sig_atomic_t last_signal;   /* received while forwarding, not yet taken */
static volatile sig_atomic_t missed;        /* it came while there was no command to pass it to */

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

/* Forward what was sent to plan itself (kill, a supervisor); signals from
 * the terminal reach the child directly, as it shares our process group. */
static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    last_signal = sig;
    missed = forward_pid <= 0;
    if (forward_pid > 0 && si && si->si_code <= 0)
        kill((pid_t)forward_pid, sig);
}

static const int forwarded[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

void cli_forward_begin(cli_forwarding *f)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = forward;
    /* No SA_RESTART: a supervisor's sleep or wait returns and looks. */
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 4; i++)
        sigaction(forwarded[i], &sa, &f->old[i]);
    last_signal = 0;
}

void cli_forward_to(pid_t pid)
{
    forward_pid = pid;
}

int cli_forward_take(bool *was_missed)
{
    int sig = last_signal;
    if (was_missed)
        *was_missed = sig && missed;
    last_signal = 0;
    missed = 0;
    return sig;
}

void cli_forward_end(cli_forwarding *f)
{
    forward_pid = 0;
    for (size_t i = 0; i < 4; i++)
        sigaction(forwarded[i], &f->old[i], NULL);
}

void cli_child_signals_default(void)
{
    for (size_t i = 0; i < 4; i++)
        signal(forwarded[i], SIG_DFL);
    /* An ignored SIGPIPE (plan run's) would survive exec. */
    signal(SIGPIPE, SIG_DFL);
}
