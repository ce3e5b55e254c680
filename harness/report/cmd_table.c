/*
 * cmd_table.c: `deediff table 1`: the paper's Table 1 drawn from the eval
 * runs in the results database, and from nothing else; `deediff table
 * sweep --model M`: a threshold sweep (table_sweep.h).
 *
 * One row per (model, method, dataset) setting: the latest finished eval run
 * of that setting. Columns follow the paper (FID, Layers Ratio, GFLOPs) with
 * what the paper leaves unstated made explicit: the distance carries its
 * feature network and N (FD-FMNIST-1k is the project's Fashion-MNIST proxy,
 * not FID), the compute is given as multiply-adds and FLOPs per generated
 * image (all sampling steps), and the measured seconds per image stand
 * beside it (REFERENCE.md section 7, item 8). Under the table: the protocol
 * of every row (sampler, steps, N, feature network and reference with their
 * hashes, precision, backend, git commit, machine), what is not implemented
 * yet, and, in a separate section, the numbers the paper reports, never
 * mixed into the measured rows.
 *
 * The Markdown goes to stdout and, with --output, to that file; a LaTeX
 * tabular of the same rows goes next to it (.tex). Both are written
 * atomically.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../store/store.h"
#include "paper_names.h"
#include "table_sweep.h"
#include "../cli/text_file.h"

#define TABLE_MAX_ROWS 256

typedef struct {
    int64_t run_id;
    char *name, *git_commit, *machine, *cpu, *backend, *finished_at;
    cJSON *config;
    double fd, layers_ratio, compute_ratio, gmacs, gflops, seconds;   /* NAN when missing */
    const char *fd_label;                              /* "FD-FMNIST-1k" (from config.metric) */
} Row;

static const char *cfg_str(const Row *r, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(r->config, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static double cfg_num(const Row *r, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(r->config, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int is_pruning(const Row *r) { return !strcmp(cfg_str(r, "method"), "spruning"); }

/* "U-ViT" (method none; "uvit" in databases before the methods came),
   "S-Pruning (FILE)", "DeeDiff w/o EE (FILE)" (threshold 0: the paper's
   name), "DeeDiff (T = 0.1; FILE)" */
static const char *method_title(const Row *r, char *buf, size_t n)
{
    const char *m = cfg_str(r, "method");
    double th = cfg_num(r, "threshold");
    const char *name = paper_method_name(m);
    if (!strcmp(m, "uvit") || !strcmp(m, "none")) return name;
    const char *file = strrchr(cfg_str(r, "model"), '/');
    file = file ? file + 1 : cfg_str(r, "model");
    if (is_pruning(r)) snprintf(buf, n, "%s (%s)", name, file);
    else if (th > 0) snprintf(buf, n, "%s (T = %g; %s)", name, th, file);
    else snprintf(buf, n, "%s w/o EE (%s)", name, file);
    return buf;
}

static int method_rank(const Row *r)
{
    return paper_method_rank(cfg_str(r, "method"));
}

static int row_order(const void *pa, const void *pb)
{
    const Row *a = pa, *b = pb;
    int c = strcmp(cfg_str(a, "dataset"), cfg_str(b, "dataset"));
    if (c) return c;
    if (method_rank(a) != method_rank(b)) return method_rank(a) - method_rank(b);
    c = strcmp(cfg_str(a, "model"), cfg_str(b, "model"));
    if (c) return c;
    double ta = cfg_num(a, "threshold"), tb = cfg_num(b, "threshold");
    return (ta > tb) - (ta < tb);
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return xstrdup(t ? (const char *)t : "");
}

/* the latest finished eval run of every (model, method, threshold, dataset) setting */
static int read_rows(Store *st, Row *rows, int *n)
{
    static const char *sql =
        "SELECT id, name, config, git_commit, machine, cpu, backend, finished_at FROM runs "
        "WHERE id IN (SELECT max(id) FROM runs WHERE kind = 'eval' AND status = 'done' "
        "GROUP BY json_extract(config, '$.model'), json_extract(config, '$.method'), "
        "json_extract(config, '$.threshold'), json_extract(config, '$.dataset')) "
        "ORDER BY json_extract(config, '$.dataset'), json_extract(config, '$.method') = 'deediff', "
        "json_extract(config, '$.threshold'), id";
    sqlite3_stmt *q, *m;
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db, "SELECT name, value FROM metrics WHERE run_id = ? AND step IS NULL ORDER BY id",
                           -1, &m, NULL) != SQLITE_OK)
        return err_set("%s: reading eval runs: %s", st->path, sqlite3_errmsg(st->db));
    *n = 0;
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == TABLE_MAX_ROWS) {
            rc = err_set("%s: more than %d eval settings", st->path, TABLE_MAX_ROWS);
            break;
        }
        Row *r = &rows[(*n)++];
        memset(r, 0, sizeof *r);
        r->run_id = sqlite3_column_int64(q, 0);
        r->name = col_dup(q, 1);
        r->config = cJSON_Parse((const char *)sqlite3_column_text(q, 2));
        r->git_commit = col_dup(q, 3);
        r->machine = col_dup(q, 4);
        r->cpu = col_dup(q, 5);
        r->backend = col_dup(q, 6);
        r->finished_at = col_dup(q, 7);
        r->fd = r->layers_ratio = r->compute_ratio = r->gmacs = r->gflops = r->seconds = NAN;
        r->fd_label = cfg_str(r, "metric");
        sqlite3_reset(m);
        sqlite3_bind_int64(m, 1, r->run_id);
        while (sqlite3_step(m) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(m, 0);
            double v = sqlite3_column_double(m, 1);
            if (!strcmp(name, "fd_fmnist") || !strcmp(name, "fid")) r->fd = v;
            else if (!strcmp(name, "layers_ratio")) r->layers_ratio = v;
            else if (!strcmp(name, "compute_ratio")) r->compute_ratio = v;
            else if (!strcmp(name, "gmacs_per_image")) r->gmacs = v;
            else if (!strcmp(name, "gflops_per_image")) r->gflops = v;
            else if (!strcmp(name, "seconds_per_image")) r->seconds = v;
        }
    }
    if (rc == 0 && s != SQLITE_DONE) rc = err_set("%s: reading eval runs: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(q);
    sqlite3_finalize(m);
    return rc;
}

static void free_rows(Row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].name), free(rows[i].git_commit), free(rows[i].machine), free(rows[i].cpu);
        free(rows[i].backend), free(rows[i].finished_at);
        cJSON_Delete(rows[i].config);
    }
}

/* keeps the rows of the listed models and methods and, for early-exit
   methods, the listed thresholds, and (picked) only the settings listed
   as MODEL or MODEL@THRESHOLD (NULL lists keep everything), in the
   paper's order: dataset, method, model, threshold */
static void filter_rows(Row *rows, int *n, const char *models, const char *methods, const char *thresholds,
                        const char *picked)
{
    int kept = 0;
    for (int i = 0; i < *n; i++) {
        const char *m = cfg_str(&rows[i], "method");
        char th[32];
        snprintf(th, sizeof th, "%g", isnan(cfg_num(&rows[i], "threshold")) ? 0 : cfg_num(&rows[i], "threshold"));
        int plain = !strcmp(m, "none") || !strcmp(m, "uvit");
        char setting[1100];
        snprintf(setting, sizeof setting, "%s@%s", cfg_str(&rows[i], "model"), th);
        int listed = !picked || cli_listed(picked, cfg_str(&rows[i], "model")) || cli_listed(picked, setting);
        if (listed && cli_listed(models, cfg_str(&rows[i], "model")) && (plain || cli_listed(methods, m)) &&
            (plain || is_pruning(&rows[i]) || cli_listed(thresholds, th)))
            rows[kept++] = rows[i];
        else
            free_rows(&rows[i], 1);
    }
    *n = kept;
    qsort(rows, (size_t)kept, sizeof *rows, row_order);
}

/* "1.000" for the full network, "0.523 (-47.7%)" below it */
static void fmt_ratio(double v, char *buf, size_t size, const char *pct)
{
    if (isnan(v)) snprintf(buf, size, "-");
    else if (fabs(v - 1) < 5e-4) snprintf(buf, size, "%.3f", v);
    else snprintf(buf, size, "%.3f (%+.1f%s)", v, 100 * (v - 1), pct);
}

static void fmt_num(double v, const char *fmt, char *buf, size_t size)
{
    if (isnan(v)) snprintf(buf, size, "-");
    else snprintf(buf, size, fmt, v);
}

/* a row's measured cells, formatted once for both renderings; pct is the
   percent sign of the output language */
typedef struct {
    char fd[64], lr[80], gm[32], gf[32], sec[32];
} Cells;

static void format_cells(const Row *r, const char *pct, Cells *c)
{
    fmt_num(r->fd, "%.2f", c->fd, sizeof c->fd);
    if (is_pruning(r)) {   // every block runs; what falls is each block's width
        char ratio[48];
        fmt_ratio(r->compute_ratio, ratio, sizeof ratio, pct);
        snprintf(c->lr, sizeof c->lr, "compute %s", ratio);
    } else {
        fmt_ratio(r->layers_ratio, c->lr, sizeof c->lr, pct);
    }
    fmt_num(r->gmacs, "%.2f", c->gm, sizeof c->gm);
    fmt_num(r->gflops, "%.2f", c->gf, sizeof c->gf);
    fmt_num(r->seconds, "%.4f", c->sec, sizeof c->sec);
}

static void render_markdown(TextBuf *t, const Row *rows, int n, const char *db)
{
    text_printf(t, "# Table 1: performance and efficiency (measured here)\n\n");
    text_printf(t, "Drawn by `deediff table 1` from the eval runs in `%s` (the latest finished run of every\n"
                   "(model, method, dataset) setting). The distance column names its feature network and its N:\n"
                   "FD-FMNIST-N is the Frechet distance on the project's Fashion-MNIST classifier features (a proxy,\n"
                   "not FID; it does not compare with FID values); FID-N uses Inception pool3. GMAC and GFLOPs are per\n"
                   "generated image over all sampling steps (1 MAC = 1 multiply-add, GFLOPs = 2 x GMAC); the cost of\n"
                   "one network forward, the unit of the paper's GFLOPs column, is in each row's protocol. s/image is\n"
                   "the measured wall clock of sampling (network and sampler) divided by N. S-Pruning runs every\n"
                   "block at reduced width: its ratio cell is its compute ratio (GMAC against the unpruned network's),\n"
                   "labelled \"compute\", where the early-exit rows give the layers ratio.\n\n", db);
    if (n == 0) text_printf(t, "No finished eval runs in `%s` yet: `make table1` runs one.\n\n", db);
    text_printf(t, "| Dataset | Method | FD / FID (N) | Layers ratio | GMAC/image | GFLOPs/image | s/image |\n");
    text_printf(t, "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        Cells c;
        format_cells(r, "%", &c);
        char title[64];
        text_printf(t, "| %s | %s | %s %s | %s | %s | %s | %s |\n", paper_dataset_name(cfg_str(r, "dataset")),
                    method_title(r, title, sizeof title), r->fd_label, c.fd, c.lr, c.gm, c.gf, c.sec);
    }
    text_printf(t, "\n## Protocol of each row\n\n");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        double evals = cfg_num(r, "evals_per_image");
        char title[64];
        text_printf(t,
                    "%d. %s, %s: run %lld `%s`. Model `%s` (sha256 %.16s..., %s weights, %.0f blocks); sampler "
                    "%s (%s schedule), %.0f steps = %.0f network evaluations per image, seed %.0f, N = %.0f "
                    "(ids 0..N-1), no guidance; %.4g GMAC (%.4g GFLOPs) per network forward. Features: %s `%s` "
                    "(sha256 %.16s..., %.0f-d); reference `%s` (N = %.0f, statistics `%s`, sha256 %.16s...). "
                    "Samples quantized to 8 bits by the PNG rule and evaluated from memory. %s, %s backend, %.0f "
                    "threads; machine %s (%s); git commit %s; finished %s.\n",
                    i + 1, paper_dataset_name(cfg_str(r, "dataset")), method_title(r, title, sizeof title),
                    (long long)r->run_id, r->name, cfg_str(r, "model"), cfg_str(r, "model_sha256"),
                    cfg_str(r, "weights"), cfg_num(r, "blocks"), cfg_str(r, "sampler"), cfg_str(r, "schedule"),
                    cfg_num(r, "steps"), evals, cfg_num(r, "seed"), cfg_num(r, "n"), r->gmacs / evals,
                    r->gflops / evals, !strcmp(cfg_str(r, "features"), "inception") ? "Inception pool3" : "FD-FMNIST",
                    cfg_str(r, "features_weights"), cfg_str(r, "features_sha256"), cfg_num(r, "feature_dim"),
                    cfg_str(r, "ref"), cfg_num(r, "ref_n"), cfg_str(r, "ref_stats"), cfg_str(r, "ref_sha256"),
                    cfg_str(r, "precision"), r->backend, cfg_num(r, "threads"), r->machine, r->cpu, r->git_commit,
                    r->finished_at);
    }
    if (n == 0) text_printf(t, "(no rows)\n");
    text_printf(t,
                "\n## Reported in the paper (not measured here)\n\n"
                "DeeDiff paper, Table 1: U-ViT-Small (13 layers), FID with 50k samples (Inception, reference "
                "statistics of\nDhariwal & Nichol), Euler-Maruyama 1000 steps; GFLOPs of one network forward\n"
                "(counting convention not stated: U-ViT-S/2 on CIFAR-10 is about 12.2 G multiply-adds per forward, "
                "REFERENCE.md\nsection 1). These are the paper's numbers, quoted for reference; nothing in them was "
                "run by this project,\nand FID values do not compare with FD-FMNIST values.\n\n"
                "| Method (paper) | CIFAR-10 FID | Layers ratio | GFLOPs | CelebA 64 FID | Layers ratio | GFLOPs |\n"
                "|---|---|---|---|---|---|---|\n"
                "| U-ViT | 3.11 | 1 | 22.86 | 2.87 | 1 | 23.01 |\n"
                "| BERxiT | 20.5 | -20.5%% | 18.18 (-20.4%%) | 31.01 | -18.5%% | 18.79 (-18.3%%) |\n"
                "| CALM | 20.0 | -20.5%% | 18.18 (-20.4%%) | 25.3 | -20.5%% | 18.33 (-20.3%%) |\n"
                "| S-Pruning | 5.29 | -44.2%% | - | 6.24 | -44.3%% | - |\n"
                "| DeeDiff w/o EE | 2.7 | - | 22.86 | 2.63 | - | 23.01 |\n"
                "| DeeDiff | 3.7 | -47.7%% | 11.97 (-47.6%%) | 3.9 | -46.2%% | 12.48 (-45.7%%) |\n\n"
                "A public re-implementation (razvanmatisan/early-exiting-diffusion) could not reproduce DeeDiff's "
                "numbers\n(CIFAR-10, 1024 samples: FID 79.3 -> 86.6 at -31%% layers); see REFERENCE.md section 2.\n");
}

/* LaTeX text with the special characters of our strings escaped */
static void tex_escaped(TextBuf *t, const char *s)
{
    for (; *s; s++) {
        if (strchr("_%&#$", *s)) text_printf(t, "\\%c", *s);
        else text_printf(t, "%c", *s);
    }
}

static void render_tex(TextBuf *t, const Row *rows, int n)
{
    text_printf(t, "%% Table 1 (measured): generated by deediff table 1 from the results database\n"
                   "\\begin{tabular}{llrrrrr}\n\\hline\n"
                   "Dataset & Method & FD / FID ($N$) & Layers ratio & GMAC/image & GFLOPs/image & s/image \\\\\n"
                   "\\hline\n");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        Cells c;
        format_cells(r, "\\%", &c);
        tex_escaped(t, paper_dataset_name(cfg_str(r, "dataset")));
        text_printf(t, " & ");
        char title[64];
        tex_escaped(t, method_title(r, title, sizeof title));
        text_printf(t, " & %s %s & %s & %s & %s & %s \\\\\n", r->fd_label, c.fd, c.lr, c.gm, c.gf, c.sec);
    }
    text_printf(t, "\\hline\n\\end{tabular}\n"
                   "%% S-Pruning's ratio cell is its compute ratio, the others' the layers ratio\n");
}

/* path with its extension replaced by .tex ("paper/tables/table1.md" -> ".../table1.tex") */
static char *tex_path(const char *md)
{
    size_t len = strlen(md);
    const char *dot = strrchr(md, '.'), *slash = strrchr(md, '/');
    if (dot && (!slash || dot > slash)) len = (size_t)(dot - md);
    char *p = xmalloc(len + 5);
    memcpy(p, md, len);
    strcpy(p + len, ".tex");
    return p;
}

int cmd_table(int argc, char **argv)
{
    const char *db = NULL, *output = NULL, *model = NULL, *baseline = NULL, *models = NULL, *thresholds = NULL,
               *method = NULL, *methods = NULL, *picked = NULL;
    const CliOpt opts[] = {
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &db, NULL, 0},
        {"--output", "T.md", "also write the Markdown here (table 1: and a LaTeX tabular next to it, T.tex)",
         &output, NULL, 0},
        {"--model", "M", "sweep: the early-exit model file, as eval's --model named it", &model, NULL, 0},
        {"--baseline", "B", "sweep: a plain model evaluated alone, shown as an extra row", &baseline, NULL, 0},
        {"--method", "NAME", "sweep: only the runs of this method (a file run by several: static on deediff's "
         "heads; default: any early-exit method)", &method, NULL, 0},
        {"--models", "M,M..", "table 1: only these model files (as eval's --model named them)", &models, NULL, 0},
        {"--rows", "M[@T],..", "table 1: only these settings: a model file, or one at a threshold (as %g prints it)",
         &picked, NULL, 0},
        {"--methods", "M,M..", "table 1: only these methods (deediff methods lists them; U-ViT rows stay)", &methods,
         NULL, 0},
        {"--thresholds", "T,T..", "table 1: only these early-exit thresholds (as %g prints them: 0,0.15)", &thresholds,
         NULL, 0},
    };
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse("table", "1 | sweep --model M [--method NAME] [--baseline B] [--db PATH] [--output T.md]",
                       "Renders the paper's Table 1 from the eval runs in the results database (deediff eval): "
                       "one row per\n(model, method, threshold, dataset), its latest run, with the protocol of "
                       "every row and the paper's own\nnumbers in a separate section. 'sweep' renders one "
                       "early-exit model's threshold sweep: layer saving,\nwall-clock saving and their ratio "
                       "against the same weights at threshold 0.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    int sweep = npos == 1 && !strcmp(pos[0], "sweep");
    if (npos != 1 || (strcmp(pos[0], "1") && !sweep))
        return err_set("table: expected 1 or sweep (see deediff table --help)");
    if (sweep && !model) return err_set("--model: table sweep needs the early-exit model file");
    if (!db) db = STORE_DEFAULT_PATH;
    struct stat sb;
    if (stat(db, &sb)) return err_set("--db: %s: cannot open: %s (deediff eval writes it)", db, strerror(errno));
    Store st;
    if (store_open(&st, db)) return -1;
    if (sweep) {
        TextBuf md;
        text_init(&md);
        rc = table_sweep_render(&st, model, method, baseline, &md);
        store_close(&st);
        if (rc == 0) fwrite(md.data, 1, md.len, stdout);
        if (rc == 0 && output) rc = text_write_atomic(&md, output);
        text_free(&md);
        return rc;
    }
    Row *rows = xmalloc(sizeof(Row) * TABLE_MAX_ROWS);
    int n = 0;
    rc = read_rows(&st, rows, &n);
    store_close(&st);
    if (rc == 0) filter_rows(rows, &n, models, methods, thresholds, picked);
    if (rc == 0) {
        TextBuf md, tex;
        text_init(&md);
        text_init(&tex);
        render_markdown(&md, rows, n, db);
        render_tex(&tex, rows, n);
        fwrite(md.data, 1, md.len, stdout);
        if (output) {
            char *tp = tex_path(output);
            rc = text_write_atomic(&md, output);
            if (rc == 0) rc = text_write_atomic(&tex, tp);
            if (rc == 0) fprintf(stderr, "table: wrote %s and %s\n", output, tp);
            free(tp);
        }
        text_free(&md);
        text_free(&tex);
    }
    free_rows(rows, n);
    free(rows);
    return rc;
}
