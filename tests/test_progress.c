/*
 * test_progress.c: the progress display's text: ETA formatting, the plain
 * lines a pipe gets every K steps, the summary, and the terminal bar's
 * redraw limit, all captured with open_memstream and an explicit clock.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli/progress.h"

static const char *eta(double seconds)
{
    static char buf[32];
    progress_format_eta(buf, sizeof buf, seconds);
    return buf;
}

Test(progress, eta_format)
{
    cr_expect_str_eq(eta(0), "0:00:00");
    cr_expect_str_eq(eta(59.4), "0:00:59");
    cr_expect_str_eq(eta(59.6), "0:01:00");
    cr_expect_str_eq(eta(842), "0:14:02");
    cr_expect_str_eq(eta(3600), "1:00:00");
    cr_expect_str_eq(eta(100 * 3600 + 61), "100:01:01");
    cr_expect_str_eq(eta(-1), "-:--:--");
    cr_expect_str_eq(eta(NAN), "-:--:--");
    cr_expect_str_eq(eta(INFINITY), "-:--:--");
}

/* a Progress writing into memory */
typedef struct {
    char *text;
    size_t len;
    FILE *f;
} Capture;

static void capture_open(Capture *c)
{
    c->f = open_memstream(&c->text, &c->len);
    cr_assert_not_null(c->f);
}

static void capture_close(Capture *c)
{
    fclose(c->f);
    free(c->text);
}

Test(progress, plain_lines_every_k_steps)
{
    Capture c;
    capture_open(&c);
    Progress p;
    /* one image a step, 8.062 s per 100 steps: 12.4 im/s */
    progress_init_at(&p, c.f, 0, 5000, 100, 1.0, 1000.0);
    cr_expect_eq(p.tty, 0);
    for (int step = 1; step <= 200; step++)
        progress_update_at(&p, step, step == 100 ? 0.0312 : 0.5, 1000.0 + 0.08062 * step);
    fflush(c.f);
    cr_expect_str_eq(c.text,
                     "step 100/5000 loss 0.0312 12.4 im/s eta 0:06:35\n"
                     "step 200/5000 loss 0.5 12.4 im/s eta 0:06:27\n");
    capture_close(&c);
}

Test(progress, last_step_sampling_and_summary)
{
    Capture c;
    capture_open(&c);
    Progress p;
    /* a resumed run from step 40 to 50, without loss (sampling) and without
       an image rate: the last step prints although 50 is not a multiple of 20 */
    progress_init_at(&p, c.f, 40, 50, 20, 0, 0.0);
    for (int step = 41; step <= 50; step++) progress_update_at(&p, step, NAN, step - 40.0);
    progress_finish_at(&p, 10.0);
    fflush(c.f);
    cr_expect_str_eq(c.text,
                     "step 50/50 eta 0:00:00\n"
                     "done 10 steps in 0:00:10, 1.00 steps/s\n");
    capture_close(&c);

    capture_open(&c);
    progress_init_at(&p, c.f, 0, 5000, 1000, 32, 0.0);
    progress_update_at(&p, 5000, 0.0298, 1203.0);
    progress_finish_at(&p, 1203.0);
    fflush(c.f);
    cr_expect_str_eq(c.text,
                     "step 5000/5000 loss 0.0298 133.0 im/s eta 0:00:00\n"
                     "done 5000 steps in 0:20:03, 4.16 steps/s, 133.0 im/s, final loss 0.0298\n");
    capture_close(&c);
}

Test(progress, no_step_yet_has_unknown_eta)
{
    Capture c;
    capture_open(&c);
    Progress p;
    progress_init_at(&p, c.f, 0, 10, 1, 4, 5.0);
    progress_update_at(&p, 0, 1.5, 5.0);
    progress_finish_at(&p, 5.0);
    fflush(c.f);
    cr_expect_str_eq(c.text, "step 0/10 loss 1.5 eta -:--:--\n"
                             "done 0 steps in 0:00:00, final loss 1.5\n");
    capture_close(&c);
}

/* the number of '\r' in text: one per redraw */
static int redraws(const char *text)
{
    int n = 0;
    for (; *text; text++) n += *text == '\r';
    return n;
}

Test(progress, terminal_bar_is_rate_limited)
{
    Capture c;
    capture_open(&c);
    Progress p;
    progress_init_at(&p, c.f, 0, 1000, 100, 1.0, 0.0);
    p.tty = 1;  /* as if the stream were a terminal */
    /* 1000 steps in one second: a redraw at most every 0.1 s, plus the last */
    for (int step = 1; step <= 1000; step++) progress_update_at(&p, step, 0.25, step * 0.001);
    fflush(c.f);
    int n = redraws(c.text);
    cr_expect(n >= 10 && n <= 12, "%d redraws", n);
    cr_expect_null(strchr(c.text, '\n'), "a bar line ends with a newline");
    const char *last = strrchr(c.text, '\r');
    cr_expect_str_eq(last, "\r[##############################] 1000/1000 100.0% eta 0:00:00 "
                           "loss 0.25 1000.0 im/s");
    capture_close(&c);

    /* the half-way bar, and a shorter line blanks out a longer one */
    capture_open(&c);
    progress_init_at(&p, c.f, 0, 10, 1, 0, 0.0);
    p.tty = 1;
    progress_update_at(&p, 5, 123.456, 5.0);
    progress_update_at(&p, 6, NAN, 6.0);
    progress_finish_at(&p, 6.0);
    fflush(c.f);
    cr_expect_str_eq(c.text,
                     "\r[###############...............] 5/10  50.0% eta 0:00:05 loss 123.5"
                     "\r[##################............] 6/10  60.0% eta 0:00:04           "
                     "\r[##################............] 6/10  60.0% eta 0:00:04\n"
                     "done 6 steps in 0:00:06, 1.00 steps/s\n");
    capture_close(&c);

    /* a narrow terminal gets the line cut short of wrapping */
    capture_open(&c);
    progress_init_at(&p, c.f, 0, 10, 1, 0, 0.0);
    p.tty = 1;
    p.columns = 40;
    progress_update_at(&p, 5, 0.5, 5.0);
    fflush(c.f);
    cr_expect_str_eq(c.text, "\r[###############...............] 5/10  ");
    capture_close(&c);
}
