/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * plot.c - the benchmark as a picture: a gnuplot script written from the
 * measured figures, then run (Debian's gnuplot, the svg terminal).
 *
 * Each page file gets a row of two panels:
 *   left   MiB held after the fill (round 0) and after each churn round:
 *          every uzram series' footprint (all it holds) and its compressed
 *          bytes (dashed), kernel zram's mem_used_total (its allocator
 *          only: the kernel's slot table and metadata are not counted);
 *   right  fill write and read speed, MB/s, one pair of bars per series.
 * The data sit in the script as inline data blocks, so the .gp file left
 * beside the .svg is the whole record of what was drawn.
 */
#define _GNU_SOURCE
#include "plot.h"
#include "run.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s inside a gnuplot double-quoted string */
static void gp_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void memory_panel(FILE *f, const struct plot_file *pf, int i)
{
    int rounds = 0;
    for (int k = 0; k < pf->ns; k++)
        if (pf->s[k].footprint && pf->s[k].rounds > rounds)
            rounds = pf->s[k].rounds;
    fprintf(f, "$mem%d << EOD\n", i);
    for (int r = 0; r <= rounds; r++) {
        fprintf(f, "%d", r);
        for (int k = 0; k < pf->ns; k++) {
            const struct plot_series *s = &pf->s[k];
            if (s->footprint && r <= s->rounds)
                fprintf(f, " %.3f %.3f", (double)s->footprint[r] / 1048576.0,
                        (double)s->compr[r] / 1048576.0);
            else
                fprintf(f, " NaN NaN");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "EOD\n");
    fprintf(f, "set title ");
    gp_str(f, pf->name);
    fprintf(f, " . \": memory held over the churn\"\n");
    fprintf(f, "set xlabel \"churn round (0 = after the fill)\"\nset ylabel \"MiB\"\n");
    fprintf(f, "set key bottom right\nset yrange [0:*]\nset xrange [0:%d]\nset xtics auto\n",
            rounds > 0 ? rounds : 1);
    fprintf(f, "plot ");
    int n = 0;
    for (int k = 0; k < pf->ns; k++) {
        const struct plot_series *s = &pf->s[k];
        if (!s->footprint)
            continue;
        bool kernel = strstr(s->label, "kernel") != NULL;
        fprintf(f, "%s$mem%d using 1:%d with linespoints lw 2 pt 7 ps 0.5 lc %d title ", n ? ", \\\n  " : "",
                i, 2 + 2 * k, k + 1);
        char t[160];
        snprintf(t, sizeof t, "%s %s", s->label,
                 kernel ? "mem_used_total (allocator only)" : "footprint (everything)");
        gp_str(f, t);
        fprintf(f, ", $mem%d using 1:%d with lines dt 2 lc %d title ", i, 3 + 2 * k, k + 1);
        snprintf(t, sizeof t, "%s compressed bytes", s->label);
        gp_str(f, t);
        n++;
    }
    if (!n)
        fprintf(f, "NaN notitle");
    fprintf(f, "\n");
}

static void speed_panel(FILE *f, const struct plot_file *pf, int i)
{
    fprintf(f, "$speed%d << EOD\n", i);
    for (int k = 0; k < pf->ns; k++) {
        gp_str(f, pf->s[k].label);
        fprintf(f, " %.1f %.1f\n", pf->s[k].write_mb_s, pf->s[k].read_mb_s);
    }
    fprintf(f, "EOD\n");
    fprintf(f, "set title ");
    gp_str(f, pf->name);
    fprintf(f, " . \": fill speed (1 thread)\"\n");
    fprintf(f, "set xlabel \"\"\nset ylabel \"MB/s\"\nset key top left\nset yrange [0:*]\n"
               "set xrange [*:*]\n"
               "plot $speed%d using 2:xtic(1) with histograms fs solid 0.8 lc 3 title \"write\", \\\n"
               "  '' using 3 with histograms fs solid 0.8 lc 4 title \"read\"\n", i);
}

int plot_write(const char *svg, const struct plot_file *files, int nfiles,
               const char *title)
{
    char gp[4096];
    size_t n = strlen(svg);
    if (n > 4 && !strcmp(svg + n - 4, ".svg"))
        snprintf(gp, sizeof gp, "%.*s.gp", (int)(n - 4), svg);
    else
        snprintf(gp, sizeof gp, "%s.gp", svg);
    FILE *f = fopen(gp, "w");
    if (!f) {
        fprintf(stderr, "uzram bench: --plot: %s: %s\n", gp, strerror(errno));
        return -1;
    }
    fprintf(f, "# written by uzram bench --plot: the figures measured in that run\n");
    fprintf(f, "set terminal svg size 1100,%d dynamic noenhanced font \"sans,12\" "
               "background \"white\"\n", 60 + 360 * (nfiles > 0 ? nfiles : 1));
    fprintf(f, "set output ");
    gp_str(f, svg);
    fprintf(f, "\nset grid ytics\nset style histogram clustered gap 1\nset boxwidth 0.9\n");
    fprintf(f, "set multiplot layout %d,2 columnsfirst title ", nfiles > 0 ? nfiles : 1);
    gp_str(f, title);
    fprintf(f, "\n");
    /* columnsfirst: all memory panels, then all speed panels */
    for (int i = 0; i < nfiles; i++)
        memory_panel(f, &files[i], i);
    for (int i = 0; i < nfiles; i++)
        speed_panel(f, &files[i], i);
    fprintf(f, "unset multiplot\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "uzram bench: --plot: %s: %s\n", gp, strerror(errno));
        return -1;
    }
    char *argv[] = {"gnuplot", gp, NULL};
    int rc = run_program(argv, NULL, 0, true);
    if (rc == -ENOENT) {
        fprintf(stderr, "uzram bench: --plot: gnuplot is not installed (apt-get install "
                        "gnuplot-nox); the script is in %s\n", gp);
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr, "uzram bench: --plot: gnuplot %s failed (%d)\n", gp, rc);
        return -1;
    }
    return 0;
}
