/*
 * figure_plot.h: drawing a figure with gnuplot: one of the scripts in
 * paper/fig*.gp run on its data file (figure_data.h), writing OUT.png and
 * OUT.svg.
 */
#ifndef DEEDIFF_FIGURE_PLOT_H
#define DEEDIFF_FIGURE_PLOT_H

#include "../cli/text_file.h"

/* runs `gnuplot -e "VARS; out='TMP'" SCRIPT`, where vars are gnuplot
   assignments ("data='f.dat'; caption='...'", see figure_var) and TMP a
   temporary name beside out_base; when gnuplot exits 0 and wrote both
   TMP.png and TMP.svg they are renamed to out_base.png and out_base.svg.
   -1 + err_msg() (one line naming the script; gnuplot's own messages went
   to stderr) when gnuplot is missing, fails or writes nothing; the
   temporary files are removed then. */
int figure_plot(const char *script, const char *vars, const char *out_base);

/* appends "name='value'; " to t, value quoted for gnuplot ('' for ') */
void figure_var(TextBuf *t, const char *name, const char *value);

#endif
