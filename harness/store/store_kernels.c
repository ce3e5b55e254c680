/*
 * store_kernels.c: table kernel_timings and runs.kernel_timing written and
 * read (store_kernels.h).
 */
#include <stdio.h>

#include "../../kernels/errors.h"
#include "store_kernels.h"
#include "store_sql.h"

int store_kernel_timings(Store *s, int64_t run_id, const char *source, const char *note,
                         const KernelTiming *rows, int64_t n)
{
    sqlite3_stmt *up = NULL, *del = NULL, *ins = NULL;
    if (store_begin(s)) return -1;
    SQL_TRY(s, sqlite3_prepare_v2(s->db, "UPDATE runs SET kernel_timing = ?2, kernel_timing_note = ?3 WHERE id = ?1",
                                  -1, &up, NULL));
    sqlite3_bind_int64(up, 1, run_id);
    sqlite3_bind_text(up, 2, source, -1, SQLITE_STATIC);
    if (note) sqlite3_bind_text(up, 3, note, -1, SQLITE_STATIC);
    SQL_TRY(s, sqlite3_step(up));
    if (sqlite3_changes(s->db) != 1) {
        err_set("%s: kernel_timings: no run %lld", s->path, (long long)run_id);
        goto fail;
    }
    SQL_TRY(s, sqlite3_prepare_v2(s->db, "DELETE FROM kernel_timings WHERE run_id = ?1", -1, &del, NULL));
    sqlite3_bind_int64(del, 1, run_id);
    SQL_TRY(s, sqlite3_step(del));
    SQL_TRY(s, sqlite3_prepare_v2(s->db,
        "INSERT INTO kernel_timings (run_id, phase, phase_index, kernel, count, total_ns, min_ns, max_ns) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &ins, NULL));
    for (int64_t i = 0; i < n; i++) {
        const KernelTiming *r = &rows[i];
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, run_id);
        sqlite3_bind_text(ins, 2, r->phase, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 3, r->phase_index);
        sqlite3_bind_text(ins, 4, r->kernel, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, r->count);
        sqlite3_bind_int64(ins, 6, r->total_ns);
        sqlite3_bind_int64(ins, 7, r->min_ns);
        sqlite3_bind_int64(ins, 8, r->max_ns);
        SQL_TRY(s, sqlite3_step(ins));
    }
    sqlite3_finalize(up);
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return store_commit(s);
fail:
    sqlite3_finalize(up);
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    store_rollback(s);
    return -1;
}

int store_kernel_timings_read(Store *s, int64_t run_id, int (*row)(void *user, const KernelTiming *r),
                              void *user)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db,
            "SELECT phase, phase_index, kernel, count, total_ns, min_ns, max_ns FROM kernel_timings "
            "WHERE run_id = ?1 ORDER BY phase, phase_index, total_ns DESC, kernel", -1, &q, NULL) != SQLITE_OK)
        return err_set("%s: kernel_timings: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_int64(q, 1, run_id);
    int rc = 0, st;
    while (rc == 0 && (st = sqlite3_step(q)) == SQLITE_ROW) {
        KernelTiming r = {(const char *)sqlite3_column_text(q, 0), sqlite3_column_int(q, 1),
                          (const char *)sqlite3_column_text(q, 2), sqlite3_column_int64(q, 3),
                          sqlite3_column_int64(q, 4), sqlite3_column_int64(q, 5), sqlite3_column_int64(q, 6)};
        rc = row(user, &r);
    }
    if (rc == 0 && st != SQLITE_DONE) rc = err_set("%s: kernel_timings: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(q);
    return rc;
}

int store_kernel_timing_source(Store *s, int64_t run_id, char *source, char *note, size_t n)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT kernel_timing, kernel_timing_note FROM runs WHERE id = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return err_set("%s: runs: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_bind_int64(q, 1, run_id);
    int rc = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *src = sqlite3_column_text(q, 0), *why = sqlite3_column_text(q, 1);
        snprintf(source, n, "%s", src ? (const char *)src : "none");
        snprintf(note, n, "%s", why ? (const char *)why : "");
    } else {
        rc = err_set("%s: runs: no run %lld", s->path, (long long)run_id);
    }
    sqlite3_finalize(q);
    return rc;
}
