# regress_history.gp: the history of make regress: every metric of the
# smoke experiments as its value over the baseline's, one curve per metric,
# by check (data: deediff regress --history, harness/runner/cmd_regress.c:
# a block per metric, columns check, value, baseline, passed, checked_at).
# A flat line at 1 is a metric that never moved; a failed check is a cross.
# usage: gnuplot -e "data='h.dat'; out='h'" paper/regress_history.gp
#        writes h.png and h.svg
set datafile columnheaders
stats data using 1 nooutput
blocks = STATS_blocks
set xlabel "regress check (oldest first)"
set ylabel "value / baseline"
set title "make regress: the smoke metrics over time"
set key below font ",7" noenhanced maxcols 3
set format y "%.6f"
set grid
set offsets 0, 0, graph 0.05, graph 0.05
do for [ext in "png svg"] {
  if (ext eq "png") { set terminal pngcairo size 1400,1300 font ",10" } else { set terminal svg size 1400,1300 font ",10" }
  set output out.".".ext
  plot for [i=0:blocks-1] data index i using 1:($3 != 0 ? $2/$3 : 1) with linespoints pt 7 ps 0.6 title columnhead(2), \
       for [i=0:blocks-1] data index i using 1:($4 == 0 ? ($3 != 0 ? $2/$3 : 1) : 1/0) with points pt 2 ps 2 lc rgb "red" notitle
}
