/*
 * cmd_run.c: `deediff run EXPERIMENT [--scale S]`: an experiment file
 * (experiment.h) expanded into runs, each run done unless the database
 * already holds it, then the experiment's report drawn from the database.
 *
 * What makes it safe to kill, rerun and split:
 *   - a run is skipped when a finished run with its key is stored
 *     (run_key.h), or, for a command that writes a file ("creates": a
 *     training, a sample grid), when that file exists;
 *   - each run is a child process (this binary, the command's argv, the
 *     run's keys in its environment: store.h STORE_ENV_*), and every command
 *     stores its results in one transaction at its end (a training resumes
 *     from its checkpoint), so a kill loses at most the run in progress and
 *     never stores half of one; runs left 'running' by a dead process are
 *     marked failed (interrupted) on the next start;
 *   - --shard K/N takes every N-th group of runs (a row's model: the shard
 *     that trains a model evaluates it); each shard writes its own database
 *     and `deediff merge` combines them;
 *   - --only A,B takes the runs whose label ("column/row/T/seed") contains
 *     A or B, with what they need.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../cli/progress.h"
#include "../report/report.h"
#include "../store/store.h"
#include "experiment.h"
#include "run_lookup.h"

#define RUN_MAX_ARGS 128

typedef struct {
    const char *scale, *db, *only, *shard, *threads, *out_dir;
    int list, no_report;
} RunArgs;

/* how a command is told where the database is (NULL: it stores nothing) */
static const char *db_flag(const char *command)
{
    if (!strcmp(command, "eval") || !strcmp(command, "analyze")) return "--db";
    if (!strcmp(command, "train")) return "output.db=";
    return NULL;
}

static int takes_threads(const char *command)
{
    static const char *const with[] = {"eval", "analyze", "train", "sample", "prune"};
    for (size_t i = 0; i < sizeof with / sizeof with[0]; i++)
        if (!strcmp(command, with[i])) return 1;
    return 0;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* runs the command in a child process; its exit status, or -1 */
static int run_child(const Plan *p, const PlanRun *r, const RunKey *k, const RunArgs *a)
{
    char *argv[RUN_MAX_ARGS + 8];
    char db_arg[1200];
    int n = 0;
    argv[n++] = "deediff";
    for (int i = 0; i < r->argc && n < RUN_MAX_ARGS; i++) argv[n++] = r->argv[i];
    const char *flag = db_flag(r->argv[0]);
    if (flag && flag[strlen(flag) - 1] == '=') {
        snprintf(db_arg, sizeof db_arg, "%s%s", flag, a->db);
        argv[n++] = db_arg;
    } else if (flag) {
        argv[n++] = (char *)flag;
        argv[n++] = (char *)a->db;
    }
    if (a->threads && takes_threads(r->argv[0])) {
        argv[n++] = "--threads";
        argv[n++] = (char *)a->threads;
    }
    argv[n] = NULL;
    char experiment[512];
    snprintf(experiment, sizeof experiment, "%s/%s", p->name, p->scale);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return err_set("%s: fork: cannot start a run", p->path);
    if (pid == 0) {
        setenv(STORE_ENV_RUN_KEY, k->run, 1);
        setenv(STORE_ENV_SETTING_KEY, k->setting, 1);
        setenv(STORE_ENV_EXPERIMENT, experiment, 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "deediff run: cannot execute /proc/self/exe\n");
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {}
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* is run i already done? (its key is computed from the files as they are) */
static int is_done(Store *st, const Plan *p, int i, RunKey *k, int *done)
{
    const PlanRun *r = &p->runs[i];
    *done = 0;
    if (r->creates && file_exists(r->creates)) {
        *done = 1;
        return 0;
    }
    if (run_key_compute(k, r->argv, r->argc)) return -1;
    if (r->creates) return 0;          /* a file to make: only the file tells */
    RunFound f;
    if (run_lookup(st, k, &f)) return -1;
    *done = f.run_id && !f.stale;
    return 0;
}

static int parse_shard(const char *text, int *k, int *n)
{
    *k = 0;
    *n = 0;
    if (!text || !text[0]) return 0;
    char tail;
    if (sscanf(text, "%d/%d%c", k, n, &tail) != 2 || *n < 1 || *k < 0 || *k >= *n)
        return err_set("--shard %s: expected K/N with 0 <= K < N (SHARD=0/4 is the first of four)", text);
    return 0;
}

static int list_plan(const Plan *p, Store *st, const char *only, int sk, int sn)
{
    printf("%s at scale %s: %d runs in %d groups\n", p->name, p->scale, p->n_runs, p->n_groups);
    for (int i = 0; i < p->n_runs; i++) {
        if (!plan_run_taken(p, i, only, sk, sn)) continue;
        RunKey k;
        int done;
        if (is_done(st, p, i, &k, &done)) return -1;
        printf("%-5s %s:", done ? "done" : "todo", p->runs[i].label);
        for (int a = 0; a < p->runs[i].argc; a++) printf(" %s", p->runs[i].argv[a]);
        printf("\n");
    }
    return 0;
}

static int execute(const Plan *p, const RunArgs *a, int sk, int sn)
{
    Store st;
    if (store_open(&st, a->db)) return -1;
    int reaped;
    if (run_lookup_reap(&st, &reaped)) goto fail;
    if (reaped) printf("run: %d interrupted run(s) of this machine marked failed\n", reaped);
    if (a->list) {
        int rc = list_plan(p, &st, a->only, sk, sn);
        store_close(&st);
        return rc;
    }
    int taken = 0, todo = 0;
    int *pending = xcalloc((size_t)p->n_runs, sizeof *pending);
    for (int i = 0; i < p->n_runs; i++) {
        if (!plan_run_taken(p, i, a->only, sk, sn)) continue;
        taken++;
        RunKey k;
        int done;
        if (is_done(&st, p, i, &k, &done)) {
            free(pending);
            goto fail;
        }
        if (!done) pending[todo++] = i;
    }
    printf("run: %s/%s: %d runs%s, %d done, %d to do (database %s)\n", p->name, p->scale, taken,
           sn ? " in this shard" : "", taken - todo, todo, a->db);
    double t0 = progress_now();
    int rc = 0;
    for (int j = 0; j < todo && rc == 0; j++) {
        const PlanRun *r = &p->runs[pending[j]];
        RunKey k;
        int done;
        if ((rc = is_done(&st, p, pending[j], &k, &done))) break;  /* a "before" may have made it */
        char eta[32] = "?";
        if (j > 0) progress_format_eta(eta, sizeof eta, (progress_now() - t0) / j * (todo - j));
        printf("run [%d/%d] %s (%d left after it, ETA %s)\n", j + 1, todo, r->label, todo - j - 1, eta);
        if (done) continue;
        int status = run_child(p, r, &k, a);
        if (status != 0) {
            rc = err_set("%s: run %s failed (exit status %d); rerun to resume", p->path, r->label, status);
            break;
        }
        if (r->creates && !file_exists(r->creates)) {
            rc = err_set("%s: run %s: finished without writing %s", p->path, r->label, r->creates);
            break;
        }
        RunFound f;
        if (!r->creates && (rc = run_lookup(&st, &k, &f)) == 0 && (!f.run_id || f.stale))
            rc = err_set("%s: run %s: '%s' stored no finished run with its key (only eval, analyze and "
                         "train store runs; give other commands \"creates\")", p->path, r->label, r->argv[0]);
    }
    free(pending);
    if (rc == 0 && todo) {
        char took[32];
        progress_format_eta(took, sizeof took, progress_now() - t0);
        printf("run: %s/%s: %d run(s) done in %s\n", p->name, p->scale, todo, took);
    }
    if (rc == 0 && !a->no_report) rc = report_experiment(&st, p, a->out_dir);
    store_close(&st);
    return rc;
fail:
    store_close(&st);
    return -1;
}

int cmd_run(int argc, char **argv)
{
    RunArgs a = {.scale = "tiny", .db = STORE_DEFAULT_PATH, .out_dir = "paper"};
    CliOpt opts[] = {
        {"--scale", "S", "smoke (CI, minutes), tiny (default: Fashion-MNIST on a CPU), paper (the paper's protocol)",
         &a.scale, NULL, 0},
        {"--db", "PATH", "results database (default " STORE_DEFAULT_PATH ")", &a.db, NULL, 0},
        {"--only", "A,B", "only the runs whose label (column/row/T/seed) contains A or B, and what they need",
         &a.only, NULL, 0},
        {"--shard", "K/N", "only shard K of N (0-based; a row's runs stay together); merge the databases after",
         &a.shard, NULL, 0},
        {"--threads", "N", "CPU threads of each run (default: all cores)", &a.threads, NULL, 0},
        {"--out-dir", "DIR", "where the report goes (default paper: paper/tables, paper/figures)", &a.out_dir, NULL,
         0},
        {"--list", NULL, "print every run with done/todo and its command line; run nothing", NULL, &a.list, 0},
        {"--no-report", NULL, "run, but do not draw the report", NULL, &a.no_report, 0},
    };
    const char *pos[1 + PLAN_MAX_VARS];
    int npos = 0;
    int rc = cli_parse("run", "deediff run EXPERIMENT.json [NAME=VALUE ...] [options]",
                       "Expands an experiment file at one scale into runs, does each run the database does not "
                       "already hold (a rerun resumes; a killed run is redone), then draws the experiment's report "
                       "(table or figure) from the database. NAME=VALUE sets a ${NAME} of the file (paths of data "
                       "and weights at paper scale); the environment is read too.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1 + PLAN_MAX_VARS, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    if (npos < 1) return err_set("run: the experiment file is missing (deediff run experiments/table1.json)");
    PlanVars vars = {0};
    for (int i = 1; i < npos; i++)
        if (plan_vars_add(&vars, pos[i])) return -1;
    int sk, sn;
    if (parse_shard(a.shard, &sk, &sn)) return -1;
    Plan p;
    if (plan_load(&p, pos[0], a.scale, &vars)) return -1;
    rc = execute(&p, &a, sk, sn);
    plan_free(&p);
    return rc;
}
