/*
 * experiment.c: experiment files expanded into plans (experiment.h).
 *
 * Every error names the file and the JSON path of the field
 * ("experiments/table1.json: scales.tiny.setups.fmnist.rows.DeeDiff.model:
 * ..."), so a typo in an experiment is found without reading this code.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../cli/text_file.h"
#include "../store/json_file.h"
#include "experiment.h"

#define PLAN_MAX_ARGS 96

/* ---- small helpers ------------------------------------------------------------- */

static int file_exists(const char *path)
{
    struct stat sb;
    return path && path[0] && stat(path, &sb) == 0;
}

static const char *var_value(const PlanVars *v, const char *name, size_t len)
{
    for (int i = v ? v->n - 1 : -1; i >= 0; i--)
        if (strlen(v->name[i]) == len && !strncmp(v->name[i], name, len)) return v->value[i];
    char buf[128];
    if (len >= sizeof buf) return NULL;
    memcpy(buf, name, len);
    buf[len] = 0;
    const char *e = getenv(buf);
    return e && e[0] ? e : NULL;
}

int plan_vars_add(PlanVars *vars, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) return err_set("%s: expected NAME=VALUE", assignment);
    if (vars->n == PLAN_MAX_VARS) return err_set("%s: more than %d variables", assignment, PLAN_MAX_VARS);
    char *name = xmalloc((size_t)(eq - assignment) + 1);
    memcpy(name, assignment, (size_t)(eq - assignment));
    name[eq - assignment] = 0;
    vars->name[vars->n] = name;  /* lives as long as the process: a handful of bytes */
    vars->value[vars->n] = eq + 1;
    vars->n++;
    return 0;
}

/* s with every ${NAME} replaced; NULL when a variable is unset (*missing
   receives its name, the caller's to free) */
static char *expand_vars(const char *s, const PlanVars *vars, char **missing)
{
    TextBuf t;
    text_init(&t);
    text_printf(&t, "%s", "");
    for (const char *c = s; *c;) {
        const char *open = strstr(c, "${"), *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            text_printf(&t, "%s", c);
            break;
        }
        text_printf(&t, "%.*s", (int)(open - c), c);
        const char *v = var_value(vars, open + 2, (size_t)(close - open - 2));
        if (!v) {
            *missing = xmalloc((size_t)(close - open) + 1);
            snprintf(*missing, (size_t)(close - open) - 1, "%s", open + 2);
            text_free(&t);
            return NULL;
        }
        text_printf(&t, "%s", v);
        c = close + 1;
    }
    return t.data;
}

/* ---- building the plan ------------------------------------------------------------ */

typedef struct {
    Plan *p;
    const PlanVars *vars;
    int cap_runs, cap_cells;
    char **groups;         /* shard groups by name: a row's model file, else its label */
    char field[512];       /* the JSON path being read, for messages */
} Builder;

/* rows that evaluate the same model share a group, so the shard that
   trains it (a "before") is the shard that evaluates it */
static int group_of(Builder *b, const char *name)
{
    for (int i = 0; i < b->p->n_groups; i++)
        if (!strcmp(b->groups[i], name)) return i;
    b->groups = xrealloc(b->groups, (size_t)(b->p->n_groups + 1) * sizeof *b->groups);
    b->groups[b->p->n_groups] = xstrdup(name);
    return b->p->n_groups++;
}

static int bad(Builder *b, const char *what)
{
    return err_set("%s: %s: %s", b->p->path, b->field, what);
}

static void field(Builder *b, const char *fmt, ...) DD_PRINTF(2, 3);
static void field(Builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->field, sizeof b->field, fmt, ap);
    va_end(ap);
}

/* a string field with ${} expanded; 1 when a variable is missing (and
   *missing set), -1 on a non-string */
static int expanded(Builder *b, const cJSON *j, char **out, char **missing)
{
    if (!cJSON_IsString(j)) return bad(b, "expected a string");
    *out = expand_vars(j->valuestring, b->vars, missing);
    return *out ? 0 : 1;
}

/* does every "requires" entry exist (files) and resolve (variables)? *why
   receives the first failure, for the column's note */
static int setup_available(Builder *b, const char *setup_name, const cJSON *setup, char *why, size_t n)
{
    const cJSON *req = cJSON_GetObjectItem(setup, "requires");
    const cJSON *r;
    cJSON_ArrayForEach(r, req) {
        char *path = NULL, *missing = NULL;
        field(b, "scales.%s.setups.%s.requires", b->p->scale, setup_name);
        int rc = expanded(b, r, &path, &missing);
        if (rc < 0) return -1;
        if (rc == 1) {
            snprintf(why, n, "${%s} is not set (give it as %s=VALUE after the experiment file, or in the "
                     "environment)", missing, missing);
            free(missing);
            return 0;
        }
        if (!file_exists(path)) {
            snprintf(why, n, "%s does not exist", path);
            free(path);
            return 0;
        }
        free(path);
    }
    return 1;
}

static int add_run(Builder *b, char **argv, int argc, char *creates, char *label, int group)
{
    Plan *p = b->p;
    for (int i = 0; i < p->n_runs; i++) {       /* one run per command line */
        PlanRun *r = &p->runs[i];
        if (r->argc != argc) continue;
        int same = 1;
        for (int k = 0; k < argc && same; k++) same = !strcmp(r->argv[k], argv[k]);
        if (!same) continue;
        for (int k = 0; k < argc; k++) free(argv[k]);
        free(argv);
        free(creates);
        free(label);
        return i;
    }
    if (p->n_runs == b->cap_runs) {
        b->cap_runs = b->cap_runs ? 2 * b->cap_runs : 16;
        p->runs = xrealloc(p->runs, (size_t)b->cap_runs * sizeof *p->runs);
    }
    p->runs[p->n_runs] = (PlanRun){.argv = argv, .argc = argc, .creates = creates, .label = label,
                                   .group = group, .threshold = NAN, .seed = -1};
    return p->n_runs++;
}

/* the command line of a JSON array of strings ("run": [...]); 1: a variable is missing */
static int command_argv(Builder *b, const cJSON *arr, char ***argv, int *argc, char **missing)
{
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 1 || n > PLAN_MAX_ARGS) return bad(b, "expected a command: [\"eval\", \"--n\", ...]");
    char **v = xcalloc((size_t)n + 1, sizeof *v);
    for (int i = 0; i < n; i++) {
        int rc = expanded(b, cJSON_GetArrayItem(arr, i), &v[i], missing);
        if (rc) {
            for (int k = 0; k < i; k++) free(v[k]);
            free(v);
            return rc;
        }
    }
    *argv = v;
    *argc = n;
    return 0;
}

static void append_flag(char **argv, int *argc, const char *flag, const cJSON *value, char **missing,
                        Builder *b, int *rc)
{
    if (*rc) return;
    char num[64], *text = NULL;
    if (cJSON_IsNumber(value)) {
        snprintf(num, sizeof num, "%.10g", value->valuedouble);
        text = xstrdup(num);
    } else if (cJSON_IsBool(value)) {
        text = xstrdup(cJSON_IsTrue(value) ? "true" : "false");
    } else if ((*rc = expanded(b, value, &text, missing))) {
        return;
    }
    if (*argc + 2 > PLAN_MAX_ARGS) {
        free(text);
        *rc = bad(b, "too many eval options");
        return;
    }
    char f[64];
    snprintf(f, sizeof f, "--%s", flag);
    argv[(*argc)++] = xstrdup(f);
    argv[(*argc)++] = text;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* eval options: layers[3] are the scale's "eval", the setup's, the row's
   (objects or NULL), in that order of precedence (later wins); flags in name
   order, so a file's key order does not change a run's key */
static cJSON *merged_eval(const cJSON *const layers[3])
{
    cJSON *m = cJSON_CreateObject();
    for (int l = 0; l < 3; l++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, layers[l]) {
            cJSON_DeleteItemFromObject(m, it->string);
            cJSON_AddItemToObject(m, it->string, cJSON_Duplicate(it, 1));
        }
    }
    return m;
}

/* one eval run: eval --model M [--method X] [--threshold T] --seed S, then
   the merged options in name order */
static int eval_run(Builder *b, const char *col, const char *row_name, const cJSON *row, const cJSON *opts,
                    const cJSON *threshold, long seed, int group, int *index, char **missing)
{
    char **argv = xcalloc(PLAN_MAX_ARGS + 1, sizeof *argv);
    int argc = 0, rc = 0;
    argv[argc++] = xstrdup("eval");
    append_flag(argv, &argc, "model", cJSON_GetObjectItem(row, "model"), missing, b, &rc);
    if (cJSON_GetObjectItem(row, "method"))
        append_flag(argv, &argc, "method", cJSON_GetObjectItem(row, "method"), missing, b, &rc);
    if (threshold) append_flag(argv, &argc, "threshold", threshold, missing, b, &rc);
    cJSON *seed_j = cJSON_CreateNumber((double)seed);
    append_flag(argv, &argc, "seed", seed_j, missing, b, &rc);
    cJSON_Delete(seed_j);
    int n_keys = cJSON_GetArraySize(opts);
    char **keys = xcalloc((size_t)n_keys + 1, sizeof *keys);
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, opts) keys[k++] = it->string;
    qsort(keys, (size_t)n_keys, sizeof *keys, cmp_str);
    for (k = 0; k < n_keys && !rc; k++) {
        if (!strcmp(keys[k], "seed") || !strcmp(keys[k], "model") || !strcmp(keys[k], "db") ||
            !strcmp(keys[k], "threads"))
            rc = bad(b, "eval options may not set seed, model, db or threads (the runner does)");
        else append_flag(argv, &argc, keys[k], cJSON_GetObjectItem(opts, keys[k]), missing, b, &rc);
    }
    free(keys);
    if (rc) {
        for (int i = 0; i < argc; i++) free(argv[i]);
        free(argv);
        return rc;
    }
    char label[512], tpart[48] = "";
    if (threshold) snprintf(tpart, sizeof tpart, "/T%g", threshold->valuedouble);
    snprintf(label, sizeof label, "%s/%s%s/seed%ld", col, row_name, tpart, seed);
    *index = add_run(b, argv, argc, NULL, xstrdup(label), group);
    PlanRun *r = &b->p->runs[*index];
    r->is_eval = 1;
    r->threshold = threshold ? threshold->valuedouble : NAN;
    r->seed = seed;
    return 0;
}

static void cell_add(Builder *b, int column, int row, int run)
{
    Plan *p = b->p;
    PlanCell *c = NULL;
    for (int i = 0; i < p->n_cells; i++)
        if (p->cells[i].column == column && p->cells[i].row == row) c = &p->cells[i];
    if (!c) {
        if (p->n_cells == b->cap_cells) {
            b->cap_cells = b->cap_cells ? 2 * b->cap_cells : 16;
            p->cells = xrealloc(p->cells, (size_t)b->cap_cells * sizeof *p->cells);
        }
        c = &p->cells[p->n_cells++];
        *c = (PlanCell){.column = column, .row = row};
    }
    for (int i = 0; i < c->n_runs; i++)
        if (c->runs[i] == run) return;
    c->runs = xrealloc(c->runs, (size_t)(c->n_runs + 1) * sizeof *c->runs);
    c->runs[c->n_runs++] = run;
}

static int row_index(const Plan *p, const char *name)
{
    for (int i = 0; i < p->n_rows; i++)
        if (!strcmp(p->rows[i], name)) return i;
    return -1;
}

/* the runs of one row of one column's setup */
static int expand_row(Builder *b, int column, const char *setup_name, const cJSON *setup, const cJSON *row)
{
    Plan *p = b->p;
    const char *row_name = row->string;
    int ri = row_index(p, row_name);
    field(b, "scales.%s.setups.%s.rows.%s", p->scale, setup_name, row_name);
    if (ri < 0) return bad(b, "not one of the experiment's \"rows\"");
    char *missing = NULL, *model = NULL;
    int rc = 0;
    char group_name[512];
    snprintf(group_name, sizeof group_name, "%s/%s", p->columns[column].name, row_name);
    if (cJSON_GetObjectItem(row, "model")) {
        if ((rc = expanded(b, cJSON_GetObjectItem(row, "model"), &model, &missing))) goto fail;
        snprintf(group_name, sizeof group_name, "%s", model);
        free(model);
    }
    int group = group_of(b, group_name);
    const cJSON *before = cJSON_GetObjectItem(row, "before"), *bj;
    cJSON_ArrayForEach(bj, before) {
        field(b, "scales.%s.setups.%s.rows.%s.before", p->scale, setup_name, row_name);
        char **argv, *creates = NULL;
        int argc;
        if (!cJSON_IsString(cJSON_GetObjectItem(bj, "creates")))
            return bad(b, "each \"before\" command needs \"creates\": the file it writes");
        if ((rc = expanded(b, cJSON_GetObjectItem(bj, "creates"), &creates, &missing))) goto fail;
        if ((rc = command_argv(b, cJSON_GetObjectItem(bj, "run"), &argv, &argc, &missing))) {
            free(creates);
            goto fail;
        }
        char label[512];
        snprintf(label, sizeof label, "%s/%s/before:%s", p->columns[column].name, row_name, argv[0]);
        int i = add_run(b, argv, argc, creates, xstrdup(label), group);
        p->runs[i].is_before = 1;
    }
    /* the row itself again (its "before" commands moved the path on) */
    field(b, "scales.%s.setups.%s.rows.%s", p->scale, setup_name, row_name);
    const cJSON *run = cJSON_GetObjectItem(row, "run");
    if (run) {
        char **argv, *creates = NULL;
        int argc;
        if (cJSON_IsString(cJSON_GetObjectItem(row, "creates")) &&
            (rc = expanded(b, cJSON_GetObjectItem(row, "creates"), &creates, &missing)))
            goto fail;
        if ((rc = command_argv(b, run, &argv, &argc, &missing))) {
            free(creates);
            goto fail;
        }
        char label[512];
        snprintf(label, sizeof label, "%s/%s", p->columns[column].name, row_name);
        cell_add(b, column, ri, add_run(b, argv, argc, creates, xstrdup(label), group));
        return 0;
    }
    if (!cJSON_GetObjectItem(row, "model")) return bad(b, "a row needs \"model\" (an eval) or \"run\" (a command)");
    const cJSON *seeds = cJSON_GetObjectItem(row, "seeds"), *s;
    int row_seeds = seeds != NULL;
    if (!seeds) seeds = cJSON_GetObjectItem(b->p->scale_doc, "seeds");
    const cJSON *th = cJSON_GetObjectItem(row, "threshold");
    int n_th = cJSON_IsArray(th) ? cJSON_GetArraySize(th) : 1;
    int seeds_ok = cJSON_IsArray(seeds) && cJSON_GetArraySize(seeds) >= 1;
    /* whole numbers a long holds exactly (the eval's --seed) */
    cJSON_ArrayForEach(s, seeds) seeds_ok &= cJSON_IsNumber(s) && s->valuedouble >= 0 &&
                                             s->valuedouble <= 0x1p53 && s->valuedouble == floor(s->valuedouble);
    if (!seeds_ok) {
        if (row_seeds) field(b, "scales.%s.setups.%s.rows.%s.seeds", p->scale, setup_name, row_name);
        else field(b, "scales.%s.seeds", p->scale);
        return bad(b, "expected a list of sampling seeds (whole numbers from 0 to 2^53)");
    }
    for (int t = 0; t < n_th; t++) {
        const cJSON *thr = cJSON_IsArray(th) ? cJSON_GetArrayItem(th, t) : th;
        if (thr && !cJSON_IsNumber(thr)) return bad(b, "threshold: expected a number or a list of numbers");
    }
    const cJSON *evals[] = {cJSON_GetObjectItem(p->scale_doc, "eval"), cJSON_GetObjectItem(setup, "eval"),
                            cJSON_GetObjectItem(row, "eval")};
    for (int l = 0; l < 3; l++)
        if (evals[l] && !cJSON_IsObject(evals[l])) {
            if (l == 0) field(b, "scales.%s.eval", p->scale);
            else if (l == 1) field(b, "scales.%s.setups.%s.eval", p->scale, setup_name);
            else field(b, "scales.%s.setups.%s.rows.%s.eval", p->scale, setup_name, row_name);
            return bad(b, "expected an object of eval options");
        }
    cJSON *opts = merged_eval(evals);
    for (int t = 0; t < n_th && !rc; t++) {
        const cJSON *thr = cJSON_IsArray(th) ? cJSON_GetArrayItem(th, t) : th;
        cJSON_ArrayForEach(s, seeds) {
            int idx;
            if ((rc = eval_run(b, p->columns[column].name, row_name, row, opts, thr, (long)s->valuedouble,
                               group, &idx, &missing)))
                break;
            cell_add(b, column, ri, idx);
        }
    }
    cJSON_Delete(opts);
fail:
    if (rc == 1) {
        err_set("%s: %s: ${%s} is not set (give it as %s=VALUE after the experiment file, or in the environment)", p->path,
                b->field, missing, missing);
        rc = -1;
    }
    free(missing);
    return rc;
}

/* resolves the columns (stand-ins merged) and expands each one's rows */
static int expand_columns(Builder *b)
{
    Plan *p = b->p;
    const cJSON *cols = cJSON_GetObjectItem(p->scale_doc, "columns");
    const cJSON *setups = cJSON_GetObjectItem(p->scale_doc, "setups");
    field(b, "scales.%s.columns", p->scale);
    if (!cJSON_IsArray(cols) || cJSON_GetArraySize(cols) < 1) return bad(b, "expected a list of columns");
    int n = cJSON_GetArraySize(cols);
    p->columns = xcalloc((size_t)n, sizeof *p->columns);
    const cJSON *c;
    int ci = 0;
    cJSON_ArrayForEach(c, cols) {
        field(b, "scales.%s.columns[%d]", p->scale, ci++);
        const cJSON *name = cJSON_GetObjectItem(c, "name"), *setup = cJSON_GetObjectItem(c, "setup"),
                    *alt = cJSON_GetObjectItem(c, "else");
        if (!cJSON_IsString(name) || !cJSON_IsString(setup)) return bad(b, "expected {\"name\", \"setup\"[, \"else\"]}");
        const char *use = setup->valuestring;
        char why[512] = "";
        const cJSON *sj = cJSON_GetObjectItem(setups, use);
        int ok = sj ? setup_available(b, use, sj, why, sizeof why) : 0;
        if (ok < 0) return -1;
        if (!sj) snprintf(why, sizeof why, "no %s setup at this scale", use);
        if (!ok) {
            if (!cJSON_IsString(alt)) {
                field(b, "scales.%s.columns[%d]", p->scale, ci - 1);
                return bad(b, why);
            }
            use = alt->valuestring;
            sj = cJSON_GetObjectItem(setups, use);
            if (!sj) return bad(b, "its \"else\" setup is not defined");
        }
        /* columns on the same setup are one column */
        PlanColumn *col = NULL;
        for (int k = 0; k < p->n_columns; k++)
            if (!strcmp(p->columns[k].setup, use)) col = &p->columns[k];
        if (!col) {
            col = &p->columns[p->n_columns++];
            const cJSON *label = cJSON_GetObjectItem(sj, "label");
            col->name = xstrdup(ok ? name->valuestring : cJSON_IsString(label) ? label->valuestring : use);
            col->setup = xstrdup(use);
            col->paper = cJSON_CreateArray();
        }
        cJSON_AddItemToArray(col->paper, cJSON_CreateString(name->valuestring));
        if (!ok) {
            char note[1024];
            snprintf(note, sizeof note, "%s%s%s stands in for %s (%s)", col->note ? col->note : "",
                     col->note ? "; " : "", col->name, name->valuestring, why);
            free(col->note);
            col->note = xstrdup(note);
        }
    }
    for (int k = 0; k < p->n_columns; k++) {
        const cJSON *sj = cJSON_GetObjectItem(setups, p->columns[k].setup);
        const cJSON *rows = cJSON_GetObjectItem(sj, "rows"), *r;
        field(b, "scales.%s.setups.%s.rows", p->scale, p->columns[k].setup);
        if (!cJSON_IsObject(rows)) return bad(b, "expected an object of rows");
        cJSON_ArrayForEach(r, rows)
            if (expand_row(b, k, p->columns[k].setup, sj, r)) return -1;
    }
    return 0;
}

/* A row's "before" commands come ahead of its own runs, but another row or
   column may evaluate the same model (same group) earlier in the file
   without repeating them ("DeeDiff w/o EE" before "DeeDiff", which trains
   the model). The runner follows plan order, so every "before" is moved,
   in its order, ahead of the first other run of its group; the cells'
   indices follow. */
static void befores_first(Plan *p)
{
    int n = p->n_runs, k = 0;
    int *order = xcalloc((size_t)n + 1, sizeof *order), *new_index = xcalloc((size_t)n + 1, sizeof *new_index);
    char *placed = xcalloc((size_t)n + 1, 1);
    for (int i = 0; i < n; i++) {
        if (placed[i]) continue;
        for (int j = i + 1; j < n && !p->runs[i].is_before; j++)
            if (!placed[j] && p->runs[j].is_before && p->runs[j].group == p->runs[i].group) {
                order[k++] = j;
                placed[j] = 1;
            }
        order[k++] = i;
        placed[i] = 1;
    }
    PlanRun *runs = xcalloc((size_t)n + 1, sizeof *runs);
    for (k = 0; k < n; k++) {
        runs[k] = p->runs[order[k]];
        new_index[order[k]] = k;
    }
    if (n) memcpy(p->runs, runs, (size_t)n * sizeof *runs);
    for (int c = 0; c < p->n_cells; c++)
        for (int r = 0; r < p->cells[c].n_runs; r++) p->cells[c].runs[r] = new_index[p->cells[c].runs[r]];
    free(runs);
    free(placed);
    free(new_index);
    free(order);
}

static char *dup_string(Builder *b, const cJSON *obj, const char *key, const char *fallback)
{
    const cJSON *j = cJSON_GetObjectItem(obj, key);
    if (cJSON_IsString(j)) return xstrdup(j->valuestring);
    if (!fallback) {
        field(b, "%s", key);
        bad(b, "expected a string");
        return NULL;
    }
    return xstrdup(fallback);
}

int plan_load(Plan *p, const char *path, const char *scale, const PlanVars *vars)
{
    memset(p, 0, sizeof *p);
    p->path = xstrdup(path);
    p->scale = xstrdup(scale);
    Builder b = {.p = p, .vars = vars};
    if (!(p->doc = json_read_file(path, "the experiment file"))) goto fail;
    if (!(p->name = dup_string(&b, p->doc, "experiment", NULL))) goto fail;
    p->title = dup_string(&b, p->doc, "title", p->name);
    p->report = dup_string(&b, p->doc, "report", "table");
    const cJSON *rows = cJSON_GetObjectItem(p->doc, "rows"), *r;
    field(&b, "rows");
    if (!cJSON_IsArray(rows) || cJSON_GetArraySize(rows) < 1) {
        bad(&b, "expected the list of row names, in report order");
        goto fail;
    }
    p->rows = xcalloc((size_t)cJSON_GetArraySize(rows), sizeof *p->rows);
    cJSON_ArrayForEach(r, rows) {
        if (!cJSON_IsString(r)) {
            bad(&b, "expected strings");
            goto fail;
        }
        p->rows[p->n_rows++] = xstrdup(r->valuestring);
    }
    p->scale_doc = cJSON_GetObjectItem(cJSON_GetObjectItem(p->doc, "scales"), scale);
    field(&b, "scales.%s", scale);
    if (!cJSON_IsObject(p->scale_doc)) {
        bad(&b, "this experiment has no such scale");
        goto fail;
    }
    const cJSON *unavailable = cJSON_GetObjectItem(p->scale_doc, "unavailable");
    if (cJSON_IsString(unavailable)) {
        err_set("%s: scale %s cannot run yet: %s", path, scale, unavailable->valuestring);
        goto fail;
    }
    int rc = expand_columns(&b);
    for (int i = 0; i < p->n_groups; i++) free(b.groups[i]);
    free(b.groups);
    if (rc) goto fail;
    befores_first(p);
    return 0;
fail:
    plan_free(p);
    return -1;
}

int plan_load_args(Plan *p, const char *cmd, const char *const *pos, int npos, const char *scale)
{
    if (npos < 1) return err_set("%s: the experiment file is missing (deediff %s experiments/table1.json)", cmd, cmd);
    PlanVars vars = {0};
    for (int i = 1; i < npos; i++)
        if (plan_vars_add(&vars, pos[i])) return -1;
    return plan_load(p, pos[0], scale, &vars);
}

void plan_free(Plan *p)
{
    for (int i = 0; i < p->n_columns; i++) {
        free(p->columns[i].name);
        free(p->columns[i].setup);
        free(p->columns[i].note);
        cJSON_Delete(p->columns[i].paper);
    }
    for (int i = 0; i < p->n_runs; i++) {
        for (int k = 0; k < p->runs[i].argc; k++) free(p->runs[i].argv[k]);
        free(p->runs[i].argv);
        free(p->runs[i].creates);
        free(p->runs[i].label);
    }
    for (int i = 0; i < p->n_cells; i++) free(p->cells[i].runs);
    for (int i = 0; i < p->n_rows; i++) free(p->rows[i]);
    free(p->columns);
    free(p->runs);
    free(p->cells);
    free(p->rows);
    free(p->path);
    free(p->name);
    free(p->scale);
    free(p->title);
    free(p->report);
    cJSON_Delete(p->doc);
    memset(p, 0, sizeof *p);
}

const PlanCell *plan_cell(const Plan *p, int column, int row)
{
    for (int i = 0; i < p->n_cells; i++)
        if (p->cells[i].column == column && p->cells[i].row == row) return &p->cells[i];
    return NULL;
}

static int label_matches(const char *label, const char *only)
{
    if (!only || !only[0]) return 1;
    const char *s = only;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n) {
            char item[256];
            snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), s);
            if (strstr(label, item)) return 1;
        }
        s += n;
        if (*s == ',') s++;
    }
    return 0;
}

int plan_run_taken(const Plan *p, int i, const char *only, int shard_k, int shard_n)
{
    const PlanRun *r = &p->runs[i];
    if (shard_n > 0 && r->group % shard_n != shard_k) return 0;
    if (label_matches(r->label, only)) return 1;
    if (!r->is_before) return 0;
    for (int k = 0; k < p->n_runs; k++)
        if (p->runs[k].group == r->group && !p->runs[k].is_before && label_matches(p->runs[k].label, only))
            return 1;
    return 0;
}
