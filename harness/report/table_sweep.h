/*
 * table_sweep.h: an early-exit model's threshold sweep, drawn from the
 * results database (deediff table sweep; table_sweep.c says what each
 * column is).
 */
#ifndef DEEDIFF_TABLE_SWEEP_H
#define DEEDIFF_TABLE_SWEEP_H

#include "../store/store.h"
#include "../cli/text_file.h"

/* Markdown of the sweep of model file `model` (as eval's --model named it)
   run with method `method` (NULL: any early-exit method, for a file with one),
   with the plain model `baseline` (NULL: none) as an extra row; -1 +
   err_msg() when the database has no runs of the model */
int table_sweep_render(Store *st, const char *model, const char *method, const char *baseline, TextBuf *t);

#endif
