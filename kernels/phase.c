/*
 * phase.c: the names of the phases of phase.h, as results.db stores them.
 */
#include "phase.h"

const char *phase_kind_name(PhaseKind kind)
{
    static const char *const names[PHASE_KINDS] = {
        "run", "train_step", "sample_step", "block", "block_backward", "head", "exit_rule",
    };
    return (unsigned)kind < PHASE_KINDS ? names[kind] : "?";
}
