/*
 * cpu_startup.h: fixing the CPU libraries' settings before they start, and
 * the pure rule that decides OpenBLAS's core type.
 *
 * OpenBLAS (built DYNAMIC_ARCH, as Debian's) picks its kernels once, when the
 * library loads, from the CPU's vendor, family and model; a CPU newer than
 * the library (Sapphire/Emerald Rapids, Zen 5 for 0.3.21) gets a generic or
 * an older kernel (Prescott: 4x slower than the CPU can go). Its only remedy
 * is the environment variable OPENBLAS_CORETYPE, read by the library's own
 * constructor, which runs before main. So cpu_startup, called first thing in
 * main, asks the loaded library which core it picked, compares that with
 * what the CPU's feature flags support, and when the flags support better it
 * sets OPENBLAS_CORETYPE and re-executes the same program (/proc/self/exe,
 * same argv, same environment plus that one variable): the new process
 * loads OpenBLAS with the right kernels. A user's own OPENBLAS_CORETYPE is
 * never overridden. Why re-exec rather than a constructor: constructors of
 * shared libraries run before any of the program's, and a preinit function
 * cannot ask OpenBLAS what it would detect; one exec costs a few ms.
 *
 * The same re-exec sets the OpenMP wait policy (see cpu_startup.c) when the
 * user has not, since libgomp reads it at load time too.
 */
#ifndef DEEDIFF_CPU_STARTUP_H
#define DEEDIFF_CPU_STARTUP_H

#include <stdio.h>

/* The OpenBLAS core type to force on a CPU whose /proc/cpuinfo "flags" line
 * is `flags` (space-separated), when OpenBLAS detected `detected` (its
 * openblas_get_corename()); NULL when the detected core is as good as the
 * flags allow, or unknown to this rule (then it is left alone).
 * Levels: SkylakeX (AVX-512 F, CD, BW, DQ, VL) > Haswell (AVX2 + FMA) >
 * Sandybridge (AVX) > the SSE cores (Prescott, Core2, Nehalem, ...).
 * Pure: reads nothing but its arguments.                                   */
const char *openblas_coretype_upgrade(const char *detected, const char *flags);

/* the best OpenBLAS core type for these flags (NULL: none better than SSE);
   pure, like the above                                                     */
const char *openblas_coretype_for_flags(const char *flags);

/* call first in main: re-executes argv[0]'s program with OPENBLAS_CORETYPE
 * (and the OpenMP wait policy) set when they need fixing; returns when
 * nothing needs it or the exec failed (a note on stderr then).             */
void cpu_startup(char **argv);

/* the core OpenBLAS detected by itself in this process or, after the
   re-exec, in the process before it ("Haswell"); static storage            */
const char *cpu_openblas_detected(void);

/* the OpenBLAS core type for this CPU's flags: what the PyTorch peer is
   given in the benchmark's fair race (NULL: no better than SSE)           */
const char *cpu_openblas_best_coretype(void);

/* 1 when OpenBLAS in this process runs a weaker core than this CPU's flags
   support (a user's OPENBLAS_CORETYPE, or a failed re-exec)              */
int cpu_openblas_below_best(void);

/* restores, for child processes, the environment the user started deediff
   with (undoing what cpu_startup set), so a peer runs "as installed"      */
void cpu_startup_restore_user_env(void);

/* prints the CPU libraries' settings, one "name  value" line each: the GEMM
   library (cpu_gemm_provenance), OpenBLAS's core (and what it detected when
   deediff forced it), the OpenMP wait policy and who chose it               */
void cpu_describe(FILE *f);

/* this CPU's "flags" line from /proc/cpuinfo ("" when unreadable), or the
   environment variable DEEDIFF_CPU_FLAGS when set (tests play another CPU
   with it: every rule that reads the flags then sees theirs); static
   storage, read once                                                       */
const char *cpu_flags(void);

/* 1 when the space-separated `flags` holds the word `flag` (NULL: 0); pure */
int cpu_has_flag(const char *flags, const char *flag);

#endif
