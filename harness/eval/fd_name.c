/*
 * fd_name.c: the printed names of Frechet distances (see fd_name.h).
 */
#include <stdio.h>
#include <string.h>

#include "fd_name.h"

const char *fd_kind(const char *net)
{
    if (net && !strcmp(net, "inception")) return "FID";
    if (net && !strcmp(net, "fmnist")) return "FD-FMNIST";
    return "FD";
}

const char *fd_n_label(int64_t n, char *buf, size_t size)
{
    if (n >= 1000 && n % 1000 == 0) snprintf(buf, size, "%lldk", (long long)(n / 1000));
    else if (n >= 1000 && n % 100 == 0) snprintf(buf, size, "%.1fk", n / 1000.0);
    else snprintf(buf, size, "%lld", (long long)n);
    return buf;
}

const char *fd_name(const char *net, int64_t n, char *buf, size_t size)
{
    char nl[32];
    snprintf(buf, size, "%s-%s", fd_kind(net), fd_n_label(n, nl, sizeof nl));
    return buf;
}
