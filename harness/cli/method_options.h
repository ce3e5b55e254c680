/*
 * method_options.h: the method flags that `deediff sample`, `deediff eval`
 * and `deediff analyze` share (--method, --threshold), and what they report
 * of a sampling run's exits: the per-evaluation record for the exits table
 * and the histogram printed after sampling.
 */
#ifndef DEEDIFF_METHOD_OPTIONS_H
#define DEEDIFF_METHOD_OPTIONS_H

#include <stdio.h>

#include "../../model/method.h"
#include "../store/store.h"

typedef struct {
    const char *method;     /* default: the model file's own */
    const char *threshold;  /* default 0 */
} MethodOptions;

#define METHOD_OPTIONS(mo)                                                                              \
    {"--method", "NAME", "method (deediff methods lists them; default: the model file's own; none runs " \
     "any file's backbone alone, another method any file holding its parameters)", &(mo).method, NULL, 0}, \
    {"--threshold", "T", "early-exit threshold in [0, 1]: an image leaves at the first exit whose "     \
     "score is below T (0: never, 1: always at the first; static: block L-1-round(T L); default 0)",     \
     &(mo).threshold, NULL, 0}

/* the threshold, checked against [0, 1]; -1 + err_msg() naming the flag */
int method_options_threshold(const MethodOptions *mo, double *threshold);
/* the model file with its method (method_load), and the threshold checked
   against the method: -1 + err_msg() naming the file or the flag */
int method_options_open(const MethodOptions *mo, const char *path, const char *prefix, Ctx *ctx,
                        UViT *backbone, Method **me, double *threshold);

/* every image evaluation of a sampling run, for store_exits */
typedef struct {
    ExitRow *rows;
    int64_t n, cap;
} ExitLog;

/* makes acc record into log */
void exit_log_attach(ExitLog *log, SampleAccount *acc);
void exit_log_free(ExitLog *log);

/* "exits: block 0 12.5% | ... | full 40.0%   layers ratio 0.731" */
void exit_histogram_print(FILE *f, const SampleAccount *acc, int num_blocks);

#endif
