# written by uzram bench --plot: the figures measured in that run
set terminal svg size 1100,780 dynamic noenhanced font "sans,12" background "white"
set output "docs/bench.svg"
set grid ytics
set style histogram clustered gap 1
set boxwidth 0.9
set multiplot layout 2,2 columnsfirst title "uzram bench --churn 20, lz4: uzram and kernel zram on the same pages"
$mem0 << EOD
0 41.089 40.248 42.582 40.252
1 34.472 32.991 43.191 32.994
2 31.183 29.847 41.695 29.849
3 30.128 28.858 39.918 28.861
4 29.487 28.223 38.570 28.225
5 29.253 28.014 37.105 28.016
6 29.183 27.932 36.758 27.934
7 29.206 27.952 36.637 27.954
8 29.085 27.866 36.625 27.868
9 29.210 27.954 36.527 27.956
10 29.233 27.976 36.570 27.978
11 29.194 27.957 36.473 27.959
12 29.151 27.900 36.590 27.902
13 29.159 27.904 36.656 27.906
14 29.077 27.830 36.793 27.832
15 29.116 27.877 36.586 27.879
16 29.198 28.000 36.859 28.003
17 29.022 27.893 36.684 27.895
18 29.038 27.791 36.594 27.793
19 29.104 27.900 36.445 27.902
20 29.100 27.849 36.395 27.851
EOD
set title "sqlite.pages.zst" . ": memory held over the churn"
set xlabel "churn round (0 = after the fill)"
set ylabel "MiB"
set key bottom right
set yrange [0:*]
set xrange [0:20]
set xtics auto
plot $mem0 using 1:2 with linespoints lw 2 pt 7 ps 0.5 lc 1 title "uzram zsmalloc footprint (everything)", $mem0 using 1:3 with lines dt 2 lc 1 title "uzram zsmalloc compressed bytes", \
  $mem0 using 1:4 with linespoints lw 2 pt 7 ps 0.5 lc 2 title "kernel zram mem_used_total (allocator only)", $mem0 using 1:5 with lines dt 2 lc 2 title "kernel zram compressed bytes"
$mem1 << EOD
0 40.425 39.773 41.184 39.774
1 33.956 32.514 40.262 32.514
2 31.054 29.804 39.449 29.804
3 29.737 28.506 38.164 28.506
4 29.218 27.979 36.273 27.979
5 28.741 27.604 34.957 27.604
6 28.815 27.587 34.539 27.587
7 28.890 27.651 34.387 27.652
8 28.561 27.410 33.590 27.410
9 28.847 27.629 34.082 27.630
10 28.686 27.580 34.062 27.581
11 28.858 27.649 34.094 27.650
12 28.823 27.659 34.270 27.660
13 28.671 27.445 34.059 27.445
14 28.765 27.545 34.250 27.545
15 28.772 27.535 34.234 27.536
16 28.862 27.637 34.336 27.637
17 28.866 27.629 34.289 27.629
18 28.890 27.694 34.219 27.694
19 28.913 27.711 34.277 27.711
20 28.737 27.537 34.301 27.537
EOD
set title "perl.pages.zst" . ": memory held over the churn"
set xlabel "churn round (0 = after the fill)"
set ylabel "MiB"
set key bottom right
set yrange [0:*]
set xrange [0:20]
set xtics auto
plot $mem1 using 1:2 with linespoints lw 2 pt 7 ps 0.5 lc 1 title "uzram zsmalloc footprint (everything)", $mem1 using 1:3 with lines dt 2 lc 1 title "uzram zsmalloc compressed bytes", \
  $mem1 using 1:4 with linespoints lw 2 pt 7 ps 0.5 lc 2 title "kernel zram mem_used_total (allocator only)", $mem1 using 1:5 with lines dt 2 lc 2 title "kernel zram compressed bytes"
$speed0 << EOD
"uzram zsmalloc" 587.1 2707.2
"kernel zram" 780.4 2146.8
EOD
set title "sqlite.pages.zst" . ": fill speed (1 thread)"
set xlabel ""
set ylabel "MB/s"
set key top left
set yrange [0:*]
set xrange [*:*]
plot $speed0 using 2:xtic(1) with histograms fs solid 0.8 lc 3 title "write", \
  '' using 3 with histograms fs solid 0.8 lc 4 title "read"
$speed1 << EOD
"uzram zsmalloc" 995.4 2889.7
"kernel zram" 978.3 2184.1
EOD
set title "perl.pages.zst" . ": fill speed (1 thread)"
set xlabel ""
set ylabel "MB/s"
set key top left
set yrange [0:*]
set xrange [*:*]
plot $speed1 using 2:xtic(1) with histograms fs solid 0.8 lc 3 title "write", \
  '' using 3 with histograms fs solid 0.8 lc 4 title "read"
unset multiplot
