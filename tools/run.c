/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * run.c - spawn a program, optionally capture its standard output, wait
 * for it.  The CLI composes real system tools rather than re-implementing
 * them: `uzram swapon` is `uzram mount` + losetup + mkswap + swapon, with
 * this as the one place that starts a child process.
 */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int run_program(char *const argv[], char *out, size_t outsize, bool quiet)
{
    int pipefd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) {
        if (pipe2(pipefd, O_CLOEXEC) != 0) {
            int e = errno;
            posix_spawn_file_actions_destroy(&fa);
            return -e;
        }
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    } else if (quiet) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (out)
        close(pipefd[1]);
    if (err != 0) {
        if (out)
            close(pipefd[0]);
        return -err;
    }
    if (out) {
        size_t len = 0;
        char sink[256];
        for (;;) {
            char *dst = len + 1 < outsize ? out + len : sink;
            size_t room = len + 1 < outsize ? outsize - 1 - len : sizeof sink;
            ssize_t n = read(pipefd[0], dst, room);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (dst != sink)
                len += (size_t)n;
        }
        close(pipefd[0]);
        if (outsize) {
            out[len] = 0;
            while (len && out[len - 1] == '\n')
                out[--len] = 0;
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

const char *self_exe(void)
{
    static char path[PATH_MAX];
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            return "uzram";
        path[n] = 0;
    }
    return path;
}
