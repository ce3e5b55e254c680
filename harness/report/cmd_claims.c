/*
 * cmd_claims.c: `deediff claims`: paper/CLAIMS.md, every quantitative claim
 * of the paper (experiments/claims.json) next to what the database says at
 * each scale, with a verdict computed by the claim's stated rule:
 * reproduced, not reproduced, or not yet run. No verdict is written by hand.
 *
 * A rule is a comparison or {"all": [rules]}:
 *   {"at_least" | "at_most": VALUE, "bound": X}               VALUE >= X / <= X
 *   {"at_least" | "at_most": VALUE, "than": VALUE, "factor": F}  VALUE >= F x other / <= F x other
 * where VALUE = {"row": ROW, "metric": quality | layers_ratio |
 * layer_reduction | compute_ratio | gflops}, read from the claim's column
 * (or the stand-in that runs it at that scale) as the mean over seeds.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../cli/text_file.h"
#include "../runner/experiment.h"
#include "../store/json_file.h"
#include "../store/store.h"
#include "cells.h"

typedef struct {
    const Plan *p;
    const CellResult *cells;
    int n_cells, column;
    TextBuf *seen;     /* the values the rule read, for the page */
    int missing;       /* a value the rule needs is not measured */
    int stale;         /* a value comes from runs made by other code */
} Eval;

static double value_of(Eval *e, const cJSON *ref)
{
    const char *row = cJSON_GetStringValue(cJSON_GetObjectItem(ref, "row"));
    const char *metric = cJSON_GetStringValue(cJSON_GetObjectItem(ref, "metric"));
    int r = -1;
    for (int i = 0; row && i < e->p->n_rows; i++)
        if (!strcmp(e->p->rows[i], row)) r = i;
    const CellResult *c = r < 0 ? NULL : cells_find(e->cells, e->n_cells, e->column, r);
    const CellPoint *pt = c && c->n_points ? &c->points[0] : NULL;
    double v = NAN;
    const char *shown = metric ? metric : "?";
    if (pt && metric) {
        if (!strcmp(metric, "layer_reduction")) v = 1 - pt->m[CELL_LAYERS_RATIO].mean;
        for (int m = 0; m < CELL_NUM_METRICS; m++)
            if (!strcmp(metric, cell_metric_names[m])) v = pt->m[m].mean;
        if (!strcmp(metric, "quality") && pt->quality_name[0]) shown = pt->quality_name;
    }
    if (pt && pt->stale) e->stale = 1;
    if (isnan(v)) e->missing = 1;
    else if (!strcmp(shown, "layer_reduction")) text_printf(e->seen, "%s%s: layers -%.1f%%", e->seen->len ? "; " : "", row, 100 * v);
    else text_printf(e->seen, "%s%s: %s %.4g", e->seen->len ? "; " : "", row, shown, v);
    return v;
}

/* 1: holds, 0: does not, -1: bad rule (err_msg) */
static int holds(Eval *e, const cJSON *rule, const char *path)
{
    const cJSON *all = cJSON_GetObjectItem(rule, "all");
    if (all) {
        int ok = 1;
        const cJSON *r;
        cJSON_ArrayForEach(r, all) {
            int h = holds(e, r, path);
            if (h < 0) return -1;
            ok &= h;
        }
        return ok;
    }
    const cJSON *least = cJSON_GetObjectItem(rule, "at_least"), *most = cJSON_GetObjectItem(rule, "at_most");
    const cJSON *bound = cJSON_GetObjectItem(rule, "bound"), *than = cJSON_GetObjectItem(rule, "than");
    if (!least == !most || (!cJSON_IsNumber(bound) && !than))
        return err_set("%s: rule: expected {\"at_least\"|\"at_most\": VALUE, \"bound\": X | \"than\": VALUE, "
                       "\"factor\": F} or {\"all\": [...]}", path);
    double a = value_of(e, least ? least : most), b;
    if (than) {
        const cJSON *f = cJSON_GetObjectItem(rule, "factor");
        b = (cJSON_IsNumber(f) ? f->valuedouble : 1.0) * value_of(e, than);
    } else {
        b = bound->valuedouble;
    }
    return least ? a >= b : a <= b;
}

/* the claim's column at this scale: the plan column standing for it */
static int find_column(const Plan *p, const char *name)
{
    for (int c = 0; c < p->n_columns; c++) {
        const cJSON *s;
        cJSON_ArrayForEach(s, p->columns[c].paper)
            if (!strcmp(s->valuestring, name)) return c;
    }
    return -1;
}

/* one claim at one scale: a verdict and what it read */
static int judge(Store *st, const cJSON *claim, const char *scale, const char *path, TextBuf *out)
{
    const char *exp = cJSON_GetStringValue(cJSON_GetObjectItem(claim, "experiment"));
    const char *col = cJSON_GetStringValue(cJSON_GetObjectItem(claim, "column"));
    const cJSON *rule = cJSON_GetObjectItem(claim, "rule");
    if (!exp || !col || !rule) return err_set("%s: claims: each needs experiment, column and rule", path);
    Plan p;
    if (plan_load(&p, exp, scale, NULL)) {
        const char *why = err_msg(), *after = strstr(why, ": ");
        text_printf(out, "not yet run: %s", after && !strncmp(why, exp, strlen(exp)) ? after + 2 : why);
        return 0;
    }
    CellResult *cells;
    int n_cells;
    if (cells_measure(st, &p, &cells, &n_cells)) {
        plan_free(&p);
        return -1;
    }
    TextBuf seen;
    text_init(&seen);
    Eval e = {.p = &p, .cells = cells, .n_cells = n_cells, .column = find_column(&p, col), .seen = &seen};
    int h = e.column < 0 ? 0 : holds(&e, rule, path);
    if (h >= 0) {
        if (e.column < 0) text_printf(out, "not yet run (no %s column at this scale)", col);
        else if (e.missing) text_printf(out, "**not yet run**%s%s", seen.len ? ": " : "", seen.len ? seen.data : "");
        else text_printf(out, "**%s**: %s", h ? "reproduced" : "not reproduced", seen.data);
        if (e.column >= 0 && seen.len && strcmp(p.columns[e.column].name, col))
            text_printf(out, " (%s stands in)", p.columns[e.column].name);
        if (e.stale) text_printf(out, " (stale: made by other code; rerun)");
    }
    text_free(&seen);
    cells_free(cells, n_cells);
    plan_free(&p);
    return h < 0 ? -1 : 0;
}

static void rule_text(TextBuf *t, const cJSON *rule)
{
    const cJSON *all = cJSON_GetObjectItem(rule, "all");
    if (all) {
        const cJSON *r;
        int first = 1;
        cJSON_ArrayForEach(r, all) {
            text_printf(t, "%s", first ? "" : " and ");
            rule_text(t, r);
            first = 0;
        }
        return;
    }
    const cJSON *least = cJSON_GetObjectItem(rule, "at_least"), *v = least ? least : cJSON_GetObjectItem(rule, "at_most");
    const cJSON *than = cJSON_GetObjectItem(rule, "than"), *f = cJSON_GetObjectItem(rule, "factor");
    text_printf(t, "%s %s %s ", cJSON_GetStringValue(cJSON_GetObjectItem(v, "metric")),
                cJSON_GetStringValue(cJSON_GetObjectItem(v, "row")), least ? ">=" : "<=");
    if (than) text_printf(t, "%g x %s %s", cJSON_IsNumber(f) ? f->valuedouble : 1.0,
                          cJSON_GetStringValue(cJSON_GetObjectItem(than, "metric")),
                          cJSON_GetStringValue(cJSON_GetObjectItem(than, "row")));
    else text_printf(t, "%g", cJSON_GetNumberValue(cJSON_GetObjectItem(rule, "bound")));
}

int cmd_claims(int argc, char **argv)
{
    const char *claims_path = "experiments/claims.json", *db = STORE_DEFAULT_PATH, *output = "paper/CLAIMS.md";
    CliOpt opts[] = {
        {"--claims", "C.json", "the claims and their rules (default experiments/claims.json)", &claims_path, NULL, 0},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--output", "F.md", "the page (default paper/CLAIMS.md)", &output, NULL, 0},
    };
    int rc = cli_parse("claims", "[--claims C.json] [--db PATH] [--output F.md]",
                       "Writes the paper's quantitative claims with the paper's numbers, ours at every scale run so "
                       "far and a verdict\nfrom each claim's stated rule (reproduced / not reproduced / not yet run), "
                       "all drawn from the database.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    cJSON *doc = json_read_file(claims_path, "the claims file");
    if (!doc) return -1;
    const cJSON *claims = cJSON_GetObjectItem(doc, "claims"), *scales = cJSON_GetObjectItem(doc, "scales");
    if (!cJSON_IsArray(claims) || !cJSON_IsArray(scales)) {
        cJSON_Delete(doc);
        return err_set("%s: expected {\"scales\": [...], \"claims\": [...]}", claims_path);
    }
    Store st;
    if (store_open(&st, db)) {
        cJSON_Delete(doc);
        return -1;
    }
    TextBuf md;
    text_init(&md);
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    text_printf(&md, "# The paper's claims, checked\n\nDrawn by `deediff claims` (`make paper`) from `%s` and "
                "`%s` on %s; do not edit. Each verdict is computed by the claim's rule from the cell means of its "
                "experiment at that scale; the rules are stated below each claim. The smoke scale is a pipeline "
                "check (a few images, a few steps), not evidence. At tiny scale Fashion-MNIST stands in for the "
                "paper's datasets and the quality is FD-FMNIST (a proxy, not FID).\n\n", db, claims_path, when);
    text_printf(&md, "| claim | the paper |");
    const cJSON *s;
    cJSON_ArrayForEach(s, scales) text_printf(&md, " %s scale |", s->valuestring);
    text_printf(&md, "\n|---|---|");
    cJSON_ArrayForEach(s, scales) text_printf(&md, "---|");
    text_printf(&md, "\n");
    const cJSON *c;
    TextBuf rules;
    text_init(&rules);
    cJSON_ArrayForEach(c, claims) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(c, "id"));
        text_printf(&md, "| %s <a href=\"#%s\">[rule]</a> | %s |", cJSON_GetStringValue(cJSON_GetObjectItem(c, "text")),
                    id ? id : "", cJSON_GetStringValue(cJSON_GetObjectItem(c, "paper")));
        cJSON_ArrayForEach(s, scales) {
            text_printf(&md, " ");
            if ((rc = judge(&st, c, s->valuestring, claims_path, &md))) break;
            text_printf(&md, " |");
        }
        if (rc) break;
        text_printf(&md, "\n");
        text_printf(&rules, "- <a id=\"%s\"></a>`%s` (%s, column %s): ", id ? id : "", id ? id : "?",
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "experiment")),
                    cJSON_GetStringValue(cJSON_GetObjectItem(c, "column")));
        rule_text(&rules, cJSON_GetObjectItem(c, "rule"));
        text_printf(&rules, "\n");
    }
    if (rc == 0) {
        text_printf(&md, "\n## Rules\n\nlayer_reduction = 1 - layers ratio; every value is the mean over the "
                         "cell's seeds.\n\n%s", rules.data ? rules.data : "");
        rc = make_parent_dirs(output);
        if (rc == 0) rc = text_write_atomic(&md, output);
        if (rc == 0) {
            fwrite(md.data, 1, md.len, stdout);
            printf("claims: %s\n", output);
        }
    }
    text_free(&rules);
    text_free(&md);
    store_close(&st);
    cJSON_Delete(doc);
    return rc;
}
