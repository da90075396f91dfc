/*
 * uzram.c - the command line tool: dispatches to one subcommand.
 *
 *   uzram bench    [options] PAGEFILE...   benchmark against kernel zram
 *   uzram bench-alloc [options] PAGEFILE   allocator cost against population
 *   uzram capture  PID OUT                 save a process's resident pages
 *   uzram mount    DIR [options]           serve a device as a FUSE file
 *   uzram umount   DIR                     stop a mount
 *   uzram stat     [DIR...]                list running devices
 *   uzram swapon   [options]               a uzram swap device in one step
 *   uzram swapoff  [DEVICE...]             take it down
 *   uzram up NAME / uzram down NAME        a device of /etc/uzram.conf
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "uzram.h"

static int usage(FILE *f)
{
    fprintf(f,
            "uzram %s - compressed RAM block store (zram in user space)\n"
            "usage:\n"
            "  uzram bench [--algorithm A] [--level N] [--allocator A[,B..]] [--threads N]\n"
            "              [--churn R] [--seed S] [--kernel-zram] [--json] PAGEFILE...\n"
            "  uzram bench-alloc [--allocator A[,B..]] [--max-objects N] [--ops N] PAGEFILE\n"
            "  uzram capture PID OUT\n"
            "  uzram mount DIR [--size SIZE] [--algorithm A] [--level N] [--allocator Z]\n"
            "              [--mem-limit SIZE] [-f]\n"
            "  uzram umount DIR\n"
            "  uzram stat [--output COLUMNS | --output-all] [--bytes] [--raw] [--noheadings]\n"
            "             [--json] [DIR...]\n"
            "  uzram swapon [--size SIZE | --percent P] [--algorithm A] [--priority N]\n"
            "               [--name NAME] [--options LIST] [--attr NAME=VALUE]... [mount options]\n"
            "  uzram swapoff [DEVICE...]\n"
            "  uzram up NAME\n"
            "  uzram down NAME\n",
            uzram_version());
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "bench"))
        return uz_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench-alloc"))
        return uz_cmd_bench_alloc(argc - 1, argv + 1);
    if (!strcmp(cmd, "capture"))
        return uz_cmd_capture(argc - 1, argv + 1);
#ifdef UZ_HAVE_FUSE
    if (!strcmp(cmd, "mount"))
        return uz_cmd_mount(argc - 1, argv + 1);
    if (!strcmp(cmd, "umount"))
        return uz_cmd_umount(argc - 1, argv + 1);
    if (!strcmp(cmd, "swapon"))
        return uz_cmd_swapon(argc - 1, argv + 1);
    if (!strcmp(cmd, "swapoff"))
        return uz_cmd_swapoff(argc - 1, argv + 1);
    if (!strcmp(cmd, "up"))
        return uz_cmd_up(argc - 1, argv + 1);
    if (!strcmp(cmd, "down"))
        return uz_cmd_down(argc - 1, argv + 1);
#endif
    if (!strcmp(cmd, "stat"))
        return uz_cmd_stat(argc - 1, argv + 1);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
        return usage(stdout);
    if (!strcmp(cmd, "--version")) {
        printf("uzram %s\n", uzram_version());
        return 0;
    }
    fprintf(stderr, "uzram: unknown command '%s'\n", cmd);
    return usage(stderr);
}
