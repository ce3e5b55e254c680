# fig7.gp: the paper's Figure 7, sample grids side by side (data:
# figure_export_grid(), harness/report/figure_data.h: a block of RGB pixels
# per grid, titled). Every pixel is drawn as a square (no smoothing), so
# 28x28 samples stay sharp at any size.
# usage: gnuplot -e "data='fig7.dat'; out='fig7'; caption='...'" paper/fig7.gp
#        writes fig7.png and fig7.svg
if (!exists("caption")) caption = ""
set datafile columnheaders
stats data using 1:2 nooutput
panels = STATS_blocks
array title[panels]
array width[panels]
array height[panels]
do for [i = 1:panels] {
    stats data index (i - 1) using (h = columnhead(3), $1):2 nooutput
    title[i] = h
    width[i] = STATS_max_x + 1
    height[i] = STATS_max_y + 1
}
cols = panels < 2 ? panels : 2
rows = ceil(panels / (cols * 1.0))
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1400, 360 + 560 * rows font "DejaVu Sans,12" }
    else { set terminal svg size 1400, 360 + 560 * rows font "DejaVu Sans,12" }
    set output out . "." . fmt
    set multiplot layout rows, cols title "Figure 7: generated samples\n{/*0.85 " . caption . "}"
    unset key
    unset tics
    unset border
    set size ratio -1
    set lmargin 1
    set rmargin 1
    do for [i = 1:panels] {
        set title title[i]
        set xrange [-0.5:width[i] - 0.5]
        set yrange [height[i] - 0.5:-0.5]
        plot data index (i - 1) using 1:2:3:4:5 with rgbimage notitle
    }
    unset multiplot
    unset output
}
