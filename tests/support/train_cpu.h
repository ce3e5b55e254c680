/*
 * train_cpu.h: one training run as `deediff train` does it, from a test
 * (test support): a configuration file with overrides, trained on the CPU
 * with one thread.
 */
#ifndef DEEDIFF_TEST_TRAIN_CPU_H
#define DEEDIFF_TEST_TRAIN_CPU_H

/* loads the training configuration at config with the n overrides ov
   ("a.b=v") and, when it loads, trains per it (command "test"), continuing
   from the checkpoint resume when not NULL. Returns train_config_load's rc
   when the configuration is refused, else train_run's (-1 + err_msg()); the
   test fails when the CPU context does not open. */
int train_cpu(const char *config, int n, const char *const *ov, const char *resume);

#endif
