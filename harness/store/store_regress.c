/*
 * store_regress.c: table regress_checks written and read (store_regress.h).
 */
#include <math.h>
#include <stdlib.h>

#include "../../kernels/errors.h"
#include "code_version.h"
#include "store_regress.h"

static void bind_real_or_null(sqlite3_stmt *q, int i, double v)
{
    if (isnan(v)) sqlite3_bind_null(q, i);
    else sqlite3_bind_double(q, i, v);
}

int store_regress_checks(Store *s, const RegressCheck *c, int n)
{
    char *commit = store_git_commit(), *machine = store_machine_name(), *cpu = store_cpu_model();
    sqlite3_stmt *q = NULL;
    int rc = store_begin(s);
    if (rc == 0 && sqlite3_prepare_v2(s->db,
            "INSERT INTO regress_checks (check_id, git_commit, code_version, machine, cpu, cell, baseline, value, "
            "tolerance, passed) VALUES (?,?,?,?,?,?,?,?,?,?)", -1, &q, NULL) != SQLITE_OK)
        rc = err_set("%s: regress_checks: %s", s->path, sqlite3_errmsg(s->db));
    for (int i = 0; rc == 0 && i < n; i++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, c[i].check_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, commit, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, deediff_code_version, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, machine, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, cpu, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, c[i].cell, -1, SQLITE_STATIC);
        bind_real_or_null(q, 7, c[i].baseline);
        bind_real_or_null(q, 8, c[i].value);
        sqlite3_bind_text(q, 9, c[i].tolerance_json, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 10, c[i].passed != 0);
        if (sqlite3_step(q) != SQLITE_DONE) rc = err_set("%s: regress_checks: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(q);
    if (rc == 0) rc = store_commit(s);
    else store_rollback(s);
    free(commit);
    free(machine);
    free(cpu);
    return rc;
}

int store_regress_history(Store *s, int (*row)(void *user, const char *cell, const char *checked_at,
                                                double baseline, double value, int passed),
                          void *user)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT cell, checked_at, baseline, value, passed FROM regress_checks "
                                  "ORDER BY cell, checked_at, id", -1, &q, NULL) != SQLITE_OK)
        return err_set("%s: regress_checks: %s", s->path, sqlite3_errmsg(s->db));
    int rc = 0, st;
    while (rc == 0 && (st = sqlite3_step(q)) == SQLITE_ROW)
        rc = row(user, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
                 sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2),
                 sqlite3_column_type(q, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 3),
                 sqlite3_column_int(q, 4));
    sqlite3_finalize(q);
    return rc;
}
