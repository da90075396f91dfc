/*
 * cli.h - the subcommands of the `uzram` command line tool.
 * tools/main.c dispatches argv[1] to one of these; each returns the
 * process exit code and prints its own errors to stderr.
 */
#ifndef UZRAM_CLI_H
#define UZRAM_CLI_H

int uz_cmd_bench(int argc, char **argv);    /* tools/bench.c   */
int uz_cmd_bench_alloc(int argc, char **argv); /* tools/bench_alloc.c */
int uz_cmd_bench_pool(int argc, char **argv); /* tools/bench_pool.c */
int uz_cmd_capture(int argc, char **argv);  /* tools/capture.c */
int uz_cmd_mount(int argc, char **argv);    /* tools/mount.c   */
int uz_cmd_umount(int argc, char **argv);   /* tools/mount.c   */
int uz_cmd_pool(int argc, char **argv);     /* tools/mount.c   */
int uz_cmd_clone(int argc, char **argv);    /* tools/mount.c   */
int uz_cmd_stat(int argc, char **argv);     /* tools/stat.c    */
int uz_cmd_swapon(int argc, char **argv);   /* tools/swapon.c  */
int uz_cmd_swapoff(int argc, char **argv);  /* tools/swapon.c  */
int uz_cmd_up(int argc, char **argv);       /* tools/up.c      */
int uz_cmd_down(int argc, char **argv);     /* tools/up.c      */

/* Sizes ("512M", "1G") are parsed with uzram_parse_size() (uzram.h),
 * the same parser the attribute files use. */

#endif
