/*
 * table_report.c: an experiment's table (report.h) as Markdown, booktabs
 * LaTeX and JSON, drawn from the database through cells.h.
 *
 * Layout: one row per experiment row, in the file's order; for every
 * measured column its metrics (the file's "metrics": quality, layers_ratio,
 * gflops, ...) as "mean ± sd" over the sampling seeds, with a link to the
 * cell's protocol; then, marked as the paper's, the paper's own numbers for
 * the datasets the column stands for. A column run by a stand-in dataset
 * (experiment.h) is named after the stand-in, and a note under the table
 * says what it stands for and why. A cell whose runs were made by other
 * code is marked stale. The proxy FD-FMNIST is never called FID.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../kernels/errors.h"
#include "../cli/text_file.h"
#include "cells.h"
#include "report.h"

typedef struct {
    const Plan *p;
    const CellResult *cells;
    int n_cells;
    CellMetric metrics[CELL_NUM_METRICS];
    int n_metrics;
    const cJSON *paper;          /* doc.paper.columns, may be NULL */
    const char *paper_metric;    /* "FID-50k" */
    const char *db;
} Table;

static const char *const metric_titles[CELL_NUM_METRICS] = {"quality", "layers ratio", "compute ratio",
                                                            "GFLOPs/eval", "s/image"};

void report_path(char *buf, size_t n, const Plan *p, const char *out_dir, const char *kind, const char *ext)
{
    if (!strcmp(p->scale, "tiny")) snprintf(buf, n, "%s/%s/%s.%s", out_dir, kind, p->name, ext);
    else snprintf(buf, n, "%s/%s/%s-%s.%s", out_dir, kind, p->name, p->scale, ext);
}

static int parse_metrics(Table *t)
{
    const cJSON *ms = cJSON_GetObjectItem(t->p->doc, "metrics"), *m;
    if (!ms) {
        t->metrics[t->n_metrics++] = CELL_QUALITY;
        t->metrics[t->n_metrics++] = CELL_LAYERS_RATIO;
        return 0;
    }
    cJSON_ArrayForEach(m, ms) {
        int found = -1;
        for (int k = 0; k < CELL_NUM_METRICS; k++)
            if (cJSON_IsString(m) && !strcmp(m->valuestring, cell_metric_names[k])) found = k;
        if (found < 0 || t->n_metrics == CELL_NUM_METRICS)
            return err_set("%s: metrics: expected names among quality, layers_ratio, compute_ratio, gflops, "
                           "seconds_per_image", t->p->path);
        t->metrics[t->n_metrics++] = (CellMetric)found;
    }
    return 0;
}

/* the point a table shows for a cell: its only threshold */
static const CellPoint *cell_point(const Table *t, int column, int row)
{
    const CellResult *c = cells_find(t->cells, t->n_cells, column, row);
    return c && c->n_points ? &c->points[0] : NULL;
}

/* the quality's name in a column ("FD-FMNIST-1k"), from any measured cell */
static const char *quality_name(const Table *t, int column)
{
    for (int r = 0; r < t->p->n_rows; r++) {
        const CellPoint *pt = cell_point(t, column, r);
        if (pt && pt->quality_name[0]) return pt->quality_name;
    }
    return "quality";
}

/* the protocol's number in the document: 1 + the index of the measured
   (column, row) among cells with a protocol */
static int protocol_number(const Table *t, int column, int row)
{
    int k = 0;
    for (int c = 0; c < t->p->n_columns; c++)
        for (int r = 0; r < t->p->n_rows; r++) {
            const CellPoint *pt = cell_point(t, c, r);
            if (!pt || !pt->protocol) continue;
            k++;
            if (c == column && r == row) return k;
        }
    return 0;
}

/* "0.613" or, for a pruned network that runs every block, "compute 0.559" */
static void format_value(char *buf, size_t n, const CellPoint *pt, CellMetric m)
{
    const CellStat *s = &pt->m[m];
    if (s->n == 0) {
        snprintf(buf, n, "–");
        return;
    }
    if (m == CELL_LAYERS_RATIO && s->mean > 0.9999 && pt->m[CELL_COMPUTE_RATIO].n &&
        pt->m[CELL_COMPUTE_RATIO].mean < 0.999) {
        snprintf(buf, n, "compute %.3f", pt->m[CELL_COMPUTE_RATIO].mean);
        return;
    }
    const char *fmt = m == CELL_QUALITY ? "%.2f" : m == CELL_GFLOPS ? "%.4g" : "%.3f";
    int k = snprintf(buf, n, fmt, s->mean);
    /* the spread, where there is one (counts like the layers ratio of a
       plain network do not move between seeds) */
    if (s->n > 1 && !isnan(s->sd) && s->sd > 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, m == CELL_QUALITY ? " ± %.2f" : " ± %.3f", s->sd);
    if (m == CELL_QUALITY && pt->seeds_found < pt->seeds_wanted && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, " (%d of %d seeds)", pt->seeds_found, pt->seeds_wanted);
}

static const cJSON *paper_value(const Table *t, const char *paper_col, const char *row, const char *metric)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(t->paper, paper_col), row), metric);
}

static void format_paper(char *buf, size_t n, const cJSON *v, CellMetric m)
{
    if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
    else if (!cJSON_IsNumber(v)) snprintf(buf, n, "–");
    else if (m == CELL_LAYERS_RATIO && v->valuedouble < 1)
        snprintf(buf, n, "%.3f (%+.1f%%)", v->valuedouble, 100 * (v->valuedouble - 1));
    else snprintf(buf, n, "%g", v->valuedouble);
}

/* every paper column the table shows, in order (each once) */
static int paper_columns(const Table *t, const char **names, int max)
{
    int n = 0;
    for (int c = 0; c < t->p->n_columns; c++) {
        const cJSON *pc;
        cJSON_ArrayForEach(pc, t->p->columns[c].paper) {
            int seen = 0;
            for (int k = 0; k < n; k++) seen |= !strcmp(names[k], pc->valuestring);
            if (!seen && n < max && cJSON_GetObjectItem(t->paper, pc->valuestring)) names[n++] = pc->valuestring;
        }
    }
    return n;
}

static void cell_text(const Table *t, int c, int r, CellMetric m, char *buf, size_t n)
{
    const CellPoint *pt = cell_point(t, c, r);
    if (!plan_cell(t->p, c, r)) snprintf(buf, n, " ");
    else if (!pt || pt->seeds_found == 0) snprintf(buf, n, "not yet run");
    else format_value(buf, n, pt, m);
}

static void render_md(TextBuf *o, const Table *t)
{
    const Plan *p = t->p;
    const char *pcols[16];
    int n_pcols = paper_columns(t, pcols, 16);
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    text_printf(o, "# %s\n\n", p->title);
    text_printf(o, "Scale **%s**. Drawn by `deediff run %s --scale %s` (or `deediff report`) from `%s` on %s; "
                "do not edit. Each measured cell is the mean ± sample standard deviation over its sampling "
                "seeds (the number of seeds is in its protocol, linked by [n]); the paper reports single "
                "numbers.\n\n", p->scale, p->path, p->scale, t->db, when);
    text_printf(o, "| Method |");
    for (int c = 0; c < p->n_columns; c++)
        for (int k = 0; k < t->n_metrics; k++)
            text_printf(o, " %s: %s |", p->columns[c].name,
                        t->metrics[k] == CELL_QUALITY ? quality_name(t, c) : metric_titles[t->metrics[k]]);
    for (int c = 0; c < n_pcols; c++)
        for (int k = 0; k < t->n_metrics; k++)
            if (t->metrics[k] != CELL_SECONDS && t->metrics[k] != CELL_COMPUTE_RATIO)
                text_printf(o, " *paper* %s: %s |", pcols[c],
                            t->metrics[k] == CELL_QUALITY ? t->paper_metric : metric_titles[t->metrics[k]]);
    text_printf(o, "\n|---|");
    for (int c = 0; c < p->n_columns * t->n_metrics; c++) text_printf(o, "---|");
    for (int c = 0; c < n_pcols; c++)
        for (int k = 0; k < t->n_metrics; k++)
            if (t->metrics[k] != CELL_SECONDS && t->metrics[k] != CELL_COMPUTE_RATIO) text_printf(o, "---|");
    text_printf(o, "\n");
    for (int r = 0; r < p->n_rows; r++) {
        text_printf(o, "| %s |", p->rows[r]);
        for (int c = 0; c < p->n_columns; c++)
            for (int k = 0; k < t->n_metrics; k++) {
                char buf[96];
                cell_text(t, c, r, t->metrics[k], buf, sizeof buf);
                const CellPoint *pt = cell_point(t, c, r);
                int pn = protocol_number(t, c, r);
                text_printf(o, " %s%s", buf, pt && pt->stale ? " (stale)" : "");
                if (k == 0 && pn) text_printf(o, " [[%d]](#p%d)", pn, pn);
                text_printf(o, " |");
            }
        for (int c = 0; c < n_pcols; c++)
            for (int k = 0; k < t->n_metrics; k++) {
                if (t->metrics[k] == CELL_SECONDS || t->metrics[k] == CELL_COMPUTE_RATIO) continue;
                char buf[64];
                format_paper(buf, sizeof buf, paper_value(t, pcols[c], p->rows[r], cell_metric_names[t->metrics[k]]),
                             t->metrics[k]);
                text_printf(o, " *%s* |", buf);
            }
        text_printf(o, "\n");
    }
    text_printf(o, "\n");
    for (int c = 0; c < p->n_columns; c++)
        if (p->columns[c].note) text_printf(o, "- **%s**: %s.\n", p->columns[c].name, p->columns[c].note);
    int proxy = 0;
    for (int c = 0; c < p->n_columns; c++) proxy |= strstr(quality_name(t, c), "FD-FMNIST") != NULL;
    if (proxy)
        text_printf(o, "- FD-FMNIST-N is this project's proxy: the Fréchet distance between N samples and the "
                       "Fashion-MNIST training set in the features of a small Fashion-MNIST classifier "
                       "(results/weights/fmnist_features.md). It is not FID and is not comparable with the paper's "
                       "FID.\n");
    text_printf(o, "- layers ratio: transformer blocks evaluated / blocks available, over every network "
                   "evaluation of every image; \"compute\" marks a pruned network's multiply-adds over the unpruned "
                   "one's (S-Pruning runs every block). GFLOPs/eval: 2 x multiply-adds actually spent per network "
                   "evaluation (exit heads and estimators included), the unit of the paper's GFLOPs column.\n");
    text_printf(o, "- *paper*: the numbers the DeeDiff paper publishes (%s), quoted for comparison; nothing in "
                   "them was measured here.\n", t->paper_metric);
    text_printf(o, "\n## Protocol of each measured cell\n\n");
    for (int c = 0; c < p->n_columns; c++)
        for (int r = 0; r < p->n_rows; r++) {
            const CellPoint *pt = cell_point(t, c, r);
            if (!pt || !pt->protocol) continue;
            int pn = protocol_number(t, c, r);
            char th[48] = "";
            if (!isnan(pt->threshold)) snprintf(th, sizeof th, ", threshold %g", pt->threshold);
            text_printf(o, "<a id=\"p%d\"></a>[%d] %s, %s%s, %d of %d seeds: %s\n\n", pn, pn, p->columns[c].name,
                        p->rows[r], th, pt->seeds_found, pt->seeds_wanted, pt->protocol);
        }
}

static void tex_escaped(TextBuf *o, const char *s)
{
    for (; *s; s++) {
        if (strchr("_%&#$", *s)) text_printf(o, "\\%c", *s);
        else if (!strncmp(s, "±", strlen("±"))) {
            text_printf(o, "$\\pm$");
            s += strlen("±") - 1;
        } else if (!strncmp(s, "–", strlen("–"))) {
            text_printf(o, "--");
            s += strlen("–") - 1;
        } else text_printf(o, "%c", *s);
    }
}

static void render_tex(TextBuf *o, const Table *t)
{
    const Plan *p = t->p;
    text_printf(o, "%% %s (scale %s): generated by deediff from the results database; do not edit.\n"
                   "%% Needs \\usepackage{booktabs}. Mean $\\pm$ sd over sampling seeds; the protocol of every "
                   "cell is in the Markdown file beside this one.\n", p->title, p->scale);
    text_printf(o, "\\begin{tabular}{l");
    for (int c = 0; c < p->n_columns * t->n_metrics; c++) text_printf(o, "c");
    text_printf(o, "}\n\\toprule\n");
    for (int c = 0; c < p->n_columns; c++) {
        text_printf(o, " & \\multicolumn{%d}{c}{", t->n_metrics);
        tex_escaped(o, p->columns[c].name);
        text_printf(o, "}");
    }
    text_printf(o, " \\\\\n");
    for (int c = 0; c < p->n_columns; c++)
        text_printf(o, "\\cmidrule(lr){%d-%d}", 2 + c * t->n_metrics, 1 + (c + 1) * t->n_metrics);
    text_printf(o, "\nMethod");
    for (int c = 0; c < p->n_columns; c++)
        for (int k = 0; k < t->n_metrics; k++) {
            text_printf(o, " & ");
            tex_escaped(o, t->metrics[k] == CELL_QUALITY ? quality_name(t, c) : metric_titles[t->metrics[k]]);
        }
    text_printf(o, " \\\\\n\\midrule\n");
    for (int r = 0; r < p->n_rows; r++) {
        tex_escaped(o, p->rows[r]);
        for (int c = 0; c < p->n_columns; c++)
            for (int k = 0; k < t->n_metrics; k++) {
                char buf[96];
                cell_text(t, c, r, t->metrics[k], buf, sizeof buf);
                const CellPoint *pt = cell_point(t, c, r);
                text_printf(o, " & ");
                tex_escaped(o, buf);
                if (pt && pt->stale) text_printf(o, " (stale)");
            }
        text_printf(o, " \\\\\n");
    }
    text_printf(o, "\\bottomrule\n\\end{tabular}\n");
}

static cJSON *stat_json(const CellStat *s)
{
    cJSON *j = cJSON_CreateObject();
    if (s->n) cJSON_AddNumberToObject(j, "mean", s->mean);
    else cJSON_AddNullToObject(j, "mean");
    if (s->n > 1 && !isnan(s->sd)) cJSON_AddNumberToObject(j, "sd", s->sd);
    else cJSON_AddNullToObject(j, "sd");
    cJSON_AddNumberToObject(j, "n", s->n);
    return j;
}

static char *render_json(const Table *t)
{
    const Plan *p = t->p;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "experiment", p->name);
    cJSON_AddStringToObject(root, "scale", p->scale);
    cJSON_AddStringToObject(root, "title", p->title);
    cJSON *cols = cJSON_AddArrayToObject(root, "columns");
    for (int c = 0; c < p->n_columns; c++) {
        cJSON *cj = cJSON_CreateObject();
        cJSON_AddStringToObject(cj, "name", p->columns[c].name);
        cJSON_AddItemToObject(cj, "stands_for", cJSON_Duplicate(p->columns[c].paper, 1));
        if (p->columns[c].note) cJSON_AddStringToObject(cj, "note", p->columns[c].note);
        cJSON_AddItemToArray(cols, cj);
    }
    cJSON *cells = cJSON_AddArrayToObject(root, "cells");
    for (int i = 0; i < t->n_cells; i++) {
        const CellResult *cr = &t->cells[i];
        for (int k = 0; k < cr->n_points; k++) {
            const CellPoint *pt = &cr->points[k];
            cJSON *cj = cJSON_CreateObject();
            cJSON_AddStringToObject(cj, "column", p->columns[cr->column].name);
            cJSON_AddStringToObject(cj, "row", p->rows[cr->row]);
            if (!isnan(pt->threshold)) cJSON_AddNumberToObject(cj, "threshold", pt->threshold);
            cJSON_AddStringToObject(cj, "quality_name", pt->quality_name);
            for (int m = 0; m < CELL_NUM_METRICS; m++) cJSON_AddItemToObject(cj, cell_metric_names[m], stat_json(&pt->m[m]));
            cJSON_AddNumberToObject(cj, "seeds_found", pt->seeds_found);
            cJSON_AddNumberToObject(cj, "seeds_wanted", pt->seeds_wanted);
            cJSON_AddBoolToObject(cj, "stale", pt->stale);
            if (pt->protocol) cJSON_AddStringToObject(cj, "protocol", pt->protocol);
            cJSON_AddItemToArray(cells, cj);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int report_table(Store *st, const Plan *p, const char *out_dir)
{
    Table t = {.p = p, .db = st->path};
    if (parse_metrics(&t)) return -1;
    const cJSON *paper = cJSON_GetObjectItem(p->doc, "paper");
    t.paper = cJSON_GetObjectItem(paper, "columns");
    const char *pm = cJSON_GetStringValue(cJSON_GetObjectItem(paper, "metric"));
    t.paper_metric = pm ? pm : "FID-50k";
    CellResult *cells;
    if (cells_measure(st, p, &cells, &t.n_cells)) return -1;
    t.cells = cells;
    TextBuf md, tex;
    text_init(&md);
    text_init(&tex);
    render_md(&md, &t);
    render_tex(&tex, &t);
    char *json = render_json(&t);
    char path[1024];
    report_path(path, sizeof path, p, out_dir, "tables", "md");
    int rc = make_parent_dirs(path);
    if (rc == 0) rc = text_write_atomic(&md, path);
    if (rc == 0) {
        report_path(path, sizeof path, p, out_dir, "tables", "tex");
        rc = text_write_atomic(&tex, path);
    }
    if (rc == 0) {
        report_path(path, sizeof path, p, out_dir, "tables", "json");
        rc = write_file_atomic(path, json, strlen(json));
    }
    if (rc == 0) {
        fwrite(md.data, 1, md.len, stdout);
        report_path(path, sizeof path, p, out_dir, "tables", "{md,tex,json}");
        printf("report: %s\n", path);
    }
    free(json);
    text_free(&md);
    text_free(&tex);
    cells_free(cells, t.n_cells);
    return rc;
}

int report_experiment(Store *st, const Plan *p, const char *out_dir)
{
    if (!strcmp(p->report, "table")) return report_table(st, p, out_dir);
    if (!strcmp(p->report, "figure")) return report_figure(st, p, out_dir);
    return err_set("%s: report: '%s' is not table or figure", p->path, p->report);
}
