/*
 * bench_util.h: what every benchmark shares: a monotonic clock, medians,
 * the CPU's name, and running the PyTorch peer.
 */
#ifndef DEEDIFF_BENCH_UTIL_H
#define DEEDIFF_BENCH_UTIL_H

/* seconds on a monotonic clock */
double bench_now(void);
/* median of v[n] (sorts v) */
double bench_median(double *v, int n);
/* "AMD EPYC ..." from /proc/cpuinfo, or "unknown CPU" */
const char *bench_cpu_name(void);

typedef struct {
    double forward_ips, fwdbwd_ips, train_ips;
    char version[32];
} TorchTimes;

/* runs tests/reference/bench_torch.py with Debian's /usr/bin/python3 on the
   same configuration, weights file, batch and threads; returns -1 (times
   left at 0, a note on stderr) when PyTorch is unavailable */
int bench_torch(const char *config_json, const char *weights, int batch, int threads,
                int iters, TorchTimes *out);

#endif
