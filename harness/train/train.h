/*
 * train.h: the training loop behind `deediff train`.
 */
#ifndef DEEDIFF_TRAIN_H
#define DEEDIFF_TRAIN_H

#include "../data/dataset.h"
#include "../cli/run_context.h"
#include "train_config.h"

/* trains per tc, continuing from the checkpoint `resume` when not NULL;
   `command` is recorded in checkpoints and exported models. -1 + err_msg()
   on bad input or a failed step (a NaN loss names the step) */
int train_run(RunContext *run, const TrainConfig *tc, const char *resume, const char *command);

/* the data set fits tc's model, batch and flip? -1 + err_set naming tc's
   file and the field */
int train_check_data(const TrainConfig *tc, const Dataset *ds);

#endif
