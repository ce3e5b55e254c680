/*
 * cmd_regress.c: `deediff regress EXPERIMENT...`: regression tracking. Runs
 * the smoke scale of each experiment (runner.h: only what the database does
 * not hold yet), then compares every measured metric of every cell with
 * results/baseline.json and stores each comparison (store_regress.h).
 * Exit status 1 on a regression, naming each metric that moved and by how
 * much; 2 on bad input.
 *
 * The rule, stated in the baseline file itself ("tolerances"):
 *   - on the CPU model, GEMM kernel and thread count the baseline was
 *     recorded with, every number must come back to within relative 1e-6
 *     ("same_machine"): OpenBLAS's path repeats bit for bit, but oneDNN's
 *     threaded GEMM does not fix its summation order from one process to the
 *     next (measured: FD moved by 7e-8 relative between two runs);
 *   - elsewhere, other kernels round differently, an image may leave at
 *     another block, and the numbers move a little: each metric has its own
 *     tolerance (relative for the distance and GFLOPs, absolute for ratios).
 * Timings are not compared: they measure the machine, not the code.
 *
 *   --rebaseline       record the current numbers as the new baseline (on purpose)
 *   --history OUT      every stored comparison of every metric as OUT.dat and
 *                      a plot OUT.png / OUT.svg (paper/regress_history.gp)
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../kernels/cpu/cpu_gemm.h"
#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../cli/text_file.h"
#include "../report/cells.h"
#include "../report/figure_plot.h"
#include "../store/code_version.h"
#include "../store/file_hash.h"
#include "../store/json_file.h"
#include "../store/store.h"
#include "../store/store_regress.h"
#include "experiment.h"
#include "runner.h"

#define REGRESS_MAX_EXPERIMENTS 16
#define REGRESS_SAME_MACHINE_REL 1e-6   /* a new baseline states it; an old one may state another */

/* the metrics compared: everything but time */
static const CellMetric compared[] = {CELL_QUALITY, CELL_LAYERS_RATIO, CELL_COMPUTE_RATIO, CELL_GFLOPS};
#define N_COMPARED (int)(sizeof compared / sizeof compared[0])

/* the default tolerances a new baseline states (rel: relative, abs: absolute) */
static const struct {
    const char *metric;
    double rel, abs;
} default_tolerance[] = {
    {"quality", 0.10, 0}, {"layers_ratio", 0, 0.03}, {"compute_ratio", 0, 0.03}, {"gflops", 0.06, 0}};

typedef struct {
    char *cell;        /* "table1/smoke | Fashion-MNIST 28x28 | BERxiT | quality" */
    double value;
} Measured;

static void add_measured(Measured **m, int *n, const char *cell, double v)
{
    *m = xrealloc(*m, (size_t)(*n + 1) * sizeof **m);
    (*m)[*n] = (Measured){xstrdup(cell), v};
    (*n)++;
}

/* runs each experiment's smoke scale and collects its cells' metrics */
static int measure(const char *db, const char *threads, const char *const *files, int n_files, Measured **m, int *n)
{
    for (int e = 0; e < n_files; e++) {
        Plan p;
        if (plan_load(&p, files[e], "smoke", NULL)) return -1;
        RunnerOptions o = {.db = db, .threads = threads, .no_report = 1};
        int rc = runner_execute(&p, &o);
        Store st;
        CellResult *cells = NULL;
        int n_cells = 0;
        if (rc == 0) rc = store_open(&st, db);
        if (rc == 0) {
            rc = cells_measure(&st, &p, &cells, &n_cells);
            store_close(&st);
        }
        for (int i = 0; rc == 0 && i < n_cells; i++)
            for (int k = 0; k < cells[i].n_points; k++) {
                const CellPoint *pt = &cells[i].points[k];
                for (int c = 0; c < N_COMPARED; c++) {
                    if (pt->m[compared[c]].n == 0) continue;
                    char name[512], th[32] = "";
                    if (!isnan(pt->threshold)) snprintf(th, sizeof th, " | T %g", pt->threshold);
                    snprintf(name, sizeof name, "%s/smoke | %s | %s%s | %s", p.name, p.columns[cells[i].column].name,
                             p.rows[cells[i].row], th, cell_metric_names[compared[c]]);
                    add_measured(m, n, name, pt->m[compared[c]].mean);
                }
            }
        cells_free(cells, n_cells);
        plan_free(&p);
        if (rc) return -1;
    }
    return 0;
}

/* the value of the first "key : value" line of /proc/cpuinfo, or "?" */
static void cpuinfo_field(const char *key, char *out, size_t n)
{
    snprintf(out, n, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon || strncmp(line, key, strlen(key)) || (line[strlen(key)] != ' ' && line[strlen(key)] != '\t'))
            continue;
        colon += strspn(colon + 1, " \t") + 1;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, n, "%s", colon);
        break;
    }
    if (f) fclose(f);
}

/* what makes the CPU path's numbers bit for bit the same: the CPU (model
   name, family, model, the hash of its feature flags, which -march=native
   compiles for), the GEMM library's kernel and the number of threads (a
   reduction split over other threads rounds differently, about 1e-5 in a
   distance) */
static const char *regress_threads;   /* --threads, NULL: all cores */

static char *machine_signature(void)
{
    char *cpu = store_cpu_model();
    char family[32], model[32], flags[4096], flags_hash[SHA256_HEX_LEN + 1], buf[768];
    cpuinfo_field("cpu family", family, sizeof family);
    cpuinfo_field("model", model, sizeof model);
    cpuinfo_field("flags", flags, sizeof flags);
    sha256_hex(flags, strlen(flags), flags_hash);
    long threads = regress_threads ? atol(regress_threads) : sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(buf, sizeof buf, "%s, family %s model %s, flags %.12s; %s; %ld threads", cpu, family, model,
             flags_hash, cpu_gemm_provenance(), threads);
    free(cpu);
    return xstrdup(buf);
}

static int write_baseline(const char *path, const Measured *m, int n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "about",
        "make regress compares every metric of the smoke experiments with these numbers. Written by "
        "make rebaseline on purpose; do not edit by hand.");
    cJSON *rec = cJSON_AddObjectToObject(root, "recorded_on");
    char *sig = machine_signature(), *commit = store_git_commit();
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(rec, "machine", sig);
    cJSON_AddStringToObject(rec, "code_version", deediff_code_version);
    cJSON_AddStringToObject(rec, "git_commit", commit);
    cJSON_AddStringToObject(rec, "date", when);
    free(sig);
    free(commit);
    cJSON *tol = cJSON_AddObjectToObject(root, "tolerances");
    cJSON *same = cJSON_AddObjectToObject(tol, "same_machine");
    cJSON_AddNumberToObject(same, "rel", REGRESS_SAME_MACHINE_REL);
    cJSON_AddStringToObject(same, "why", "on the CPU, GEMM kernel and thread count recorded: only the summation order "
                                         "of threaded GEMMs may differ (oneDNN does not fix it)");
    for (size_t i = 0; i < sizeof default_tolerance / sizeof default_tolerance[0]; i++) {
        cJSON *t = cJSON_AddObjectToObject(tol, default_tolerance[i].metric);
        cJSON_AddNumberToObject(t, "rel", default_tolerance[i].rel);
        cJSON_AddNumberToObject(t, "abs", default_tolerance[i].abs);
    }
    cJSON *ms = cJSON_AddObjectToObject(root, "metrics");
    for (int i = 0; i < n; i++) cJSON_AddNumberToObject(ms, m[i].cell, m[i].value);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = write_file_atomic(path, text, strlen(text));
    free(text);
    if (rc == 0) printf("regress: %d metrics recorded in %s\n", n, path);
    return rc;
}

static cJSON *read_baseline(const char *path)
{
    cJSON *j = json_read_file(path, "the baseline (make rebaseline writes it)");
    if (j && !cJSON_IsObject(cJSON_GetObjectItem(j, "metrics"))) {
        cJSON_Delete(j);
        err_set("%s: metrics: not a baseline file (make rebaseline writes one)", path);
        return NULL;
    }
    return j;
}

/* the metric's name is the cell's last field ("... | quality") */
static const char *metric_of(const char *cell)
{
    const char *bar = strrchr(cell, '|');
    return bar ? bar + 2 : cell;
}

static int compare(Store *st, const char *path, const cJSON *base, const Measured *m, int n)
{
    const cJSON *ms = cJSON_GetObjectItem(base, "metrics"), *tol = cJSON_GetObjectItem(base, "tolerances");
    char *sig = machine_signature();
    const char *recorded = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(base, "recorded_on"), "machine"));
    int same = recorded && !strcmp(recorded, sig);
    double same_rel = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(tol, "same_machine"), "rel"));
    if (isnan(same_rel)) same_rel = REGRESS_SAME_MACHINE_REL;
    printf("regress: %d metrics against %s (%s: %s)\n", cJSON_GetArraySize(ms), path,
           same ? "same CPU, GEMM kernel and threads as recorded: within the same-machine tolerance"
                 : "another CPU, GEMM kernel or thread count: within the per-metric tolerances",
           sig);
    free(sig);
    char check_id[37];
    if (store_uuid(st, check_id)) return -1;
    int n_checks = cJSON_GetArraySize(ms), failed = 0, k = 0;
    RegressCheck *checks = xcalloc((size_t)n_checks + 1, sizeof *checks);
    char (*tol_text)[128] = xcalloc((size_t)n_checks + 1, sizeof *tol_text);
    const cJSON *b;
    cJSON_ArrayForEach(b, ms) {
        double want = cJSON_IsNumber(b) ? b->valuedouble : NAN, got = NAN;
        for (int i = 0; i < n; i++)
            if (!strcmp(m[i].cell, b->string)) got = m[i].value;
        const cJSON *t = cJSON_GetObjectItem(tol, metric_of(b->string));
        double rel = same ? same_rel : cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rel"));
        double abs_tol = same ? 0 : cJSON_GetNumberValue(cJSON_GetObjectItem(t, "abs"));
        if (isnan(rel)) rel = 0;
        if (isnan(abs_tol)) abs_tol = 0;
        double allowed = abs_tol + rel * fabs(want);
        int ok = !isnan(got) && !isnan(want) && fabs(got - want) <= allowed;
        snprintf(tol_text[k], sizeof tol_text[k], "{\"rel\":%g,\"abs\":%g,\"same_machine\":%s}", rel, abs_tol,
                 same ? "true" : "false");
        checks[k] = (RegressCheck){check_id, b->string, want, got, tol_text[k], ok};
        k++;
        if (ok) continue;
        failed++;
        if (isnan(got)) printf("REGRESSION %s: not measured (baseline %.6g)\n", b->string, want);
        else printf("REGRESSION %s: %.6g -> %.6g (%+.6g, %+.2f%%; allowed ±%.3g)\n", b->string, want, got,
                    got - want, want ? 100 * (got - want) / fabs(want) : 0.0, allowed);
    }
    for (int i = 0; i < n; i++)
        if (!cJSON_GetObjectItem(ms, m[i].cell))
            printf("regress: new metric %s = %.6g is not in the baseline (make rebaseline adds it)\n", m[i].cell,
                   m[i].value);
    int rc = store_regress_checks(st, checks, k);
    free(checks);
    free(tol_text);
    if (rc) return -1;
    printf("regress: %d of %d metrics within tolerance%s (stored as check %s)\n", k - failed, k,
           failed ? "; REGRESSION" : "", check_id);
    return failed ? 1 : 0;
}

/* --history: one block per metric, "index value baseline passed checked_at" */
typedef struct {
    TextBuf *t;
    char cell[512];
    int index, n_cells;
} History;

static int history_row(void *user, const char *cell, const char *checked_at, double baseline, double value,
                       int passed)
{
    History *h = user;
    if (strcmp(cell, h->cell)) {
        text_printf(h->t, "%s# series %s\n\"check\" \"%s\" \"baseline\" \"passed\" \"checked_at\"\n",
                    h->n_cells ? "\n\n" : "", cell, cell);
        snprintf(h->cell, sizeof h->cell, "%s", cell);
        h->index = 0;
        h->n_cells++;
    }
    text_printf(h->t, "%d %.17g %.17g %d \"%s\"\n", h->index++, value, baseline, passed, checked_at);
    return 0;
}

static int history(Store *st, const char *out)
{
    TextBuf t;
    text_init(&t);
    text_printf(&t, "# make regress: every stored comparison of every metric, by metric (store_regress.h)\n");
    History h = {.t = &t};
    char path[1024];
    snprintf(path, sizeof path, "%s.dat", out);
    int rc = store_regress_history(st, history_row, &h);
    if (rc == 0 && h.n_cells == 0) rc = err_set("%s: no regress checks stored yet (make regress)", st->path);
    if (rc == 0) rc = make_parent_dirs(path);
    if (rc == 0) rc = text_write_atomic(&t, path);
    TextBuf vars;
    text_init(&vars);
    figure_var(&vars, "data", path);
    if (rc == 0) rc = figure_plot("paper/regress_history.gp", vars.data, out);
    if (rc == 0) printf("regress: history of %d metrics in %s.{dat,png,svg}\n", h.n_cells, out);
    text_free(&vars);
    text_free(&t);
    return rc;
}

int cmd_regress(int argc, char **argv)
{
    const char *baseline = "results/baseline.json", *db = STORE_DEFAULT_PATH, *hist = NULL, *threads = NULL;
    int rebaseline = 0;
    CliOpt opts[] = {
        {"--baseline", "B.json", "the baseline (default results/baseline.json)", &baseline, NULL, 0},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--threads", "N", "CPU threads of each run (default: all cores)", &threads, NULL, 0},
        {"--rebaseline", NULL, "record the current numbers as the baseline, on purpose", NULL, &rebaseline, 0},
        {"--history", "OUT", "write every stored comparison as OUT.dat and plot it (OUT.png, OUT.svg); run nothing",
         &hist, NULL, 0},
    };
    const char *pos[REGRESS_MAX_EXPERIMENTS];
    int npos = 0;
    int rc = cli_parse("regress", "EXPERIMENT.json ... [--baseline B] [--rebaseline] | --history OUT",
                       "Runs the smoke scale of each experiment (what the database lacks), compares every metric "
                       "but time with the baseline\n(to 1e-6 on the CPU, GEMM kernel and threads it was recorded with, within "
                       "its stated tolerances elsewhere) and stores\nevery comparison. Exit status 1 on a "
                       "regression.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, REGRESS_MAX_EXPERIMENTS, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    regress_threads = threads;
    Store st;
    if (hist) {
        if (store_open(&st, db)) return -1;
        rc = history(&st, hist);
        store_close(&st);
        return rc;
    }
    if (npos < 1) return err_set("regress: name the experiments (deediff regress experiments/table1.json ...)");
    cJSON *base = NULL;
    if (!rebaseline && !(base = read_baseline(baseline))) return -1;
    Measured *m = NULL;
    int n = 0;
    rc = measure(db, threads, pos, npos, &m, &n);
    if (rc == 0 && rebaseline) rc = write_baseline(baseline, m, n);
    else if (rc == 0 && (rc = store_open(&st, db)) == 0) {
        rc = compare(&st, baseline, base, m, n);
        store_close(&st);
    }
    for (int i = 0; i < n; i++) free(m[i].cell);
    free(m);
    cJSON_Delete(base);
    return rc;
}
