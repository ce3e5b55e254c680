/*
 * progress.c: the progress bar on a terminal and the plain progress lines
 * elsewhere. See progress.h for the formats.
 */
#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_format_eta(char *buf, size_t n, double seconds)
{
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e12) {
        snprintf(buf, n, "-:--:--");
        return;
    }
    long long s = (long long)(seconds + 0.5);
    snprintf(buf, n, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
}

void progress_init_at(Progress *p, FILE *out, int64_t first_step, int64_t total, int64_t every,
                      double images_per_step, double now)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    int fd = fileno(out);
    p->tty = fd >= 0 && isatty(fd);
    struct winsize ws;
    if (p->tty && ioctl(fd, TIOCGWINSZ, &ws) == 0) p->columns = ws.ws_col;
    p->first_step = first_step;
    p->total = total;
    p->every = every > 0 ? every : 1;
    p->images_per_step = images_per_step;
    p->t0 = now;
    p->last_draw = -1;
    p->step = first_step;
    p->loss = NAN;
}

void progress_init(Progress *p, FILE *out, int64_t first_step, int64_t total, int64_t every,
                   double images_per_step)
{
    progress_init_at(p, out, first_step, total, every, images_per_step, progress_now());
}

/* steps per second since progress_init (NaN before the first step) */
static double steps_per_s(const Progress *p, double now)
{
    double elapsed = now - p->t0;
    int64_t done = p->step - p->first_step;
    return done > 0 && elapsed > 0 ? (double)done / elapsed : NAN;
}

/* " loss L", " R im/s" and " eta h:mm:ss", each when known, in `order`:
   'l', 'r', 'e' */
static int append_fields(char *buf, size_t n, const Progress *p, double now, const char *order)
{
    double rate = steps_per_s(p, now);
    int len = 0;
    for (const char *o = order; *o && len < (int)n; o++) {
        if (*o == 'l' && isfinite(p->loss))
            len += snprintf(buf + len, n - (size_t)len, " loss %.4g", p->loss);
        if (*o == 'r' && p->images_per_step > 0 && isfinite(rate))
            len += snprintf(buf + len, n - (size_t)len, " %.1f im/s", rate * p->images_per_step);
        if (*o == 'e') {
            char eta[32];
            progress_format_eta(eta, sizeof eta, (double)(p->total - p->step) / rate);
            len += snprintf(buf + len, n - (size_t)len, " eta %s", eta);
        }
    }
    return len < (int)n ? len : (int)n - 1;
}

static void draw_bar(Progress *p, double now)
{
    char line[256];
    double frac = p->total > 0 ? (double)p->step / (double)p->total : 1.0;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int filled = (int)(frac * PROGRESS_BAR_WIDTH);
    int len = 0;
    line[len++] = '[';
    for (int i = 0; i < PROGRESS_BAR_WIDTH; i++) line[len++] = i < filled ? '#' : '.';
    len += snprintf(line + len, sizeof line - (size_t)len, "] %lld/%lld %5.1f%%",
                    (long long)p->step, (long long)p->total, 100.0 * frac);
    len += append_fields(line + len, sizeof line - (size_t)len, p, now, "elr");
    /* a line that wraps could not be redrawn in place */
    if (p->columns > 1 && len > p->columns - 1) line[len = p->columns - 1] = 0;
    /* blank out what is left of a longer previous line */
    fprintf(p->out, "\r%s%*s", line, p->line_len > len ? p->line_len - len : 0, "");
    fflush(p->out);
    p->line_len = len;
    p->last_draw = now;
}

void progress_update_at(Progress *p, int64_t step, double loss, double now)
{
    p->step = step;
    p->loss = loss;
    if (p->tty) {
        if (p->last_draw < 0 || now - p->last_draw >= PROGRESS_MIN_REDRAW_S || step >= p->total)
            draw_bar(p, now);
        return;
    }
    if (step % p->every != 0 && step != p->total) return;
    char fields[128];
    append_fields(fields, sizeof fields, p, now, "lre");
    fprintf(p->out, "step %lld/%lld%s\n", (long long)step, (long long)p->total, fields);
    fflush(p->out);
}

void progress_update(Progress *p, int64_t step, double loss)
{
    progress_update_at(p, step, loss, progress_now());
}

void progress_finish_at(Progress *p, double now)
{
    if (p->tty && p->last_draw >= 0) {
        draw_bar(p, now);
        fputc('\n', p->out);
    }
    char elapsed[32], fields[128] = "";
    progress_format_eta(elapsed, sizeof elapsed, now - p->t0);
    double rate = steps_per_s(p, now);
    int len = 0;
    if (isfinite(rate)) len += snprintf(fields, sizeof fields, ", %.2f steps/s", rate);
    if (isfinite(rate) && p->images_per_step > 0)
        len += snprintf(fields + len, sizeof fields - (size_t)len, ", %.1f im/s", rate * p->images_per_step);
    if (isfinite(p->loss))
        snprintf(fields + len, sizeof fields - (size_t)len, ", final loss %.4g", p->loss);
    fprintf(p->out, "done %lld steps in %s%s\n", (long long)(p->step - p->first_step), elapsed, fields);
    fflush(p->out);
}

void progress_finish(Progress *p) { progress_finish_at(p, progress_now()); }
