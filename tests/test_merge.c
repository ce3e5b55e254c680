/*
 * test_merge.c: combining the databases of a sharded experiment
 * (harness/store/store_merge.h, `deediff merge`): overlapping shards give
 * each run once with all its rows under new ids, a repeated merge adds
 * nothing, a 'running' copy is replaced by its finished one, an older input
 * is read and a newer, corrupt or missing one refused with one line naming
 * it and OUT left as it was; and two runners writing one file at once lose
 * nothing.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/store/store.h"
#include "harness/store/store_merge.h"
#include "kernels/errors.h"
#include "support/cli_run.h"
#include "support/store_writers.h"
#include "support/temp_dir.h"

static char dir[64];

static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-merge-XXXXXX"); }
static void teardown(void) { temp_dir_remove(dir); }

TestSuite(merge, .init = setup, .fini = teardown, .timeout = 120);

static const char *path_in(const char *name) { return temp_dir_path(dir, name); }

/* ---- writing shards ---------------------------------------------------------- */

static void open_db(Store *s, const char *name)
{
    cr_assert_eq(store_open(s, path_in(name)), 0, "%s", err_msg());
}

/* A run with rows in every child table, its numbers drawn from `seed`: 3
   metrics, 4 training-log rows, 1 artifact, 6 exits, 4 figure points;
   'done' when done, else left 'running'. Returns its id. */
static int64_t add_run(Store *s, const char *kind, const char *name, int64_t parent, double seed, int done)
{
    RunInfo ri = {.kind = kind, .name = name, .config_json = "{\"seed\": 1}", .backend = "cpu",
                  .parent_id = parent};
    int64_t id;
    cr_assert_eq(store_run_begin(s, &ri, &id), 0, "%s", err_msg());
    Metric m[] = {
        {.name = "fid", .value = seed, .protocol_json = "{\"N\": 100}", .step = -1},
        {.name = "layers_ratio", .value = seed / 10, .step = -1},
        {.name = "time.network_ms.median", .value = seed + 0.5, .unit = "ms", .step = 5},
    };
    cr_assert_eq(store_metrics(s, id, m, 3), 0, "%s", err_msg());
    TrainLog tl;
    train_log_init(&tl, s, id, 4);
    for (int step = 1; step <= 4; step++) {
        TrainRow r = {.step = step, .loss = seed / step, .lr = 1e-4, .grad_norm = NAN, .images_per_s = 10,
                      .wall_s = step};
        cr_assert_eq(train_log_add(&tl, &r), 0, "%s", err_msg());
    }
    cr_assert_eq(train_log_close(&tl), 0, "%s", err_msg());
    Artifact a = {.kind = "checkpoint", .path = name, .hash = "ab", .bytes = (int64_t)seed, .step = -1};
    cr_assert_eq(store_artifact(s, id, &a), 0, "%s", err_msg());
    ExitRow e[6];
    for (int i = 0; i < 6; i++)
        e[i] = (ExitRow){.image_id = i % 2, .eval = i / 2, .t = 1 - i / 10.0, .exit_block = i, .score = i ? seed : NAN};
    cr_assert_eq(store_exits(s, id, e, 6), 0, "%s", err_msg());
    FigurePoint p[4];
    for (int i = 0; i < 4; i++) p[i] = (FigurePoint){"fig1_layer_mse", "block 1", i, seed * i};
    cr_assert_eq(store_figure_points(s, id, p, 4), 0, "%s", err_msg());
    if (done) cr_assert_eq(store_run_done(s, id), 0, "%s", err_msg());
    return id;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path_in(from), path_in(to));
    cr_assert_eq(system(cmd), 0);
}

/* Two shards that overlap: b.db starts as a copy of a.db's first two runs
   (a train run and a sample run, its child), then each gets runs of its
   own whose integer ids collide: a.db 1 run, b.db 2 runs (one the child of
   the shared train run). 5 distinct runs. */
static void write_overlapping_shards(void)
{
    Store s;
    open_db(&s, "a.db");
    int64_t train = add_run(&s, "train", "fmnist/backbone", 0, 1.0, 1);
    add_run(&s, "sample", "fmnist/sample", train, 2.0, 1);
    store_close(&s);
    copy_file("a.db", "b.db");
    open_db(&s, "a.db");
    add_run(&s, "eval", "fmnist/eval-a", 2, 3.0, 1);
    store_close(&s);
    open_db(&s, "b.db");
    int64_t e = add_run(&s, "eval", "fmnist/eval-b", train, 4.0, 1);
    add_run(&s, "sample", "fmnist/sample-b", e, 5.0, 1);
    store_close(&s);
}

static int merge(const char *out, const char *a, const char *b, MergeInputStats *st, MergeSummary *sum)
{
    const char *in[2] = {path_in(a), b ? path_in(b) : NULL};
    return store_merge(path_in(out), in, b ? 2 : 1, st, sum);
}

/* ---- reading back --------------------------------------------------------------- */

/* the first column of sql's first row on name, with a.db and b.db attached
   as a and b when they exist */
static int64_t query(const char *name, const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path_in(name), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    static const char *const SHARDS[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        char file[16], attach[1200];
        snprintf(file, sizeof file, "%s.db", SHARDS[i]);
        if (access(path_in(file), F_OK)) continue;
        snprintf(attach, sizeof attach, "ATTACH '%s' AS %s", path_in(file), SHARDS[i]);
        cr_assert_eq(sqlite3_exec(db, attach, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    }
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* every table keyed by its run's uuid, with the columns a merge must keep
   ("S" stands for the schema: main, a or b) */
static const struct {
    const char *table, *rows;
} TABLES[] = {
    {"runs", "SELECT t.uuid, t.kind, t.name, t.config, t.status, t.git_commit, t.started_at, t.finished_at, "
             "t.code_version, p.uuid FROM S.runs t LEFT JOIN S.runs p ON p.id = t.parent_id"},
    {"metrics", "SELECT r.uuid, t.name, t.value, t.unit, t.step, t.protocol, t.created_at "
                "FROM S.metrics t JOIN S.runs r ON r.id = t.run_id"},
    {"train_log", "SELECT r.uuid, t.step, t.loss, t.lr, t.grad_norm, t.images_per_s, t.wall_s "
                  "FROM S.train_log t JOIN S.runs r ON r.id = t.run_id"},
    {"artifacts", "SELECT r.uuid, t.kind, t.path, t.hash, t.bytes, t.step, t.created_at "
                  "FROM S.artifacts t JOIN S.runs r ON r.id = t.run_id"},
    {"exits", "SELECT r.uuid, t.image_id, t.eval, t.t, t.exit_block, t.score "
              "FROM S.exits t JOIN S.runs r ON r.id = t.run_id"},
    {"figure_points", "SELECT r.uuid, t.figure, t.series, t.x, t.y "
                      "FROM S.figure_points t JOIN S.runs r ON r.id = t.run_id"},
};

/* TABLES[i].rows on schema s */
static const char *rows_of(int i, const char *s)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    char *o = buf[k];
    for (const char *c = TABLES[i].rows; *c; c++) {
        if (c[0] == 'S' && c[1] == '.') o += sprintf(o, "%s", s);
        else *o++ = *c;
    }
    *o = 0;
    return buf[k];
}

/* name holds exactly the rows of a.db and b.db, each run (uuid) once with
   its rows as its first input had them, its parent by uuid */
static void expect_union_of_shards(const char *name)
{
    char sql[4096];
    for (int i = 0; i < (int)(sizeof TABLES / sizeof TABLES[0]); i++) {
        const char *t = TABLES[i].table;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s EXCEPT %s)", rows_of(i, "a"), rows_of(i, "main"));
        cr_expect_eq(query(name, sql), 0, "%s: rows of a.db missing", t);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s EXCEPT %s)", rows_of(i, "b"), rows_of(i, "main"));
        cr_expect_eq(query(name, sql), 0, "%s: rows of b.db missing", t);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s EXCEPT %s EXCEPT %s)", rows_of(i, "main"),
                 rows_of(i, "a"), rows_of(i, "b"));
        cr_expect_eq(query(name, sql), 0, "%s: rows in neither shard", t);
        /* and none twice: as many rows as a.db plus b.db's runs that a.db lacks */
        snprintf(sql, sizeof sql, "SELECT (SELECT count(*) FROM (%s)) - (SELECT count(*) FROM (%s)) - "
                                  "(SELECT count(*) FROM (%s) WHERE uuid NOT IN (SELECT uuid FROM a.runs))",
                 rows_of(i, "main"), rows_of(i, "a"), rows_of(i, "b"));
        cr_expect_eq(query(name, sql), 0, "%s: rows doubled", t);
    }
}

static void read_file(const char *name, char *buf, size_t size, size_t *n)
{
    FILE *f = fopen(path_in(name), "rb");
    cr_assert_not_null(f, "%s", name);
    *n = fread(buf, 1, size, f);
    cr_assert_lt(*n, size, "%s: larger than the test's buffer", name);
    fclose(f);
}

/* no OUT.tmp-* left in the folder */
static void expect_no_temporary_file(void)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) cr_expect_null(strstr(e->d_name, ".tmp-"), "left behind: %s", e->d_name);
    closedir(d);
}

static void expect_one_line_naming(const char *name)
{
    const char *msg = err_msg();
    cr_expect(strstr(msg, path_in(name)) == msg, "error does not start with %s: %s", name, msg);
    cr_expect_null(strchr(msg, '\n'), "error is not one line: %s", msg);
}

/* ---- merging ---------------------------------------------------------------------- */

Test(merge, overlapping_shards)
{
    write_overlapping_shards();
    MergeInputStats st[2];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", "b.db", st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].runs_merged, 3);
    cr_expect_eq(st[0].runs_present, 0);
    cr_expect_eq(st[1].runs_merged, 2);
    cr_expect_eq(st[1].runs_present, 2);
    cr_expect_eq(sum.runs, 5);
    cr_expect_eq(sum.out_runs_before, 0);
    cr_expect_eq(sum.orphans, 0);
    cr_expect_eq(sum.duplicate_keys, 0);
    expect_union_of_shards("out.db");
    /* the ids collided (b.db's eval run is its id 3, as a.db's is): by uuid,
       each run has its own rows */
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs"), 5);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM metrics"), 15);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM exits"), 30);
    cr_expect_eq(query("out.db", "SELECT value FROM metrics m JOIN runs r ON r.id = m.run_id "
                                 "WHERE r.name = 'fmnist/eval-b' AND m.name = 'fid'"), 4);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs r JOIN runs p ON p.id = r.parent_id "
                                 "WHERE r.name = 'fmnist/sample-b' AND p.name = 'fmnist/eval-b'"), 1);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs r JOIN runs p ON p.id = r.parent_id "
                                 "WHERE r.name = 'fmnist/eval-b' AND p.name = 'fmnist/backbone'"), 1);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM train_log l JOIN runs r ON r.id = l.run_id "
                                 "WHERE r.name = 'fmnist/sample-b' AND l.loss * 2 = 5"), 1);
    cr_expect_eq(query("out.db", "PRAGMA user_version"), store_schema_version());
    /* the result is an ordinary results database */
    Store s;
    open_db(&s, "out.db");
    store_close(&s);
    expect_no_temporary_file();
}

Test(merge, repeated_merge_is_idempotent)
{
    write_overlapping_shards();
    MergeInputStats st[2];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", "b.db", st, &sum), 0, "%s", err_msg());
    int64_t ids = query("out.db", "SELECT sum(id * length(uuid)) FROM runs");
    /* again, in the other order, and OUT with itself: nothing new */
    cr_assert_eq(merge("out.db", "b.db", "a.db", st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].runs_merged + st[1].runs_merged, 0);
    cr_expect_eq(st[0].runs_present, 4);
    cr_expect_eq(st[1].runs_present, 3);
    cr_expect_eq(sum.out_runs_before, 5);
    cr_assert_eq(merge("out.db", "out.db", NULL, st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].runs_present, 5);
    cr_expect_eq(sum.runs, 5);
    expect_union_of_shards("out.db");
    /* OUT's own ids are kept */
    cr_expect_eq(query("out.db", "SELECT sum(id * length(uuid)) FROM runs"), ids);
    expect_no_temporary_file();
}

Test(merge, finished_copy_replaces_running_one)
{
    Store s;
    open_db(&s, "a.db");
    int64_t id = add_run(&s, "eval", "fmnist/eval", 0, 1.0, 0);
    store_close(&s);
    /* b.db: the same shard later, finished with one more metric */
    copy_file("a.db", "b.db");
    open_db(&s, "b.db");
    Metric m = {.name = "gflops", .value = 7, .step = -1};
    cr_assert_eq(store_metrics(&s, id, &m, 1), 0, "%s", err_msg());
    cr_assert_eq(store_run_done(&s, id), 0, "%s", err_msg());
    store_close(&s);

    MergeInputStats st[2];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", NULL, st, &sum), 0, "%s", err_msg());
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    cr_assert_eq(merge("out.db", "b.db", NULL, st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].runs_updated, 1);
    cr_expect_eq(st[0].runs_merged + st[0].runs_present, 0);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs WHERE status = 'done' AND finished_at NOT NULL"), 1);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM metrics"), 4);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM exits"), 6);
    /* a finished copy is never replaced by a running one */
    cr_assert_eq(merge("out.db", "a.db", NULL, st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].runs_present, 1);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM metrics"), 4);
}

Test(merge, same_setting_in_two_shards_is_kept_and_counted)
{
    setenv(STORE_ENV_RUN_KEY, "key-1", 1);
    Store s;
    open_db(&s, "a.db");
    add_run(&s, "eval", "fmnist/eval", 0, 1.0, 1);
    add_run(&s, "eval", "fmnist/eval", 0, 9.0, 0);  /* killed: running, not counted */
    store_close(&s);
    open_db(&s, "b.db");
    add_run(&s, "eval", "fmnist/eval", 0, 2.0, 1);
    store_close(&s);
    unsetenv(STORE_ENV_RUN_KEY);
    MergeInputStats st[2];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", "b.db", st, &sum), 0, "%s", err_msg());
    cr_expect_eq(sum.runs, 3);
    cr_expect_eq(sum.duplicate_keys, 1);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs WHERE run_key = 'key-1' AND status = 'running'"), 1);
}

/* a parent that is in none of the inputs (written with foreign keys off) */
Test(merge, orphan_parent_becomes_null)
{
    Store s;
    open_db(&s, "a.db");
    int64_t id = add_run(&s, "sample", "fmnist/sample", 0, 1.0, 1);
    cr_assert_eq(sqlite3_exec(s.db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE runs SET parent_id = 99 WHERE id = %lld", (long long)id);
    cr_assert_eq(sqlite3_exec(s.db, sql, NULL, NULL, NULL), SQLITE_OK);
    store_close(&s);
    MergeInputStats st[1];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", NULL, st, &sum), 0, "%s", err_msg());
    cr_expect_eq(sum.orphans, 1);
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs WHERE parent_id IS NULL"), 1);
}

Test(merge, regress_checks_without_duplicates)
{
    static const char INSERT[] =
        "INSERT INTO regress_checks (check_id, git_commit, code_version, machine, cpu, cell, baseline, value, "
        "tolerance, passed) VALUES ('c1', 'g', 'v', 'm', 'c', 'cell %d', 1, 1, '{}', 1)";
    char sql[512];
    Store s;
    open_db(&s, "a.db");
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql, INSERT, i);
        cr_assert_eq(sqlite3_exec(s.db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(s.db));
    }
    store_close(&s);
    copy_file("a.db", "b.db");
    open_db(&s, "b.db");
    snprintf(sql, sizeof sql, INSERT, 2);
    cr_assert_eq(sqlite3_exec(s.db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(s.db));
    store_close(&s);
    MergeInputStats st[2];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", "b.db", st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].checks_merged, 2);
    cr_expect_eq(st[1].checks_merged, 1);
    cr_expect_eq(st[1].checks_present, 2);
    cr_expect_eq(query("out.db", "SELECT count(DISTINCT cell) * 10 + count(*) FROM regress_checks"), 33);
}

/* the embedded schema up to (not including) its "-- version N" step */
static char *schema_before(int version)
{
    extern const char store_schema_sql[];
    char mark[32];
    snprintf(mark, sizeof mark, "\n-- version %d\n", version);
    const char *end = strstr(store_schema_sql, mark);
    cr_assert_not_null(end);
    return strndup(store_schema_sql, (size_t)(end - store_schema_sql) + 1);
}

/* a shard written by a deediff of schema version 1 (no exits, no run_key) */
Test(merge, older_input_is_read_as_it_is)
{
    char *v1 = schema_before(2);
    Store s;
    cr_assert_eq(store_open_schema(&s, path_in("a.db"), v1), 0, "%s", err_msg());
    cr_assert_eq(sqlite3_exec(s.db,
        "INSERT INTO runs (uuid, kind, name, config, git_commit, machine, cpu, backend, pid, status, finished_at) "
        "VALUES ('u-old', 'eval', 'old', '{}', 'unknown', 'm', 'c', 'cpu', 1, 'done', '2026-01-01T00:00:00.000Z');"
        "INSERT INTO metrics (run_id, name, value) VALUES (1, 'fid', 12.5)",
        NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(s.db));
    store_close(&s);
    free(v1);
    MergeInputStats st[1];
    MergeSummary sum;
    cr_assert_eq(merge("out.db", "a.db", NULL, st, &sum), 0, "%s", err_msg());
    cr_expect_eq(st[0].runs_merged, 1);
    cr_expect_eq(query("out.db", "SELECT value * 2 FROM metrics JOIN runs r ON r.id = run_id "
                                 "WHERE r.uuid = 'u-old' AND r.run_key IS NULL"), 25);
    /* the input is only read: still version 1 */
    cr_expect_eq(query("a.db", "PRAGMA user_version"), 1);
}

/* a failing merge leaves OUT byte for byte as it was, and no temporary file */
static void expect_refused_out_untouched(const char *bad, const char *needle)
{
    static char before[1 << 20], after[1 << 20];
    size_t nb, na;
    read_file("out.db", before, sizeof before, &nb);
    MergeInputStats st[2];
    MergeSummary sum;
    cr_expect_eq(merge("out.db", "a.db", bad, st, &sum), -1, "merging %s succeeded", bad);
    expect_one_line_naming(bad);
    cr_expect(strstr(err_msg(), needle) != NULL, "'%s' not in: %s", needle, err_msg());
    read_file("out.db", after, sizeof after, &na);
    cr_expect(na == nb && !memcmp(before, after, nb), "%s: out.db changed", bad);
    expect_no_temporary_file();
}

Test(merge, newer_corrupt_or_missing_input_is_refused)
{
    write_overlapping_shards();
    MergeInputStats st[2];
    MergeSummary sum;
    /* out.db holds a.db; merging b.db would change it */
    cr_assert_eq(merge("out.db", "a.db", NULL, st, &sum), 0, "%s", err_msg());

    Store s;
    open_db(&s, "newer.db");
    cr_assert_eq(sqlite3_exec(s.db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    store_close(&s);
    expect_refused_out_untouched("newer.db", "newer");

    FILE *f = fopen(path_in("corrupt.db"), "wb");
    cr_assert_not_null(f);
    uint32_t x = 12345;
    for (int i = 0; i < 8192; i++) {
        x = x * 1664525u + 1013904223u;  /* deterministic noise */
        fputc((int)(x >> 24), f);
    }
    fclose(f);
    expect_refused_out_untouched("corrupt.db", "not a database");

    /* an SQLite file that is not a results database */
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path_in("other.db"), &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused_out_untouched("other.db", "not a deediff results database");

    expect_refused_out_untouched("missing.db", "No such file");
    cr_expect_eq(query("out.db", "SELECT count(*) FROM runs"), 3);
}

/* ---- two runners, one file ------------------------------------------------------------ */

/* two processes each write 200 runs with 3 metrics into one database file at
   once through the store API (WAL, busy timeout, BEGIN IMMEDIATE) */
Test(merge, two_writers_lose_nothing)
{
    enum { WRITERS = 2, RUNS = 200 };
    const char *db = path_in("shared.db");
    RunInfo ri = {.kind = "eval", .name = "shard", .backend = "cpu"};
    store_writers_run(db, WRITERS, RUNS, &ri, 3);
    cr_expect_eq(query("shared.db", "SELECT count(*) FROM runs WHERE status = 'done'"), WRITERS * RUNS);
    cr_expect_eq(query("shared.db", "SELECT count(*) FROM metrics"), WRITERS * RUNS * 3);
    /* every run has its own three metrics, and each writer's fid 0..199 */
    cr_expect_eq(query("shared.db", "SELECT count(*) FROM (SELECT run_id FROM metrics GROUP BY run_id "
                                    "HAVING count(*) = 3 AND sum(name = 'fid') = 1)"), WRITERS * RUNS);
    cr_expect_eq(query("shared.db", "SELECT count(*) FROM (SELECT DISTINCT m.value, l.value FROM metrics m "
                                    "JOIN metrics l ON l.run_id = m.run_id AND l.name = 'layers_ratio' "
                                    "WHERE m.name = 'fid')"), WRITERS * RUNS);
    cr_expect_eq(query("shared.db", "SELECT count(DISTINCT pid) FROM runs"), WRITERS);
}

/* ---- the command ------------------------------------------------------------------------ */

Test(merge, cli_exit_statuses)
{
    cli_need_binary();
    write_overlapping_shards();
    char args[2048], out[1024], err[2048];
    snprintf(args, sizeof args, "merge '%s' '%s' -o '%s'", path_in("a.db"), path_in("b.db"), path_in("out.db"));
    cr_expect_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_eq(count_lines(out), 1, "%s", out);
    cr_expect(strstr(out, "5 runs") && strstr(out, "2 merged, 2 already present"), "%s", out);
    cr_expect_eq(err[0], 0, "%s", err);
    /* again, with --output: nothing new */
    snprintf(args, sizeof args, "merge '%s' --output '%s'", path_in("b.db"), path_in("out.db"));
    cr_expect_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(out, "0 merged, 4 already present"), "%s", out);

    char a[512], fresh[512], missing[512];
    snprintf(a, sizeof a, "%s", path_in("a.db"));
    snprintf(fresh, sizeof fresh, "%s", path_in("new.db"));
    snprintf(missing, sizeof missing, "%s", path_in("missing.db"));
    struct { char args[2048]; const char *needle; } bad[4] = {
        {"", "no input"}, {"", "--output"}, {"", "--frobnicate"}, {"", "missing.db"}};
    snprintf(bad[0].args, sizeof bad[0].args, "merge -o '%s'", fresh);
    snprintf(bad[1].args, sizeof bad[1].args, "merge '%s'", a);
    snprintf(bad[2].args, sizeof bad[2].args, "merge '%s' -o '%s' --frobnicate", a, fresh);
    snprintf(bad[3].args, sizeof bad[3].args, "merge '%s' -o '%s'", missing, fresh);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(cli_run(bad[i].args, out, sizeof out, err, sizeof err), 2, "%s: %s", bad[i].args, err);
        cr_expect_eq(count_lines(err), 1, "%s: not one line: %s", bad[i].args, err);
        cr_expect(strstr(err, bad[i].needle) != NULL, "%s: '%s' not in: %s", bad[i].args, bad[i].needle, err);
        cr_expect(access(fresh, F_OK) != 0, "%s: new.db was written", bad[i].args);
    }
    cr_expect_eq(cli_run("merge --help", out, sizeof out, NULL, 0), 0);
}
