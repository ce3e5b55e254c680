/*
 * runner.c: a plan's runs done in order, each unless the database already
 * holds it (runner.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../cli/progress.h"
#include "../report/report.h"
#include "../store/store.h"
#include "run_lookup.h"
#include "runner.h"

#define RUN_MAX_ARGS 128

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
static int run_child(const Plan *p, const PlanRun *r, const RunKey *k, const RunnerOptions *a)
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
    pid_t runner = getpid();
    pid_t pid = fork();
    if (pid < 0) return err_set("%s: fork: cannot start a run", p->path);
    if (pid == 0) {
        /* a runner killed on its own (kill PID) takes its run with it: an
           orphaned run would go on storing behind a rerun that starts the
           same run again, and the key would have two finished runs */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != runner) _exit(128 + SIGKILL);
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

int runner_parse_shard(const char *text, int *k, int *n)
{
    *k = 0;
    *n = 0;
    if (!text || !text[0]) return 0;
    char tail;
    if (sscanf(text, "%d/%d%c", k, n, &tail) != 2 || *n < 1 || *k < 0 || *k >= *n)
        return err_set("--shard %s: expected K/N with 0 <= K < N (SHARD=0/4 is the first of four)", text);
    return 0;
}

static int list_plan(const Plan *p, Store *st, const RunnerOptions *o)
{
    printf("%s at scale %s: %d runs in %d groups\n", p->name, p->scale, p->n_runs, p->n_groups);
    for (int i = 0; i < p->n_runs; i++) {
        if (!plan_run_taken(p, i, o->only, o->shard_k, o->shard_n)) continue;
        RunKey k;
        int done;
        if (is_done(st, p, i, &k, &done)) return -1;
        printf("%-5s %s:", done ? "done" : "todo", p->runs[i].label);
        for (int j = 0; j < p->runs[i].argc; j++) printf(" %s", p->runs[i].argv[j]);
        printf("\n");
    }
    return 0;
}

int runner_execute(const Plan *p, const RunnerOptions *a)
{
    Store st;
    if (store_open(&st, a->db)) return -1;
    int reaped;
    if (run_lookup_reap(&st, &reaped)) goto fail;
    if (reaped) printf("run: %d interrupted run(s) of this machine marked failed\n", reaped);
    if (a->list) {
        int rc = list_plan(p, &st, a);
        store_close(&st);
        return rc;
    }
    int taken = 0, todo = 0;
    int *pending = xcalloc((size_t)p->n_runs, sizeof *pending);
    for (int i = 0; i < p->n_runs; i++) {
        if (!plan_run_taken(p, i, a->only, a->shard_k, a->shard_n)) continue;
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
           a->shard_n ? " in this shard" : "", taken - todo, todo, a->db);
    double t0 = progress_now();
    int rc = 0, skipped = 0;
    int *blocked = xcalloc((size_t)p->n_groups + 1, sizeof *blocked);  /* groups another process is running */
    for (int j = 0; j < todo && rc == 0; j++) {
        const PlanRun *r = &p->runs[pending[j]];
        RunKey k;
        int done;
        long busy = 0;
        if ((rc = is_done(&st, p, pending[j], &k, &done))) break;  /* a "before" may have made it */
        char eta[32] = "?";
        if (j > 0) progress_format_eta(eta, sizeof eta, (progress_now() - t0) / j * (todo - j));
        printf("run [%d/%d] %s (%d left after it, ETA %s)\n", j + 1, todo, r->label, todo - j - 1, eta);
        if (done) continue;
        if (!blocked[r->group] && (rc = run_lookup_busy(&st, &k, &busy))) break;
        if (blocked[r->group] || busy) {
            if (busy) printf("run: %s is being run by process %ld; skipping it and the rest of its group\n",
                             r->label, busy);
            blocked[r->group] = 1;
            skipped++;
            continue;
        }
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
    free(blocked);
    if (rc == 0 && skipped)
        printf("run: %s/%s: %d run(s) skipped while another process runs their group; rerun when it is done\n",
               p->name, p->scale, skipped);
    if (rc == 0 && todo) {
        char took[32];
        progress_format_eta(took, sizeof took, progress_now() - t0);
        printf("run: %s/%s: %d run(s) done in %s\n", p->name, p->scale, todo - skipped, took);
    }
    if (rc == 0 && !a->no_report) rc = report_experiment(&st, p, a->out_dir);
    store_close(&st);
    return rc;
fail:
    store_close(&st);
    return -1;
}

