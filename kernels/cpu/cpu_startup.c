/*
 * cpu_startup.c: OpenBLAS's core type decided from the CPU's feature flags,
 * and the re-exec that applies it (and the OpenMP wait policy) before the
 * libraries load. The why is in cpu_startup.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_gemm.h"
#include "cpu_startup.h"

char *openblas_get_corename(void);

/* how wide a core type's kernels are: 1 SSE, 2 AVX, 3 AVX2+FMA, 4 AVX-512 */
typedef struct {
    const char *name;
    int level;
} CoreLevel;

/* OpenBLAS 0.3.x's x86-64 core names (driver/others/dynamic.c) */
static const CoreLevel core_levels[] = {
    {"Unknown", 1},     {"Katmai", 1},    {"Coppermine", 1},   {"Northwood", 1},
    {"Prescott", 1},    {"Banias", 1},    {"Atom", 1},         {"Core2", 1},
    {"Penryn", 1},      {"Dunnington", 1}, {"Nehalem", 1},     {"Athlon", 1},
    {"Opteron", 1},     {"Opteron_SSE3", 1}, {"Barcelona", 1}, {"Nano", 1},
    {"Bobcat", 1},      {"Sandybridge", 2}, {"Bulldozer", 2},  {"Piledriver", 2},
    {"Steamroller", 2}, {"Excavator", 2}, {"Haswell", 3},      {"Zen", 3},
    {"SkylakeX", 4},    {"Cooperlake", 4}, {"SapphireRapids", 4},
};

/* the best core type of each level, what we force */
static const char *const level_core[] = {NULL, NULL, "Sandybridge", "Haswell", "SkylakeX"};

static int core_level(const char *name)
{
    for (size_t i = 0; i < sizeof core_levels / sizeof core_levels[0]; i++)
        if (!strcasecmp(name, core_levels[i].name)) return core_levels[i].level;
    return 0;  /* unknown to this rule */
}

int cpu_has_flag(const char *flags, const char *flag)
{
    if (!flags) return 0;
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n) {
        int starts = p == flags || p[-1] == ' ' || p[-1] == '\t';
        int ends = p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == '\n';
        if (starts && ends) return 1;
    }
    return 0;
}

/* the widest level the flags support: 4, 3, 2 or 1 */
static int flags_level(const char *flags)
{
    static const char *const avx512[] = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"};
    int all = 1;
    for (size_t i = 0; i < 5; i++) all &= cpu_has_flag(flags, avx512[i]);
    if (all && cpu_has_flag(flags, "avx2") && cpu_has_flag(flags, "fma")) return 4;
    if (cpu_has_flag(flags, "avx2") && cpu_has_flag(flags, "fma")) return 3;
    if (cpu_has_flag(flags, "avx")) return 2;
    return 1;
}

const char *openblas_coretype_for_flags(const char *flags)
{
    return level_core[flags ? flags_level(flags) : 1];
}

const char *openblas_coretype_upgrade(const char *detected, const char *flags)
{
    if (!detected || !flags) return NULL;
    int have = core_level(detected), can = flags_level(flags);
    return have > 0 && have < can ? level_core[can] : NULL;
}

const char *cpu_flags(void)
{
    static char flags[8192];
    static int read_once;
    if (read_once) return flags;
    read_once = 1;
    const char *fake = getenv("DEEDIFF_CPU_FLAGS");
    if (fake) {
        snprintf(flags, sizeof flags, "%s", fake);
        return flags;
    }
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return flags;
    char line[8192];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            char *colon = strchr(line, ':');
            if (colon) snprintf(flags, sizeof flags, "%s", colon + 1);
            flags[strcspn(flags, "\n")] = 0;
            break;
        }
    fclose(f);
    return flags;
}

const char *cpu_openblas_detected(void)
{
    const char *before = getenv("DEEDIFF_OPENBLAS_DETECTED");
    return before && *before ? before : openblas_get_corename();
}

const char *cpu_openblas_best_coretype(void) { return openblas_coretype_for_flags(cpu_flags()); }

int cpu_openblas_below_best(void)
{
    return openblas_coretype_upgrade(openblas_get_corename(), cpu_flags()) != NULL;
}

/* sets `name` to `value` unless the user set it, noting in DEEDIFF_SET_<name>
   that deediff did; returns 1 when it was set */
static int set_default(const char *name, const char *value)
{
    if (getenv(name)) return 0;
    char mark[64];
    snprintf(mark, sizeof mark, "DEEDIFF_SET_%s", name);
    setenv(name, value, 1);
    setenv(mark, "1", 1);
    return 1;
}

/* 1 when cpu_startup (of this process or the one before the re-exec) set `name` */
static int set_by_us(const char *name)
{
    char mark[64];
    snprintf(mark, sizeof mark, "DEEDIFF_SET_%s", name);
    return getenv(mark) != NULL;
}

void cpu_startup_restore_user_env(void)
{
    static const char *const ours[] = {"OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (set_by_us(ours[i])) unsetenv(ours[i]);
}

void cpu_describe(FILE *f)
{
    const char *wait = getenv("OMP_WAIT_POLICY");
    const char *env = getenv("DEEDIFF_GEMM");
    fprintf(f, "gemm         %s (%s; DEEDIFF_GEMM=auto|onednn|openblas chooses)\n", cpu_gemm_provenance(),
            env && *env && strcmp(env, "auto") ? "DEEDIFF_GEMM"
            : cpu_gemm_library() == GEMM_OPENBLAS
                ? "auto: OpenBLAS runs its best core for this CPU, oneDNN is faster on one thread"
                : "auto: OpenBLAS is below its best core here");
    fprintf(f, "openblas     %s", cpu_gemm_provenance_of(GEMM_OPENBLAS));
    if (set_by_us("OPENBLAS_CORETYPE"))
        fprintf(f, " (forced by deediff: OpenBLAS detected %s on a CPU whose flags support %s)",
                cpu_openblas_detected(), getenv("OPENBLAS_CORETYPE"));
    else if (getenv("OPENBLAS_CORETYPE"))
        fprintf(f, " (OPENBLAS_CORETYPE=%s from the environment)", getenv("OPENBLAS_CORETYPE"));
    else
        fprintf(f, " (as detected)");
    fprintf(f, "\nomp wait     %s\n",
            !wait ? "libgomp's default: spin, then sleep (OMP_WAIT_POLICY not set)"
            : set_by_us("OMP_WAIT_POLICY") ? "PASSIVE (set by deediff; OMP_WAIT_POLICY overrides)"
                                           : wait);
}

void cpu_startup(char **argv)
{
    cpu_gemm_library();  /* the GEMM library is chosen now: a bad DEEDIFF_GEMM stops here */
    if (getenv("DEEDIFF_STARTED")) return;  /* this process is the re-exec */
    int changed = 0;
    if (!getenv("OPENBLAS_CORETYPE")) {
        const char *detected = openblas_get_corename();
        const char *force = openblas_coretype_upgrade(detected, cpu_flags());
        if (force) {
            setenv("DEEDIFF_OPENBLAS_DETECTED", detected, 1);
            changed = set_default("OPENBLAS_CORETYPE", force);
        }
    }
    /* threads that sleep at a barrier instead of spinning: a spinning thread
       holds its core while its partner waits for a time slice on a core that
       another process keeps busy (README, "Threads") */
    changed |= set_default("OMP_WAIT_POLICY", "PASSIVE");
    if (!changed) return;
    setenv("DEEDIFF_STARTED", "1", 1);
    execv("/proc/self/exe", argv);
    /* still this process: the settings did not take, so none is claimed */
    cpu_startup_restore_user_env();
    unsetenv("DEEDIFF_SET_OPENBLAS_CORETYPE");
    unsetenv("DEEDIFF_SET_OMP_WAIT_POLICY");
    unsetenv("DEEDIFF_OPENBLAS_DETECTED");
    unsetenv("DEEDIFF_STARTED");
    fprintf(stderr, "deediff: note: could not restart with the CPU libraries' settings fixed "
                    "(exec /proc/self/exe failed); OpenBLAS keeps its %s kernels, OpenMP threads spin\n",
            openblas_get_corename());
}
