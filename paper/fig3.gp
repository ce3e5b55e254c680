# fig3.gp: the paper's Figure 3, the training loss (noise-prediction MSE
# against the true noise) by time t, of the full model and of every exit
# (data: figure_export_points(..., "fig3_loss_by_t", ...), figure_data.h:
# a block per series, "block i" then "full", columns t, loss).
# usage: gnuplot -e "data='fig3.dat'; out='fig3'; caption='...'" paper/fig3.gp
#        writes fig3.png and fig3.svg
if (!exists("caption")) caption = ""
set datafile columnheaders
stats data using 2 nooutput
n = STATS_blocks
exits = n - 1
set palette defined (0 "#440154", 0.35 "#31688e", 0.65 "#35b779", 1 "#fde725")
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 900,600 font "DejaVu Sans,11" }
    else { set terminal svg size 900,600 font "DejaVu Sans,11" }
    set output out . "." . fmt
    set title "Figure 3: training loss by time t, every exit and the full model\n{/*0.85 " . caption . "}"
    set xlabel "t (0: clean image, 1: pure noise)"
    set ylabel "MSE to the true noise (fixed training batch)"
    set logscale y
    set grid
    set key top right
    set cbrange [0:exits - 1]
    set cblabel "exit after block"
    plot for [i = 1:exits] data index (i - 1) using 1:2 with linespoints pt 7 ps 0.5 lw 1.2 \
             lc palette cb (i - 1) notitle, \
         data index exits using 1:2 with linespoints pt 5 ps 0.8 lw 2.5 lc rgb "black" title columnhead(2)
    unset output
}
