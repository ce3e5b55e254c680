/*
 * figure_caption.c: figure_caption() (figure_data.h): the protocol of the
 * run behind a figure in one line, for the figure's title.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../analyze/analyze_figures.h"
#include "figure_data.h"
#include "figure_io.h"
#include "paper_names.h"

int figure_caption(Store *s, int64_t run_id, const char *figure, char *buf, size_t size)
{
    cJSON *cfg = figure_run_config(s, run_id, s->path);
    if (!cfg) return -1;
    size_t len = 0;
    buf[0] = '\0';
#define ADD(...) (len += (size_t)snprintf(buf + len, len < size ? size - len : 0, __VA_ARGS__))
    const char *dataset = figure_cfg_str(cfg, "dataset", NULL);
    if (dataset) ADD("%s; ", paper_dataset_name(dataset));
    if (figure) {
        const char *model = figure_cfg_str(cfg, "model", "?");
        const char *file = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
        ADD("%s (%s); ", paper_method_name(figure_cfg_str(cfg, "method", "?")), file);
    }
    const char *sampler = figure_cfg_str(cfg, "sampler", NULL);
    double n = figure_cfg_num(cfg, "n", NAN);
    if (figure && !strcmp(figure, FIG3))
        ADD("loss on Fashion-MNIST training images 0..%g at %g times t; ", figure_cfg_num(cfg, "data_items", 0) - 1,
            figure_cfg_num(cfg, "loss_times", 0));
    else {
        if (sampler) ADD("%s %g steps; ", paper_sampler_name(sampler), figure_cfg_num(cfg, "steps", 0));
        if (!isnan(n)) ADD("%g images%s", n, figure ? ", " : " per run");
    }
    if (figure) ADD("seed %g; run %lld", figure_cfg_num(cfg, "seed", 0), (long long)run_id);
#undef ADD
    cJSON_Delete(cfg);
    return 0;
}
