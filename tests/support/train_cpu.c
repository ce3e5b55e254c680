/*
 * train_cpu.c: a training run on the CPU from a test (see train_cpu.h).
 */
#include <criterion/criterion.h>

#include "harness/train/train.h"
#include "train_cpu.h"

int train_cpu(const char *config, int n, const char *const *ov, const char *resume)
{
    TrainConfig tc;
    int rc = train_config_load(&tc, config, n, ov);
    if (rc) return rc;
    RunContext run;
    cr_assert_eq(run_context_open(&run, &(RunOptions){"cpu", "1", NULL, 0}), 0);
    rc = train_run(&run, &tc, resume, "test");
    run_context_close(&run);
    train_config_free(&tc);
    return rc;
}
