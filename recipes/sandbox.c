/* The build sandbox: runs in the forked child, before exec.  Private
 * mount, PID, IPC, UTS and network namespaces (and a user namespace when
 * not root); the store read-only except the output; the build tree
 * writable; a private /tmp and /proc.  The network namespace has only a
 * loopback device that is down, so the build has no network at all. */
#include "sandbox.h"
#include "../common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, const char *a, int err)
{
    /* stderr is the build log here: this is the child, not the library. */
    dprintf(2, fmt, a, strerror(err));
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int map_user(uid_t uid, gid_t gid)
{
    char line[64];
    if (write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
        return -1;
    snprintf(line, sizeof(line), "0 %u 1", (unsigned)uid);
    if (write_file("/proc/self/uid_map", line) != 0)
        return -1;
    snprintf(line, sizeof(line), "0 %u 1", (unsigned)gid);
    return write_file("/proc/self/gid_map", line);
}

static int bind(const char *path)
{
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0) {
        say("plan sandbox: cannot bind '%s': %s\n", path, errno);
        return -1;
    }
    return 0;
}

static int make_read_only(const char *path)
{
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
        say("plan sandbox: cannot make '%s' read-only: %s\n", path, errno);
        return -1;
    }
    return 0;
}

static int setup_mounts(const sandbox_spec *sp)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        say("plan sandbox: %s cannot make mounts private: %s\n", "", errno);
        return -1;
    }
    /* A store below /tmp would vanish under the private /tmp: hold on to
     * it and mount it back inside, before anything else is done to it. */
    int keep = -1;
    if (!strncmp(sp->store_dir, "/tmp/", 5))
        keep = open(sp->store_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
        say("plan sandbox: %s no private /tmp: %s\n", "", errno);
    } else if (keep >= 0) {
        char from[64];
        snprintf(from, sizeof(from), "/proc/self/fd/%d", keep);
        if (plan_fs_mkdirs(sp->store_dir, 0755) != 0 ||
            mount(from, sp->store_dir, NULL, MS_BIND | MS_REC, NULL) != 0) {
            say("plan sandbox: cannot keep the store '%s' below the private /tmp: %s\n",
                sp->store_dir, errno);
            return -1;
        }
    }
    if (keep >= 0)
        close(keep);
    /* Order matters: a bind of a path below a read-only mount is read-only
     * too, so the writable holes (the output and the build tree) are bound
     * first, and only then is the store above them made read-only. */
    if (bind(sp->store_dir) != 0 || bind(sp->out) != 0 || bind(sp->build_dir) != 0 ||
        make_read_only(sp->store_dir) != 0)
        return -1;
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        say("plan sandbox: %s no private /proc: %s\n", "", errno);
    return 0;
}

int sandbox_run(const sandbox_spec *sp, char *const argv[], char *const envp[], int status_fd)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (sp->enabled) {
        int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
        if (uid != 0)
            flags |= CLONE_NEWUSER;
        if (unshare(flags) != 0 || (uid != 0 && map_user(uid, gid) != 0)) {
            /* Namespaces are unavailable here: tell the parent, go on. */
            char c = 'N';
            if (write(status_fd, &c, 1) < 0)
                _exit(127);
        } else {
            /* The next child is PID 1 of the new namespace; this process
             * stays behind to report its status. */
            pid_t pid = fork();
            if (pid < 0)
                _exit(127);
            if (pid > 0) {
                close(status_fd); /* only PID 1 reports */
                int st;
                while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                    ;
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            }
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (setup_mounts(sp) != 0)
                _exit(127);
            sethostname("plan-build", 10);
            char c = 'S';
            if (write(status_fd, &c, 1) < 0)
                _exit(127);
        }
    }
    close(status_fd);
    if (chdir(sp->workdir) != 0) {
        say("plan: cannot enter '%s': %s\n", sp->workdir, errno);
        _exit(127);
    }
    umask(022);
    execve(argv[0], argv, envp);
    say("plan: cannot run '%s': %s\n", argv[0], errno);
    _exit(127);
}

int sandbox_probe(int flags)
{
    /* Try the unshare in a throwaway child: a cheap, honest answer. */
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        if (getuid() != 0)
            flags |= CLONE_NEWUSER;
        _exit(unshare(flags) == 0 ? 0 : (errno & 0xff ? errno & 0xff : 1));
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : EPERM;
}

bool sandbox_available(void)
{
    return sandbox_probe(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                         CLONE_NEWNET) == 0;
}

/* ---------- isolation for plan run and plan env ---------- */

static int exit_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The signals a forwarder passes on, and SIGCHLD; blocked before each
 * fork, so that none is lost between the fork and the wait, and taken
 * with sigwaitinfo: no handler, no global. */
static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGCHLD);
}

/* Forward signals to pid, reap every child (PID 1 inherits orphans) until
 * pid is gone, and exit with its status. */
static void forward_and_wait(pid_t pid, const sigset_t *set) __attribute__((noreturn));
static void forward_and_wait(pid_t pid, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            kill(pid, sig);
            continue;
        }
        int st;
        pid_t got;
        while ((got = waitpid(-1, &st, WNOHANG)) > 0)
            if (got == pid)
                _exit(exit_code(st));
        if (got < 0 && errno == ECHILD)
            _exit(127);
    }
}

static bool below_tmp(const char *path)
{
    return !strcmp(path, "/tmp") || !strncmp(path, "/tmp/", 5);
}

/* Shorter paths first, so a parent is bound before what lies below it. */
static int by_length(const void *a, const void *b)
{
    size_t la = strlen(*(const char *const *)a), lb = strlen(*(const char *const *)b);
    return la < lb ? -1 : la > lb;
}

static int isolate_mounts(const sandbox_isolation *iso)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        say("plan: isolation: %s cannot make mounts private: %s\n", "", errno);
        return -1;
    }
    /* What lives below /tmp (a test root, a run root) would vanish under
     * the private /tmp: open it first, bind it back afterwards. */
    size_t n = iso->n_keep + 1;
    const char **paths = plan_xcalloc(n, sizeof(char *));
    int *fds = plan_xcalloc(n, sizeof(int));
    paths[0] = iso->store_dir;
    for (size_t i = 0; i < iso->n_keep; i++)
        paths[i + 1] = iso->keep[i];
    qsort(paths, n, sizeof(char *), by_length);
    for (size_t i = 0; i < n; i++)
        fds[i] = below_tmp(paths[i]) ? open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    int rc = 0;
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
        say("plan: isolation: %s no private /tmp: %s\n", "", errno);
        rc = -1;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        if (fds[i] < 0)
            continue;
        char from[64];
        snprintf(from, sizeof(from), "/proc/self/fd/%d", fds[i]);
        if (plan_fs_mkdirs(paths[i], 0755) != 0 ||
            mount(from, paths[i], NULL, MS_BIND | MS_REC, NULL) != 0) {
            say("plan: isolation: cannot keep '%s' below the private /tmp: %s\n", paths[i],
                errno);
            rc = -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(paths);
    if (!rc && (bind(iso->store_dir) != 0 || make_read_only(iso->store_dir) != 0))
        rc = -1;
    if (!rc && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
        say("plan: isolation: %s no private /proc: %s\n", "", errno);
        rc = -1;
    }
    return rc;
}

int sandbox_isolate(const sandbox_isolation *iso, char *err, size_t errlen)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | (iso->no_network ? CLONE_NEWNET : 0);
    if (uid != 0)
        flags |= CLONE_NEWUSER;
    if (unshare(flags) != 0 || (uid != 0 && map_user(uid, gid) != 0)) {
        snprintf(err, errlen, "cannot create the namespaces: %s", strerror(errno));
        return -1;
    }
    /* The next child is PID 1 of the new namespace; this process stays
     * outside it, to pass signals in and report the status out. */
    sigset_t set, old;
    forwarded_set(&set);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t init = fork();
    if (init < 0) {
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        return -1;
    }
    if (init > 0)
        forward_and_wait(init, &set);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (isolate_mounts(iso) != 0)
        _exit(127);
    /* PID 1 ignores signals it has no handler for, so the command runs as
     * PID 2 and PID 1 forwards to it. */
    pid_t cmd = fork();
    if (cmd < 0)
        _exit(127);
    if (cmd > 0)
        forward_and_wait(cmd, &set);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigprocmask(SIG_SETMASK, &old, NULL); /* the command's mask is plan's */
    return 0;
}
