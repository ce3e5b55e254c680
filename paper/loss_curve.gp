# loss_curve.gp: a training curve from `deediff log --output F.dat`.
# usage: gnuplot -e "data='F.dat'; out='F.png'; title='...'" paper/loss_curve.gp
if (!exists("title")) title = "training loss"
set terminal pngcairo size 900,540 font "DejaVu Sans,11"
set output out
set title title
set xlabel "training step"
set ylabel "noise-prediction MSE (mean over the logging window)"
set logscale y
set grid
set key off
plot data using 1:2 with lines lw 2 lc rgb "#1f5fa8"
