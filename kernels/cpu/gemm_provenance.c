/*
 * gemm_provenance.c: which GEMM library the CPU backend calls, its version
 * and the kernel it chose for this CPU, as one line ("openblas 0.3.21
 * Zen"). Every run in results.db records it (runs.gemm), so a number can
 * always be traced to the kernel that produced it.
 */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "cpu_ops.h"

const char *cpu_gemm_provenance(void)
{
    static char line[128];
    if (line[0]) return line;
    /* openblas_get_config(): "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64" */
    const char *config = openblas_get_config(), *core = openblas_get_corename();
    char version[32] = "?";
    if (config && !strncmp(config, "OpenBLAS ", 9)) sscanf(config + 9, "%31s", version);
    snprintf(line, sizeof line, "openblas %s %s", version, core ? core : "?");
    return line;
}
