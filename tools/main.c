/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * main.c - the command line tool `uzram`: main() dispatches to one
 * subcommand, each in a file of its own (cli.h).
 *
 *   uzram bench    [options] PAGEFILE...   benchmark against kernel zram
 *   uzram bench-alloc [options] PAGEFILE   allocator cost against population
 *   uzram bench-pool [options] PAGEFILE... what a clone costs
 *   uzram capture  PID OUT                 save a process's resident pages
 *   uzram mount    DIR [options]           serve a device as a FUSE file
 *   uzram pool     DIR [options]           serve a pool of devices (zram-control)
 *   uzram clone    DIR/zramN               a copy-on-write clone in its pool
 *   uzram umount   DIR                     stop a mount or a pool
 *   uzram stat     [DIR...]                list running devices
 *   uzram train    DIR|PAGEFILE -o FILE    a zstd dictionary from a device's pages
 *   uzram swapon   [options]               a uzram swap device in one step
 *   uzram swapoff  [DEVICE...]             take it down
 *   uzram up NAME / uzram down NAME        a device of /etc/uzram.conf
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "uzram.h"

#ifndef UZ_VERSION   /* set by the build (CMakeLists.txt) */
#define UZ_VERSION UZRAM_VERSION_STRING
#endif

/* The commands, and what runs them. */
static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"bench", cmd_bench},
    {"bench-alloc", cmd_bench_alloc},
    {"bench-pool", cmd_bench_pool},
    {"capture", cmd_capture},
#ifdef UZ_HAVE_FUSE
    {"mount", cmd_mount},
    {"umount", cmd_umount},
    {"pool", cmd_pool},
    {"clone", cmd_clone},
    {"swapon", cmd_swapon},
    {"swapoff", cmd_swapoff},
    {"up", cmd_up},
    {"down", cmd_down},
#endif
    {"stat", cmd_stat},
    {"train", cmd_train},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Short usage: the commands.  Long (--help): every command's own --help,
 * in full, so that no option can be missing from it. */
static int usage(FILE *f, bool full)
{
    fprintf(f, "uzram %s - compressed RAM block store (zram in user space)\n"
               "usage: uzram COMMAND [options]   (uzram COMMAND --help for one)\n"
               "commands:", UZ_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, " %s", commands[i].name);
    fprintf(f, "\n");
    if (!full)
        return 2;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char *argv[] = {(char *)commands[i].name, "--help", NULL};
        printf("\n");
        fflush(stdout);
        /* a command may print its usage on stderr: bring it here */
        int saved = dup(2);
        dup2(1, 2);
        commands[i].run(2, argv);
        fflush(stdout);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, false);
    const char *cmd = argv[1];
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
        return usage(stdout, true);
    if (!strcmp(cmd, "--version")) {
        /* the build's version (CMake's project(VERSION), which the manual
         * pages carry too); the library's, were it another */
        if (strcmp(UZ_VERSION, uzram_version()) != 0)
            printf("uzram %s (library %s)\n", UZ_VERSION, uzram_version());
        else
            printf("uzram %s\n", UZ_VERSION);
        return 0;
    }
    fprintf(stderr, "uzram: unknown command '%s'\n", cmd);
    return usage(stderr, false);
}
