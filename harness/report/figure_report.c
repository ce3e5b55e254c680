/*
 * figure_report.c: an experiment's figure (report.h).
 */
#include "../../kernels/errors.h"
#include "report.h"

int report_figure(Store *st, const Plan *p, const char *out_dir)
{
    return err_set("%s: figure reports are not drawn yet", p->path);
}
