# fig5.gp: the paper's Figure 5, quality against layers ratio for each
# early-exit method (data: figure_export_pareto(), harness/report/
# figure_data.h: a block per method, columns layers ratio, distance (mean
# over seeds), its standard deviation, threshold, runs). The y axis is named
# by the data (FD-FMNIST-N, the Fashion-MNIST proxy, or FID-N); lower is
# better, and a method whose curve stays flat as the ratio falls wins.
# usage: gnuplot -e "data='fig5.dat'; out='fig5'; caption='...'" paper/fig5.gp
#        writes fig5.png and fig5.svg
if (!exists("caption")) caption = ""
set datafile columnheaders
stats data using 1 nooutput
n = STATS_blocks
stats data index 0 using (quality = columnhead(2), $2) nooutput
colors = "#1f5fa8 #d62728 #2ca02c #ff7f0e #000000 #7fb2e5 #9467bd #8c564b"
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1000,650 font "DejaVu Sans,11" }
    else { set terminal svg size 1000,650 font "DejaVu Sans,11" }
    set output out . "." . fmt
    set title "Figure 5: quality against layers ratio, labelled with the threshold (lower " . quality . " is better; error bars: sd over seeds)\n{/*0.85 " . caption . "}"
    set xlabel "layers ratio (blocks run / blocks available)"
    set ylabel quality . " (mean over seeds)"
    set xrange [1.02:0]
    set grid
    set key inside bottom right box opaque
    plot for [i = 0:n - 1] data index i using 1:2:3 with yerrorlines lw 2 pt 7 ps 1 \
             lc rgb word(colors, i % words(colors) + 1) title columnhead(1), \
         for [i = 0:n - 1] data index i using 1:2:($1 < 0.99 ? sprintf("%g", $4) : "") with labels offset 0, 0.8 font ",8" \
             tc rgb word(colors, i % words(colors) + 1) notitle
    unset output
}
