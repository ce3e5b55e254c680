/*
 * report.h: an experiment's report drawn from the database: a table
 * (Markdown, booktabs LaTeX and JSON under OUT/tables/) or a figure (data,
 * PNG and SVG under OUT/figures/). Only finished runs found by key
 * (cells.h) appear; a cell nobody has run says "not yet run".
 *
 * Files are named after the experiment and, for scales other than the
 * default tiny, the scale: paper/tables/table1.md, table1-smoke.md, ...
 */
#ifndef DEEDIFF_REPORT_H
#define DEEDIFF_REPORT_H

#include "../runner/experiment.h"
#include "../store/store.h"

/* the report the experiment file asks for ("report": "table" | "figure") */
int report_experiment(Store *st, const Plan *p, const char *out_dir);

/* "OUT/KIND/NAME[-SCALE].EXT" into buf */
void report_path(char *buf, size_t n, const Plan *p, const char *out_dir, const char *kind, const char *ext);

/* the tables: NAME.md, NAME.tex and NAME.json */
int report_table(Store *st, const Plan *p, const char *out_dir);

/* the figures (figure_report.c) */
int report_figure(Store *st, const Plan *p, const char *out_dir);

#endif
