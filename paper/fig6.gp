# fig6.gp: the paper's Figure 6, the error early exit accumulates along the
# sampling trajectory: the MSE between the early-exit run's state x and the
# full model's at every evaluation (data: figure_export_points(...,
# "fig6_error_accumulation", ...), harness/report/figure_data.h). data may
# name several files (one `deediff analyze` run each, e.g. DeeDiff, BERxiT
# and CALM), separated by spaces; every "threshold T" curve of each is drawn,
# titled with its method and layers ratio.
# usage: gnuplot -e "data='a.dat b.dat'; out='fig6'; caption='...'" paper/fig6.gp
#        writes fig6.png and fig6.svg
if (!exists("caption")) caption = ""
set datafile columnheaders
files = words(data)
# the curves: (file, block) of every block whose first column is "evaluation"
# and whose title is not "t"
array curve_file[100]
array curve_block[100]
curves = 0
do for [f = 1:files] {
    stats word(data, f) using 1 nooutput
    do for [i = 0:STATS_blocks - 1] {
        stats word(data, f) index i every ::0::0 using (h1 = columnhead(1), h2 = columnhead(2), 0) nooutput
        if (h1 eq "evaluation" && h2 ne "t" && curves < 100) {
            curves = curves + 1
            curve_file[curves] = f
            curve_block[curves] = i
        }
    }
}
colors = "#1f5fa8 #d62728 #2ca02c #ff7f0e #9467bd #8c564b #e377c2 #7f7f7f"
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1000,600 font "DejaVu Sans,11" }
    else { set terminal svg size 1000,600 font "DejaVu Sans,11" }
    set output out . "." . fmt
    set title "Figure 6: error accumulation, MSE of the early-exit trajectory to the full model's\n{/*0.85 " . caption . "}"
    set xlabel "network evaluation (0: t = 1, pure noise; the last: the samples)"
    set ylabel "MSE(x_{early exit}, x_{full}), mean over images and pixels"
    set logscale y
    set format y "10^{%L}"
    set grid
    set key top left
    plot for [c = 1:curves] word(data, curve_file[c]) index curve_block[c] using 1:($2 > 0 ? $2 : NaN) \
             with lines lw 2 lc rgb word(colors, (c - 1) % words(colors) + 1) title columnhead(2)
    unset output
}
