/*
 * store_merge.c: combining results databases (`deediff merge`); the exact
 * rules are in store_merge.h.
 *
 * How: the output is built in OUT.tmp-<pid> (a copy of OUT when OUT exists,
 * made with VACUUM INTO, which keeps runs.id). Each input is opened
 * read-only on its own connection, inside one read transaction (a
 * consistent snapshot even if a shard is still writing), and its rows are
 * copied by prepared statements, value by value, into the output's single
 * write transaction. Columns are those the output and the input share, so
 * an input of an older schema version copies what it has. The tables are
 * found from the output's schema: `runs`; every table with a run_id column
 * is a child of runs and follows its run; regress_checks is copied without
 * duplicates; any other table is a table merge has no rule for (a bug:
 * store_merge.h must then say how it merges).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "store_merge.h"
#include "store_sql.h"

/* one table whose rows belong to a run (a run_id column) */
typedef struct {
    char *name;
    int ncols;             /* the columns copied besides run_id (0: the input lacks the table) */
    sqlite3_stmt *select;  /* input: a run's rows, ?1 = the input's run id */
    sqlite3_stmt *insert;  /* output: (run_id, columns...), ?1 = the output's run id */
    sqlite3_stmt *erase;   /* output: DELETE a run's rows, ?1 = the output's run id */
} ChildTable;

typedef struct {
    Store *out;
    ChildTable *child;
    int nchild;
} Merge;

static void finalize_all(sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++) {
        sqlite3_finalize(st[i]);
        st[i] = NULL;
    }
}

/* the first column of the first row of sql (?1 = arg when arg is given), 0
   when there is no row */
static int query_int(Store *s, const char *sql, const char *arg, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    SQL_TRY(s, sqlite3_prepare_v2(s->db, sql, -1, &st, NULL));
    if (arg) SQL_TRY(s, sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT));
    int rc = sqlite3_step(st);
    SQL_TRY(s, rc);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    SQL_TRY(s, sqlite3_finalize(st));
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

static int has_table(Store *s, const char *table, int64_t *yes)
{
    return query_int(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", table, yes);
}

/* the name of table's INTEGER PRIMARY KEY (its rowid alias, renumbered by a
   merge) into name, or "" when it has none */
static int own_id_column(Store *s, const char *table, char name[64])
{
    sqlite3_stmt *st = NULL;
    name[0] = 0;
    SQL_TRY(s, sqlite3_prepare_v2(s->db,
        "SELECT name FROM pragma_table_info(?1) WHERE pk = 1 AND upper(type) = 'INTEGER' "
        "AND (SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0) = 1", -1, &st, NULL));
    SQL_TRY(s, sqlite3_bind_text(st, 1, table, -1, SQLITE_TRANSIENT));
    if (sqlite3_step(st) == SQLITE_ROW) snprintf(name, 64, "%s", (const char *)sqlite3_column_text(st, 0));
    SQL_TRY(s, sqlite3_finalize(st));
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

/* columns as SQL text, numbered from a first parameter F: list is
   "\"a\", \"b\"", values "?F, ?F+1", set "\"a\" = ?F, \"b\" = ?F+1"
   (sqlite3_malloc'd); n of them */
typedef struct {
    char *list, *values, *set;
    int n;
} Columns;

static void columns_free(Columns *c)
{
    sqlite3_free(c->list);
    sqlite3_free(c->values);
    sqlite3_free(c->set);
    memset(c, 0, sizeof *c);
}

/* the columns of table that both databases have, in the output's order,
   except skip_a and skip_b (NULL: none), numbered from `first` */
static int shared_columns(Store *in, Store *out, const char *table, const char *skip_a,
                          const char *skip_b, int first, Columns *c)
{
    sqlite3_stmt *cols = NULL, *there = NULL;
    sqlite3_str *list = sqlite3_str_new(NULL), *values = sqlite3_str_new(NULL), *set = sqlite3_str_new(NULL);
    memset(c, 0, sizeof *c);
    SQL_TRY(out, sqlite3_prepare_v2(out->db, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", -1, &cols, NULL));
    SQL_TRY(in, sqlite3_prepare_v2(in->db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", -1,
                                   &there, NULL));
    SQL_TRY(out, sqlite3_bind_text(cols, 1, table, -1, SQLITE_TRANSIENT));
    SQL_TRY(in, sqlite3_bind_text(there, 1, table, -1, SQLITE_TRANSIENT));
    for (;;) {
        int rc = sqlite3_step(cols);
        if (rc == SQLITE_DONE) break;
        SQL_TRY(out, rc);
        const char *name = (const char *)sqlite3_column_text(cols, 0);
        if ((skip_a && !strcmp(name, skip_a)) || (skip_b && !strcmp(name, skip_b))) continue;
        SQL_TRY(in, sqlite3_bind_text(there, 2, name, -1, SQLITE_TRANSIENT));
        SQL_TRY(in, sqlite3_step(there));
        int present = sqlite3_column_int(there, 0);
        SQL_TRY(in, sqlite3_reset(there));
        if (!present) continue;  /* an older input: the output's default */
        const char *sep = c->n ? ", " : "";
        sqlite3_str_appendf(list, "%s\"%w\"", sep, name);
        sqlite3_str_appendf(values, "%s?%d", sep, first + c->n);
        sqlite3_str_appendf(set, "%s\"%w\" = ?%d", sep, name, first + c->n);
        c->n++;
    }
    SQL_TRY(out, sqlite3_finalize(cols));
    SQL_TRY(in, sqlite3_finalize(there));
    c->list = sqlite3_str_finish(list);
    c->values = sqlite3_str_finish(values);
    c->set = sqlite3_str_finish(set);
    CHECK(c->list && c->values && c->set && c->n > 0, "%s: table %s: no shared columns (or out of memory)",
          in->path, table);
    return 0;
fail:
    sqlite3_finalize(cols);
    sqlite3_finalize(there);
    sqlite3_free(sqlite3_str_finish(list));
    sqlite3_free(sqlite3_str_finish(values));
    sqlite3_free(sqlite3_str_finish(set));
    return -1;
}

/* prepares sql (built with sqlite3_mprintf; freed here) on s */
static int prepare_built(Store *s, char *sql, sqlite3_stmt **st)
{
    CHECK(sql, "sqlite3_mprintf: out of memory");
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) return store_sql_error(s, __FILE__, __LINE__);
    return 0;
}

/* copies the values of columns first..first+n-1 of a stepped `from` into
   parameters at..at+n-1 of `to` */
static int bind_values(Store *out, sqlite3_stmt *to, int at, sqlite3_stmt *from, int first, int n)
{
    for (int i = 0; i < n; i++)
        SQL_TRY(out, sqlite3_bind_value(to, at + i, sqlite3_column_value(from, first + i)));
    return 0;
fail:
    return -1;
}

/* ---- the output's tables ------------------------------------------------------ */

/* finds the child tables of runs in the output and checks that merge has a
   rule for every table */
static int find_tables(Merge *m)
{
    Store *out = m->out;
    sqlite3_stmt *st = NULL;
    SQL_TRY(out, sqlite3_prepare_v2(out->db,
        "SELECT name, EXISTS (SELECT 1 FROM pragma_table_info(t.name) WHERE name = 'run_id') "
        "FROM sqlite_schema t WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name", -1, &st, NULL));
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) break;
        SQL_TRY(out, rc);
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (sqlite3_column_int(st, 1)) {
            m->child = xrealloc(m->child, (size_t)(m->nchild + 1) * sizeof *m->child);
            ChildTable *c = &m->child[m->nchild++];
            memset(c, 0, sizeof *c);
            c->name = xstrdup(name);
            char *sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE run_id = ?1", name);
            if (prepare_built(out, sql, &c->erase)) goto fail;
        } else if (strcmp(name, "runs") && strcmp(name, "regress_checks")) {
            FATAL("store_merge.c: table %s has no merge rule: say in store_merge.h how it merges", name);
        }
    }
    SQL_TRY(out, sqlite3_finalize(st));
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

static void tables_free(Merge *m)
{
    for (int i = 0; i < m->nchild; i++) {
        ChildTable *c = &m->child[i];
        sqlite3_finalize(c->select);
        sqlite3_finalize(c->insert);
        sqlite3_finalize(c->erase);
        free(c->name);
    }
    free(m->child);
    m->child = NULL;
    m->nchild = 0;
}

/* prepares each child table's select (on in) and insert (on the output) */
static int prepare_children(Merge *m, Store *in)
{
    for (int i = 0; i < m->nchild; i++) {
        ChildTable *c = &m->child[i];
        int64_t there;
        if (has_table(in, c->name, &there)) return -1;
        if (!there) continue;  /* an older input */
        char id[64];
        if (own_id_column(m->out, c->name, id)) return -1;
        Columns cols;
        if (shared_columns(in, m->out, c->name, "run_id", id[0] ? id : NULL, 2, &cols)) return -1;
        c->ncols = cols.n;
        char *sel = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE run_id = ?1%s%s", cols.list, c->name,
                                    id[0] ? " ORDER BY " : "", id);
        char *ins = sqlite3_mprintf("INSERT INTO \"%w\" (run_id, %s) VALUES (?1, %s)", c->name, cols.list,
                                    cols.values);
        columns_free(&cols);
        if (prepare_built(in, sel, &c->select)) {
            sqlite3_free(ins);
            return -1;
        }
        if (prepare_built(m->out, ins, &c->insert)) return -1;
    }
    return 0;
}

static void children_release(Merge *m)
{
    for (int i = 0; i < m->nchild; i++) {
        ChildTable *c = &m->child[i];
        sqlite3_finalize(c->select);
        sqlite3_finalize(c->insert);
        c->select = c->insert = NULL;
        c->ncols = 0;
    }
}

/* copies every child row of input run `from` to output run `to`, after
   removing what the output had for `to` when `replace` */
static int copy_children(Merge *m, Store *in, int64_t from, int64_t to, int replace)
{
    Store *out = m->out;
    for (int i = 0; i < m->nchild; i++) {
        ChildTable *c = &m->child[i];
        if (replace) {
            SQL_TRY(out, sqlite3_bind_int64(c->erase, 1, to));
            SQL_TRY(out, sqlite3_step(c->erase));
            SQL_TRY(out, sqlite3_reset(c->erase));
        }
        if (!c->ncols) continue;
        SQL_TRY(in, sqlite3_bind_int64(c->select, 1, from));
        SQL_TRY(out, sqlite3_bind_int64(c->insert, 1, to));
        for (;;) {
            int rc = sqlite3_step(c->select);
            if (rc == SQLITE_DONE) break;
            SQL_TRY(in, rc);
            if (bind_values(out, c->insert, 2, c->select, 0, c->ncols)) goto fail;
            SQL_TRY(out, sqlite3_step(c->insert));
            SQL_TRY(out, sqlite3_reset(c->insert));
        }
        SQL_TRY(in, sqlite3_reset(c->select));
    }
    return 0;
fail:
    for (int i = 0; i < m->nchild; i++) {
        if (m->child[i].select) sqlite3_reset(m->child[i].select);
        if (m->child[i].insert) sqlite3_reset(m->child[i].insert);
        sqlite3_reset(m->child[i].erase);
    }
    return -1;
}

/* ---- one input ------------------------------------------------------------------ */

/* Opens path read-only as a results database of this deediff's version or
   an older one, inside a read transaction (ended by store_close) */
static int open_input(Store *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->path = xstrdup(path);
    struct stat sb;
    if (stat(path, &sb)) {
        err_set("%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_set("%s: not a regular file", path);
        goto fail;
    }
    if (sqlite3_open_v2(path, &in->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        if (!in->db) FATAL("sqlite3_open_v2: out of memory");
        store_sql_error(in, __FILE__, __LINE__);
        goto fail;
    }
    SQL_TRY(in, sqlite3_extended_result_codes(in->db, 1));
    SQL_TRY(in, sqlite3_busy_timeout(in->db, STORE_BUSY_TIMEOUT_MS));
    SQL_EXEC(in, "BEGIN");
    int64_t version, runs;
    /* the first read: a corrupt file or one that is not SQLite fails here */
    if (query_int(in, "PRAGMA user_version", NULL, &version)) goto fail;
    if (version > store_schema_version()) {
        err_set("%s: schema version %lld is newer than this deediff's %d; merge with a newer deediff", path,
                (long long)version, store_schema_version());
        goto fail;
    }
    if (has_table(in, "runs", &runs)) goto fail;
    if (version < 1 || !runs) {
        err_set("%s: not a deediff results database (no runs table)", path);
        goto fail;
    }
    return 0;
fail:
    store_close(in);
    return -1;
}

/* what the output holds under a uuid */
typedef struct {
    int64_t id;     /* 0: nothing */
    int running;
} OutRun;

static int find_out_run(Store *out, sqlite3_stmt *find, sqlite3_value *uuid, OutRun *r)
{
    r->id = 0;
    r->running = 0;
    SQL_TRY(out, sqlite3_bind_value(find, 1, uuid));
    int rc = sqlite3_step(find);
    SQL_TRY(out, rc);
    if (rc == SQLITE_ROW) {
        r->id = sqlite3_column_int64(find, 0);
        r->running = sqlite3_column_int(find, 1);
    }
    SQL_TRY(out, sqlite3_reset(find));
    return 0;
fail:
    sqlite3_reset(find);
    return -1;
}

/* The runs of `in` and their rows. Columns of `sel`: 0 id, 1 uuid, 2 is
   running, 3 the parent's uuid, 4 has a parent, 5.. the shared columns. */
enum { RUN_ID, RUN_UUID, RUN_RUNNING, RUN_PARENT_UUID, RUN_HAS_PARENT, RUN_COLS };

static int merge_runs(Merge *m, Store *in, MergeInputStats *stats)
{
    Store *out = m->out;
    sqlite3_stmt *st[5] = {NULL};
    sqlite3_stmt **sel = &st[0], **find = &st[1], **ins = &st[2], **upd = &st[3], **parent = &st[4];
    Columns cols = {0};
    if (shared_columns(in, out, "runs", "id", "parent_id", 1, &cols)) return -1;
    if (prepare_built(in, sqlite3_mprintf(
            "SELECT r.id, r.uuid, r.status = 'running', (SELECT p.uuid FROM runs p WHERE p.id = r.parent_id), "
            "r.parent_id IS NOT NULL, %s FROM runs r ORDER BY r.id", cols.list), sel) ||
        prepare_built(out, sqlite3_mprintf("INSERT INTO runs (%s) VALUES (%s)", cols.list, cols.values), ins) ||
        prepare_built(out, sqlite3_mprintf("UPDATE runs SET %s WHERE id = ?%d", cols.set, cols.n + 1), upd) ||
        prepare_built(out, sqlite3_mprintf("SELECT id, status = 'running' FROM runs WHERE uuid = ?1"), find) ||
        prepare_built(out, sqlite3_mprintf("INSERT OR REPLACE INTO temp.merge_parent VALUES (?1, ?2)"), parent))
        goto fail;
    for (;;) {
        int rc = sqlite3_step(*sel);
        if (rc == SQLITE_DONE) break;
        SQL_TRY(in, rc);
        OutRun have;
        if (find_out_run(out, *find, sqlite3_column_value(*sel, RUN_UUID), &have)) goto fail;
        int replace = have.id && have.running && !sqlite3_column_int(*sel, RUN_RUNNING);
        if (have.id && !replace) {
            stats->runs_present++;
            continue;
        }
        int64_t to = have.id;
        sqlite3_stmt *write = replace ? *upd : *ins;
        if (bind_values(out, write, 1, *sel, RUN_COLS, cols.n)) goto fail;
        if (replace) SQL_TRY(out, sqlite3_bind_int64(write, cols.n + 1, to));
        SQL_TRY(out, sqlite3_step(write));
        SQL_TRY(out, sqlite3_reset(write));
        if (!replace) to = sqlite3_last_insert_rowid(out->db);
        if (sqlite3_column_int(*sel, RUN_HAS_PARENT)) {
            /* resolved through the uuid once every input is in (NULL: dangling) */
            SQL_TRY(out, sqlite3_bind_int64(*parent, 1, to));
            SQL_TRY(out, sqlite3_bind_value(*parent, 2, sqlite3_column_value(*sel, RUN_PARENT_UUID)));
            SQL_TRY(out, sqlite3_step(*parent));
            SQL_TRY(out, sqlite3_reset(*parent));
        }
        if (copy_children(m, in, sqlite3_column_int64(*sel, RUN_ID), to, replace)) goto fail;
        if (replace) stats->runs_updated++;
        else stats->runs_merged++;
    }
    finalize_all(st, 5);
    columns_free(&cols);
    return 0;
fail:
    finalize_all(st, 5);
    columns_free(&cols);
    return -1;
}

/* regress_checks rows whose (check_id, cell) the output lacks */
static int merge_checks(Store *out, Store *in, MergeInputStats *stats)
{
    int64_t there;
    if (has_table(in, "regress_checks", &there)) return -1;
    if (!there) return 0;  /* an input older than version 3 */
    sqlite3_stmt *st[3] = {NULL};
    sqlite3_stmt **sel = &st[0], **find = &st[1], **ins = &st[2];
    Columns cols = {0};
    if (shared_columns(in, out, "regress_checks", "id", NULL, 1, &cols)) return -1;
    if (prepare_built(in, sqlite3_mprintf("SELECT check_id, cell, %s FROM regress_checks ORDER BY id", cols.list),
                      sel) ||
        prepare_built(out, sqlite3_mprintf("SELECT count(*) FROM regress_checks WHERE check_id = ?1 AND cell = ?2"),
                      find) ||
        prepare_built(out, sqlite3_mprintf("INSERT INTO regress_checks (%s) VALUES (%s)", cols.list, cols.values),
                      ins))
        goto fail;
    for (;;) {
        int rc = sqlite3_step(*sel);
        if (rc == SQLITE_DONE) break;
        SQL_TRY(in, rc);
        if (bind_values(out, *find, 1, *sel, 0, 2)) goto fail;
        SQL_TRY(out, sqlite3_step(*find));
        int present = sqlite3_column_int(*find, 0) > 0;
        SQL_TRY(out, sqlite3_reset(*find));
        if (present) {
            stats->checks_present++;
            continue;
        }
        if (bind_values(out, *ins, 1, *sel, 2, cols.n)) goto fail;
        SQL_TRY(out, sqlite3_step(*ins));
        SQL_TRY(out, sqlite3_reset(*ins));
        stats->checks_merged++;
    }
    finalize_all(st, 3);
    columns_free(&cols);
    return 0;
fail:
    finalize_all(st, 3);
    columns_free(&cols);
    return -1;
}

static int merge_input(Merge *m, const char *path, MergeInputStats *stats)
{
    Store in;
    if (open_input(&in, path)) return -1;
    int rc = prepare_children(m, &in) || merge_runs(m, &in, stats) || merge_checks(m->out, &in, stats) ? -1 : 0;
    children_release(m);
    store_close(&in);  /* ends the read transaction */
    return rc;
}

/* ---- the whole merge ---------------------------------------------------------------- */

/* parent_id of the copied runs from their parents' uuids; counts orphans */
static int resolve_parents(Store *out, MergeSummary *sum)
{
    if (query_int(out, "SELECT count(*) FROM temp.merge_parent mp "
                       "WHERE NOT EXISTS (SELECT 1 FROM runs o WHERE o.uuid = mp.parent_uuid)", NULL,
                  &sum->orphans))
        return -1;
    SQL_EXEC(out, "UPDATE runs SET parent_id = (SELECT o.id FROM temp.merge_parent mp "
                  "JOIN runs o ON o.uuid = mp.parent_uuid WHERE mp.run_id = runs.id) "
                  "WHERE id IN (SELECT run_id FROM temp.merge_parent)");
    return 0;
fail:
    return -1;
}

/* removes path and the files SQLite keeps beside it */
static void remove_db_files(const char *path)
{
    static const char *const SUFFIX[] = {"", "-wal", "-shm", "-journal"};
    size_t n = strlen(path) + 16;
    char *p = xmalloc(n);
    for (size_t i = 0; i < sizeof SUFFIX / sizeof SUFFIX[0]; i++) {
        snprintf(p, n, "%s%s", path, SUFFIX[i]);
        unlink(p);
    }
    free(p);
}

/* copies OUT into tmp (VACUUM INTO keeps runs.id); *runs = OUT's run count */
static int copy_base(const char *out, const char *tmp, int64_t *runs)
{
    Store base;
    if (open_input(&base, out)) return -1;
    sqlite3_stmt *st = NULL;
    if (query_int(&base, "SELECT count(*) FROM runs", NULL, runs)) goto fail;
    SQL_EXEC(&base, "COMMIT");  /* VACUUM runs outside a transaction */
    SQL_TRY(&base, sqlite3_prepare_v2(base.db, "VACUUM INTO ?1", -1, &st, NULL));
    SQL_TRY(&base, sqlite3_bind_text(st, 1, tmp, -1, SQLITE_TRANSIENT));
    SQL_TRY(&base, sqlite3_step(st));
    SQL_TRY(&base, sqlite3_finalize(st));
    store_close(&base);
    return 0;
fail:
    sqlite3_finalize(st);
    store_close(&base);
    return -1;
}

static int merge_all(Store *o, const char *const *inputs, int n, MergeInputStats *stats, MergeSummary *sum)
{
    Merge m = {.out = o};
    if (find_tables(&m)) goto fail;
    SQL_EXEC(o, "CREATE TEMP TABLE merge_parent (run_id INTEGER PRIMARY KEY, parent_uuid TEXT)");
    if (store_begin(o)) goto fail;
    for (int i = 0; i < n; i++)
        if (merge_input(&m, inputs[i], &stats[i])) goto rollback;
    if (resolve_parents(o, sum) ||
        query_int(o, "SELECT count(*) FROM runs", NULL, &sum->runs) ||
        query_int(o, "SELECT count(*) FROM (SELECT run_key FROM runs WHERE status = 'done' AND run_key IS NOT NULL "
                     "GROUP BY run_key HAVING count(*) > 1)", NULL, &sum->duplicate_keys))
        goto rollback;
    tables_free(&m);
    if (store_commit(o)) return -1;
    /* one file to rename: no write-ahead log beside it */
    SQL_EXEC(o, "PRAGMA journal_mode = DELETE");
    return 0;
rollback:
    store_rollback(o);
fail:
    tables_free(&m);
    return -1;
}

int store_merge(const char *out, const char *const *inputs, int n, MergeInputStats *stats,
                MergeSummary *summary)
{
    CHECK(n >= 1, "store_merge: no inputs");
    memset(stats, 0, (size_t)n * sizeof *stats);
    memset(summary, 0, sizeof *summary);
    size_t len = strlen(out) + 32;
    char *tmp = xmalloc(len), *wal = xmalloc(len), *shm = xmalloc(len);
    snprintf(tmp, len, "%s.tmp-%d", out, (int)getpid());
    snprintf(wal, len, "%s-wal", out);
    snprintf(shm, len, "%s-shm", out);
    remove_db_files(tmp);  /* left by a killed merge of the same pid */
    Store o = {0};
    struct stat sb;
    if (!stat(out, &sb) && copy_base(out, tmp, &summary->out_runs_before)) goto fail;
    if (store_open(&o, tmp)) goto fail;
    if (merge_all(&o, inputs, n, stats, summary)) goto fail;
    store_close(&o);
    /* OUT's log, if a killed writer left one, was read into the copy: it
       must not be replayed onto the new file */
    unlink(wal);
    unlink(shm);
    if (rename(tmp, out)) {
        err_set("%s: cannot replace it with %s: %s", out, tmp, strerror(errno));
        goto fail;
    }
    free(tmp);
    free(wal);
    free(shm);
    return 0;
fail:
    if (o.db) store_close(&o);
    remove_db_files(tmp);
    free(tmp);
    free(wal);
    free(shm);
    return -1;
}
