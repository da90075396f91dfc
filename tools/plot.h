/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * plot.h - `uzram bench --plot FILE.svg`: the benchmark's figures drawn
 * with gnuplot.
 */
#ifndef UZRAM_PLOT_H
#define UZRAM_PLOT_H

#include <stdint.h>

#define UZ_PLOT_MAX_SERIES 8

/* One device's figures on one page file: uzram with an allocator, or
 * kernel zram. */
struct plot_series {
    char label[64];
    double write_mb_s, read_mb_s;   /* the fill */
    /* memory after the fill (index 0) and after each churn round:
     * footprint (uzram: everything; kernel: mem_used_total) and
     * compressed bytes; rounds + 1 entries each, or NULL */
    uint64_t *footprint, *compr;
    int rounds;
};

struct plot_file {
    char name[64];
    struct plot_series s[UZ_PLOT_MAX_SERIES];
    int ns;
};

/*
 * Draw one row per file - memory over the churn, and fill speeds - into
 * svg.  The gnuplot script, data included, is kept beside it as
 * svg's name with ".gp" (so every figure in the plot can be read as
 * text).  title heads the plot.  Returns 0, or -1 with the reason
 * printed (gnuplot missing or failing).
 */
int plot_write(const char *svg, const struct plot_file *files, int nfiles,
               const char *title);

#endif
