# fig1.gp: the paper's Figure 1, each exit's MSE to the final output along
# the full model's sampling trajectory (data: figure_export_points(...,
# "fig1_layer_mse", ...), harness/report/figure_data.h: a block per exit,
# columns t, MSE). Left: every exit against t; right: each exit's mean over
# the trajectory, the paper's "drops sharply, then plateaus".
# usage: gnuplot -e "data='fig1.dat'; out='fig1'; caption='...'" paper/fig1.gp
#        writes fig1.png and fig1.svg
if (!exists("caption")) caption = ""
set datafile columnheaders
stats data using 2 nooutput
n = STATS_blocks
array mean_mse[n]
do for [i = 1:n] {
    stats data index (i - 1) using 2 nooutput
    mean_mse[i] = STATS_mean
}
set palette defined (0 "#440154", 0.35 "#31688e", 0.65 "#35b779", 1 "#fde725")
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1200,540 font "DejaVu Sans,11" }
    else { set terminal svg size 1200,540 font "DejaVu Sans,11" }
    set output out . "." . fmt
    set multiplot title "Figure 1: MSE between each exit's output and the final output\n{/*0.85 " . caption . "}"
    set origin 0, 0
    set size 0.6, 0.92
    set xlabel "t (sampling runs from t = 1, pure noise, to t = 0)"
    set ylabel "MSE(exit output, final output), mean over images"
    set logscale y
    set grid
    set key off
    set xrange [1:0]
    set cbrange [0:n - 1]
    set cblabel "exit after block"
    set colorbox
    plot for [i = 1:n] data index (i - 1) using 1:2 with lines lw 1.5 lc palette cb (i - 1) notitle
    set origin 0.6, 0
    set size 0.4, 0.92
    unset colorbox
    set xrange [-0.5:n - 0.5]
    set xlabel "exit after block"
    set ylabel "mean over the trajectory"
    set xtics 1
    set datafile nocolumnheaders   # an array has no header row
    plot mean_mse using ($1 - 1):2 with linespoints lw 2 pt 7 lc rgb "#1f5fa8" notitle
    set datafile columnheaders
    unset multiplot
    unset xtics
    set xtics
    unset output
}
