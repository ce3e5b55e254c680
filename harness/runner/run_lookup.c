/*
 * run_lookup.c: runs found by key, and runs of dead processes reaped
 * (run_lookup.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "run_lookup.h"

static int latest_done(Store *s, const char *column, const char *key, int64_t *id)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT id FROM runs WHERE %s = ? AND status = 'done' ORDER BY id DESC LIMIT 1", column);
    sqlite3_stmt *q;
    *id = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return err_set("%s: finding runs: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return err_set("%s: finding runs: %s", s->path, sqlite3_errmsg(s->db));
    return 0;
}

int run_lookup(Store *s, const RunKey *k, RunFound *found)
{
    found->stale = 0;
    if (latest_done(s, "run_key", k->run, &found->run_id)) return -1;
    if (found->run_id) return 0;
    if (latest_done(s, "setting_key", k->setting, &found->run_id)) return -1;
    found->stale = found->run_id != 0;
    return 0;
}

int run_lookup_plan(Store *s, const Plan *p, int i, RunFound *found)
{
    RunKey k;
    if (run_key_compute(&k, p->runs[i].argv, p->runs[i].argc)) return -1;
    return run_lookup(s, &k, found);
}

/* is the process there and not a zombie (a container's PID 1 may never
   reap an orphan, and kill(pid, 0) succeeds on a zombie)? */
static int alive(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;      /* no /proc: trust kill() */
    int zombie = 0;
    if (fgets(line, sizeof line, f)) {
        const char *close = strrchr(line, ')');   /* the state follows "(comm)" */
        zombie = close && close[1] == ' ' && close[2] == 'Z';
    }
    fclose(f);
    return !zombie;
}

int run_lookup_busy(Store *s, const RunKey *k, long *pid)
{
    *pid = 0;
    char *machine = store_machine_name();
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT pid FROM runs WHERE setting_key = ? AND status = 'running' AND machine = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        free(machine);
        return err_set("%s: finding running runs: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_bind_text(q, 1, k->setting, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, machine, -1, SQLITE_TRANSIENT);
    free(machine);
    while (!*pid && sqlite3_step(q) == SQLITE_ROW) {
        pid_t p = (pid_t)sqlite3_column_int64(q, 0);
        if (p != getpid() && alive(p)) *pid = (long)p;
    }
    sqlite3_finalize(q);
    return 0;
}

int run_lookup_reap(Store *s, int *n)
{
    *n = 0;
    char *machine = store_machine_name();
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT id, pid FROM runs WHERE status = 'running' AND machine = ?", -1, &q,
                           NULL) != SQLITE_OK) {
        free(machine);
        return err_set("%s: finding running runs: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_bind_text(q, 1, machine, -1, SQLITE_TRANSIENT);
    free(machine);
    int64_t dead[256];
    int n_dead = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && n_dead < 256) {
        pid_t pid = (pid_t)sqlite3_column_int64(q, 1);
        if (!alive(pid)) dead[n_dead++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    for (int i = 0; i < n_dead; i++)
        if (store_run_failed(s, dead[i], "interrupted: its process is gone")) return -1;
    *n = n_dead;
    return 0;
}
