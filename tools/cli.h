/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cli.h - the subcommands of the `uzram` command line tool.
 * tools/main.c dispatches argv[1] to one of these; each returns the
 * process exit code and prints its own errors to stderr.
 */
#ifndef UZRAM_CLI_H
#define UZRAM_CLI_H

int cmd_bench(int argc, char **argv);    /* tools/bench.c   */
int cmd_bench_alloc(int argc, char **argv); /* tools/bench_alloc.c */
int cmd_bench_pool(int argc, char **argv); /* tools/bench_pool.c */
int cmd_capture(int argc, char **argv);  /* tools/capture.c */
int cmd_mount(int argc, char **argv);    /* tools/mount.c   */
int cmd_umount(int argc, char **argv);   /* tools/mount.c   */
int cmd_pool(int argc, char **argv);     /* tools/mount.c   */
int cmd_clone(int argc, char **argv);    /* tools/mount.c   */
int cmd_stat(int argc, char **argv);     /* tools/stat.c    */
int cmd_swapon(int argc, char **argv);   /* tools/swapon.c  */
int cmd_swapoff(int argc, char **argv);  /* tools/swapon.c  */
int cmd_train(int argc, char **argv);    /* tools/train.c   */
int cmd_up(int argc, char **argv);       /* tools/up.c      */
int cmd_down(int argc, char **argv);     /* tools/up.c      */

/* Sizes ("512M", "1G") are parsed with uzram_parse_size() (uzram.h),
 * the same parser the attribute files use. */

#endif
