# fig4.gp: the paper's Figure 4, DeeDiff's uncertainty maps at different
# sampling steps (data: figure_export_points(..., "fig4_uncertainty", ...),
# harness/report/figure_data.h: a mosaic block per kept evaluation, a row of
# tiles per exit and a column per image, then each exit's mean uncertainty
# against t). Top: the mosaics side by side, one colour scale; bottom: the
# mean curves.
# usage: gnuplot -e "data='fig4.dat'; out='fig4'; caption='...'" paper/fig4.gp
#        writes fig4.png and fig4.svg
if (!exists("caption")) caption = ""
set datafile columnheaders
stats data using 1 nooutput
blocks = STATS_blocks
# the mosaics come first: their first column is "x"; then the mean curves ("t")
maps = 0
do for [i = 0:blocks - 1] {
    stats data index i every ::0::0 using (h = columnhead(1), 0) nooutput
    if (h eq "x") { maps = maps + 1 }
}
curves = blocks - maps
stats data index 0 using 1:2 nooutput
images = ceil(STATS_max_x)
exits = ceil(STATS_max_y)
umax = 0
array map_title[maps]
do for [i = 0:maps - 1] {
    stats data index i using (h = columnhead(3), $3) nooutput
    map_title[i + 1] = h
    if (STATS_max > umax) { umax = STATS_max }
}
set palette defined (0 "#fff7ec", 0.3 "#fdbb84", 0.6 "#ef6548", 1 "#7f0000")
set style textbox opaque noborder
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1400,1300 font "DejaVu Sans,11" }
    else { set terminal svg size 1400,1300 font "DejaVu Sans,11" }
    set output out . "." . fmt
    set multiplot title "Figure 4: uncertainty maps u of every exit along sampling (white: certain, dark red: uncertain)\n{/*0.85 " . caption . "}"
    width = 0.86 / maps
    set cbrange [0:umax]
    set xrange [0:images]
    set yrange [exits:0]
    set size ratio -1
    unset key
    set xtics 1 offset 0, 0.3 scale 0
    set format x ""
    set ytics scale 0
    set format y ""
    set xtics ("images 0.." . sprintf("%d", images - 1) images / 2.0)
    set ytics ()
    do for [i = 0:maps - 1] {
        set title map_title[i + 1]
        set origin 0.07 + i * width, 0.3
        set size width, 0.62
        set lmargin 0
        set rmargin 0
        if (i == 0) {
            set ytics ()
            do for [b = 0:exits - 1] { set ytics add (sprintf("block %d", b) b + 0.45) }
        } else { set ytics () }
        if (i == maps - 1) { set colorbox user origin 0.94, 0.35 size 0.012, 0.5; set cblabel "u" }
        else { unset colorbox }
        plot data index i using 1:2:3 with image notitle
    }
    set size noratio
    set origin 0, 0
    set size 1, 0.3
    set lmargin 12
    set rmargin 6
    unset colorbox
    unset title
    set autoscale
    set xrange [1:0]
    set yrange [0:*]
    set xtics auto
    set format x "%g"
    set ytics auto
    set format y "%g"
    set xlabel "t (sampling runs from t = 1 to t = 0)"
    set ylabel "mean u, images above"
    set key top left maxrows 4 font ",9"
    set grid
    set palette defined (0 "#440154", 0.35 "#31688e", 0.65 "#35b779", 1 "#fde725")
    set cbrange [0:curves - 1]
    plot for [i = 0:curves - 1] data index (maps + i) using 1:2 with lines lw 1.5 lc palette cb i title columnhead(2)
    unset multiplot
    unset grid
    unset xlabel
    unset ylabel
    set palette defined (0 "#fff7ec", 0.3 "#fdbb84", 0.6 "#ef6548", 1 "#7f0000")
    unset output
}
