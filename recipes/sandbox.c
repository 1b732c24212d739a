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

bool sandbox_available(void)
{
    /* Try the same unshare in a throwaway child: a cheap, honest answer. */
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
        if (getuid() != 0)
            flags |= CLONE_NEWUSER;
        _exit(unshare(flags) == 0 ? 0 : 1);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}
