/*
 * progress.h: what a long loop (training, sampling) shows while it runs.
 *
 * On a terminal, one line redrawn in place with '\r', at most ten times a
 * second:
 *     [#########...................]  1500/5000  30.0% eta 0:14:02 loss 0.0312 12.4 im/s
 * Elsewhere (a pipe, a CI log), a plain line every `every` steps:
 *     step 1500/5000 loss 0.0312 12.4 im/s eta 0:14:02
 * progress_finish() prints a summary line either way:
 *     done 5000 steps in 0:20:03, 4.16 steps/s, 12.4 im/s, final loss 0.0298
 *
 * The rate and the ETA are averages since progress_init() (a resumed run
 * counts from its first step). The *_at variants take the time in seconds
 * from any fixed origin, for tests; the others read the monotonic clock.
 */
#ifndef DEEDIFF_PROGRESS_H
#define DEEDIFF_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define PROGRESS_BAR_WIDTH 30
#define PROGRESS_MIN_REDRAW_S 0.1

typedef struct {
    FILE *out;
    int tty;                  /* redraw one line (1) or print plain lines (0) */
    int64_t first_step;       /* the step the loop starts from (0, or a resume point) */
    int64_t total;            /* the last step */
    int64_t every;            /* plain lines: one every this many steps */
    double images_per_step;   /* for im/s; 0: not shown */
    double t0;                /* when progress_init ran */
    double last_draw;         /* when the terminal line was last drawn (-1: never) */
    int64_t step;             /* the last step reported */
    double loss;              /* the last loss reported (NaN: none) */
    int line_len;             /* length of the terminal line drawn last */
    int columns;              /* the terminal's width (0: unknown); longer lines are cut */
} Progress;

/* seconds on the monotonic clock */
double progress_now(void);

/* "h:mm:ss" (hours unbounded); "-:--:--" for a negative or non-finite time */
void progress_format_eta(char *buf, size_t n, double seconds);

void progress_init(Progress *p, FILE *out, int64_t first_step, int64_t total, int64_t every,
                   double images_per_step);
void progress_init_at(Progress *p, FILE *out, int64_t first_step, int64_t total, int64_t every,
                      double images_per_step, double now);

/* step: the step just finished; loss NaN when there is none (sampling) */
void progress_update(Progress *p, int64_t step, double loss);
void progress_update_at(Progress *p, int64_t step, double loss, double now);

void progress_finish(Progress *p);
void progress_finish_at(Progress *p, double now);

#endif
