/*
 * sampler_options.c: parsing the shared sampling flags.
 */
#include "../../kernels/errors.h"
#include "cli.h"
#include "sampler_options.h"

int sampler_options_parse(const SamplerOptions *so, SamplerConfig *sc)
{
    SamplerKind kind;
    ScheduleKind sched = SCHEDULE_VPSDE;
    if (sampler_kind_from_name(so->sampler ? so->sampler : "em", &kind)) return -1;
    if (so->schedule && schedule_kind_from_name(so->schedule, &sched)) return -1;
    *sc = sampler_config_default(kind, sched);
    long v;
    if (so->steps) {
        if (cli_int("--steps", so->steps, 1, 100000, &v)) return -1;
        sc->steps = (int)v;
    }
    if (so->seed) {
        if (cli_int("--seed", so->seed, 0, 0x7fffffffffffffffL, &v)) return -1;
        sc->seed = (uint64_t)v;
    }
    if (so->eta && cli_double("--eta", so->eta, &sc->eta)) return -1;
    return sampler_config_check(sc);
}
