/*
 * test_store.c: the results database: creation with the embedded schema,
 * a run's round trip (create, training log in batches, metrics, artifacts,
 * finish) read back with SQL, reopening, refusing a newer or negative schema or a
 * corrupt file with one line naming it, migrations one transaction per step,
 * and rollbacks that leave no partial rows.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/store/store.h"
#include "kernels/errors.h"
#include "support/cli_run.h"
#include "support/db_query.h"
#include "support/store_writers.h"

static char tmpdir[64];
static char dbpath[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/deediff-store-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    /* two folders that do not exist yet: store_open creates them */
    snprintf(dbpath, sizeof dbpath, "%s/a/b/results.db", tmpdir);
}

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(store, .init = make_tmpdir, .fini = remove_tmpdir);

/* the first column of the first row of sql, as an integer */
static int64_t query_int(Store *s, const char *sql)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(s->db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* the first column of the first row of sql, as text (static buffer) */
static const char *query_text(Store *s, const char *sql)
{
    static char buf[512];
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(s->db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: no row", sql);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, sizeof buf, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    return buf;
}

static void expect_one_line_naming_db(void)
{
    const char *msg = err_msg();
    cr_expect(strstr(msg, dbpath) == msg, "error does not start with the file: %s", msg);
    cr_expect_null(strchr(msg, '\n'), "error is not one line: %s", msg);
}

static RunInfo train_run(void)
{
    RunInfo ri = {.kind = "train", .name = "fmnist-tiny/backbone",
                  .config_json = "{\"steps\": 10, \"batch\": 32, \"seed\": 7}",
                  .backend = "cpu"};
    return ri;
}

Test(store, fresh_database_has_the_schema)
{
    Store s;
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    cr_expect_eq(store_schema_version(), 4);
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), store_schema_version());
    cr_expect_str_eq(query_text(&s, "PRAGMA journal_mode"), "wal");
    cr_expect_eq(query_int(&s, "PRAGMA foreign_keys"), 1);
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                               "name IN ('runs', 'train_log', 'metrics', 'artifacts')"), 4);
    store_close(&s);
    cr_expect_eq(access(dbpath, F_OK), 0);
}

Test(store, embedded_schema_is_the_file)
{
    extern const char store_schema_sql[];
    FILE *f = fopen("harness/store/schema.sql", "rb");
    cr_assert_not_null(f, "run the tests from the repository root");
    static char file[1 << 16];
    size_t n = fread(file, 1, sizeof file - 1, f);
    fclose(f);
    file[n] = 0;
    cr_expect_str_eq(store_schema_sql, file);
}

/* several processes (shards) create and write one database at once */
Test(store, concurrent_writers)
{
    enum { WRITERS = 3, RUNS = 20 };
    RunInfo ri = train_run();
    store_writers_run(dbpath, WRITERS, RUNS, &ri, 1);
    Store s;
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM runs WHERE status = 'done'"), WRITERS * RUNS);
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM metrics"), WRITERS * RUNS);
    cr_expect_eq(query_int(&s, "SELECT count(DISTINCT pid) FROM runs"), WRITERS);
    store_close(&s);
}

Test(store, run_round_trip)
{
    Store s;
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    RunInfo ri = train_run();
    int64_t run = 0;
    cr_assert_eq(store_run_begin(&s, &ri, &run), 0, "%s", err_msg());
    cr_assert_gt(run, 0);
    cr_expect_str_eq(query_text(&s, "SELECT status FROM runs"), "running");
    cr_expect_eq(query_int(&s, "SELECT finished_at IS NULL FROM runs"), 1);

    /* the training log reaches the database in batches of 4 */
    TrainLog tl;
    train_log_init(&tl, &s, run, 4);
    for (int step = 1; step <= 10; step++) {
        TrainRow r = {.step = step, .loss = 1.0 / step, .lr = 1e-4, .grad_norm = 0.5,
                      .images_per_s = step == 1 ? NAN : 100.0, .wall_s = 0.25 * step};
        cr_assert_eq(train_log_add(&tl, &r), 0, "%s", err_msg());
        cr_expect_eq(query_int(&s, "SELECT count(*) FROM train_log"), step / 4 * 4, "after step %d", step);
    }
    cr_assert_eq(train_log_close(&tl), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM train_log"), 10);
    cr_expect_str_eq(query_text(&s, "SELECT loss FROM train_log WHERE step = 4"), "0.25");
    cr_expect_eq(query_int(&s, "SELECT images_per_s IS NULL FROM train_log WHERE step = 1"), 1);
    cr_expect_eq(query_int(&s, "SELECT wall_s * 4 FROM train_log WHERE step = 10"), 10);

    Metric m[] = {
        {.name = "fid", .value = 12.5, .protocol_json = "{\"N\": 2000, \"features\": \"inception-v3\", "
                                                         "\"ref_stats_sha256\": \"abc\", \"ema\": true}",
         .step = -1},
        {.name = "layers_ratio", .value = 0.6, .step = -1},
        {.name = "time.network_ms.median", .value = 3.25, .unit = "ms", .step = 10},
    };
    cr_assert_eq(store_metrics(&s, run, m, 3), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT json_extract(protocol, '$.N') FROM metrics WHERE name = 'fid'"), 2000);
    cr_expect_str_eq(query_text(&s, "SELECT protocol FROM metrics WHERE name = 'layers_ratio'"), "{}");
    cr_expect_str_eq(query_text(&s, "SELECT unit || ':' || step FROM metrics WHERE name LIKE 'time.%'"), "ms:10");
    cr_expect_eq(query_int(&s, "SELECT step IS NULL FROM metrics WHERE name = 'fid'"), 1);

    Artifact a = {.kind = "checkpoint", .path = "runs/1/step-10.safetensors", .hash = "deadbeef",
                  .bytes = 1234, .step = 10};
    cr_assert_eq(store_artifact(&s, run, &a), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT bytes FROM artifacts WHERE hash = 'deadbeef'"), 1234);

    cr_assert_eq(store_run_done(&s, run), 0, "%s", err_msg());
    cr_expect_str_eq(query_text(&s, "SELECT status FROM runs"), "done");
    cr_expect_eq(query_int(&s, "SELECT finished_at >= started_at FROM runs"), 1);
    cr_expect_eq(query_int(&s, "SELECT json_extract(config, '$.batch') FROM runs"), 32);
    cr_expect_str_eq(query_text(&s, "SELECT backend FROM runs"), "cpu");
    cr_expect_eq(query_int(&s, "SELECT device IS NULL AND parent_id IS NULL FROM runs"), 1);
    cr_expect_eq(query_int(&s, "SELECT pid FROM runs"), getpid());
    cr_expect_eq(query_int(&s, "SELECT length(uuid) FROM runs"), 36);
    cr_expect_neq(query_text(&s, "SELECT machine FROM runs")[0], 0);
    cr_expect(strstr(query_text(&s, "SELECT cpu FROM runs"), "threads)") != NULL);

    /* a finished run cannot be finished again */
    cr_expect_eq(store_run_failed(&s, run, "late"), -1);
    expect_one_line_naming_db();
    store_close(&s);
}

Test(store, git_commit_is_a_hash_or_unknown)
{
    char *c = store_git_commit();
    size_t n = strlen(c);
    int hash = n >= 40 && strspn(c, "0123456789abcdef") == 40 && (n == 40 || !strcmp(c + 40, "-dirty"));
    cr_expect(hash || !strcmp(c, "unknown"), "git commit '%s'", c);
    free(c);
}

Test(store, failed_run_and_child_run)
{
    Store s;
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    RunInfo ri = train_run();
    int64_t train = 0, sample = 0;
    cr_assert_eq(store_run_begin(&s, &ri, &train), 0, "%s", err_msg());
    RunInfo si = {.kind = "sample", .name = "fmnist-tiny/sample", .backend = "cuda",
                  .device = "NVIDIA H100", .parent_id = train, .checkpoint_hash = "cafe"};
    cr_assert_eq(store_run_begin(&s, &si, &sample), 0, "%s", err_msg());
    cr_assert_eq(store_run_failed(&s, sample, "loss is NaN at step 3"), 0, "%s", err_msg());
    cr_expect_str_eq(query_text(&s, "SELECT status || ': ' || error FROM runs WHERE kind = 'sample'"),
                     "failed: loss is NaN at step 3");
    cr_expect_eq(query_int(&s, "SELECT parent_id FROM runs WHERE kind = 'sample'"), train);
    cr_expect_str_eq(query_text(&s, "SELECT config FROM runs WHERE kind = 'sample'"), "{}");

    /* bad fields: one line naming the file and the field */
    RunInfo bad = train_run();
    bad.kind = "predict";
    cr_expect_eq(store_run_begin(&s, &bad, &sample), -1);
    expect_one_line_naming_db();
    cr_expect(strstr(err_msg(), "kind") != NULL, "%s", err_msg());
    bad = train_run();
    bad.config_json = "{not json";
    cr_expect_eq(store_run_begin(&s, &bad, &sample), -1);
    expect_one_line_naming_db();
    cr_expect(strstr(err_msg(), "json_valid(config)") != NULL, "%s", err_msg());
    Metric nan_metric = {.name = "fid", .value = NAN, .step = -1};
    cr_expect_eq(store_metrics(&s, train, &nan_metric, 1), -1);
    expect_one_line_naming_db();
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM runs"), 2);
    store_close(&s);
}

Test(store, reopen_keeps_rows)
{
    Store s;
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    RunInfo ri = train_run();
    int64_t run;
    cr_assert_eq(store_run_begin(&s, &ri, &run), 0, "%s", err_msg());
    store_close(&s);
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), store_schema_version());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM runs"), 1);
    cr_assert_eq(store_run_done(&s, run), 0, "%s", err_msg());
    store_close(&s);
}

/* a database whose user_version deediff cannot migrate from is refused */
static void schema_version_is_refused(const char *version, const char *word)
{
    Store s;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %s", version);
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    cr_assert_eq(sqlite3_exec(s.db, pragma, NULL, NULL, NULL), SQLITE_OK);
    store_close(&s);
    cr_expect_eq(store_open(&s, dbpath), -1);
    expect_one_line_naming_db();
    cr_expect(strstr(err_msg(), version) && strstr(err_msg(), word), "%s", err_msg());
    cr_expect_null(s.db);
    /* and a command given it stops with that one line and status 2 */
    if (!cli_binary()) return;
    char args[512], err[1024];
    snprintf(args, sizeof args, "log --run x --db '%s'", dbpath);
    int rc = cli_run(args, NULL, 0, err, sizeof err);
    cr_expect_eq(rc, 2, "exit %d: %s", rc, err);
    cr_expect_eq(count_lines(err), 1, "not one line: %s", err);
    cr_expect(strstr(err, dbpath) && strstr(err, word), "%s", err);
}

Test(store, newer_schema_is_refused) { schema_version_is_refused("99", "newer"); }

/* the fuzzer's find: a foreign SQLite file whose user_version is negative */
Test(store, negative_schema_version_is_refused) { schema_version_is_refused("-16776961", "not a results database"); }

Test(store, corrupt_file_is_refused)
{
    snprintf(dbpath, sizeof dbpath, "%s/corrupt.db", tmpdir);
    FILE *f = fopen(dbpath, "wb");
    cr_assert_not_null(f);
    uint32_t x = 12345;
    for (int i = 0; i < 8192; i++) {
        x = x * 1664525u + 1013904223u;  /* deterministic noise */
        fputc((int)(x >> 24), f);
    }
    fclose(f);
    Store s;
    cr_expect_eq(store_open(&s, dbpath), -1);
    expect_one_line_naming_db();
    cr_expect(strstr(err_msg(), "not a database") != NULL, "%s", err_msg());
}

Test(store, unwritable_location_is_refused)
{
    /* a regular file where a folder must go */
    snprintf(dbpath, sizeof dbpath, "%s/file", tmpdir);
    FILE *f = fopen(dbpath, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(dbpath, sizeof dbpath, "%s/file/sub/results.db", tmpdir);
    Store s;
    cr_expect_eq(store_open(&s, dbpath), -1);
    expect_one_line_naming_db();
}

Test(store, rollback_leaves_no_rows)
{
    Store s;
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    RunInfo ri = train_run();
    int64_t run;

    /* an outer transaction undone as a whole */
    cr_assert_eq(store_begin(&s), 0, "%s", err_msg());
    cr_assert_eq(store_run_begin(&s, &ri, &run), 0, "%s", err_msg());
    Metric m = {.name = "fid", .value = 3.0, .step = -1};
    cr_assert_eq(store_metrics(&s, run, &m, 1), 0, "%s", err_msg());
    cr_assert_eq(store_rollback(&s), 0, "%s", err_msg());
    cr_expect_eq(s.depth, 0);
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM runs"), 0);
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM metrics"), 0);

    /* a metric set that fails on its third row leaves none of its rows,
       and an enclosing transaction keeps what came before it */
    cr_assert_eq(store_run_begin(&s, &ri, &run), 0, "%s", err_msg());
    cr_assert_eq(store_begin(&s), 0, "%s", err_msg());
    Metric first = {.name = "layers_ratio", .value = 0.5, .step = -1};
    cr_assert_eq(store_metrics(&s, run, &first, 1), 0, "%s", err_msg());
    Metric set[] = {
        {.name = "fid", .value = 1.0, .step = -1},
        {.name = "gflops", .value = 2.0, .step = -1},
        {.name = "kernel_ns.gemm", .value = 3.0, .protocol_json = "{broken", .step = -1},
    };
    cr_expect_eq(store_metrics(&s, run, set, 3), -1);
    expect_one_line_naming_db();
    cr_expect_eq(s.depth, 1);
    cr_assert_eq(store_commit(&s), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM metrics"), 1);
    cr_expect_str_eq(query_text(&s, "SELECT name FROM metrics"), "layers_ratio");

    /* a training-log batch is all or nothing too: its third row is refused */
    cr_assert_eq(sqlite3_exec(s.db, "CREATE TEMP TRIGGER refuse_step_3 BEFORE INSERT ON train_log "
                                    "WHEN NEW.step = 3 BEGIN SELECT RAISE(ABORT, 'step 3 refused'); END",
                              NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(s.db));
    TrainLog tl;
    train_log_init(&tl, &s, run, 3);
    for (int step = 1; step <= 3; step++) {
        TrainRow r = {.step = step, .loss = 0.5, .lr = 1e-4, .grad_norm = NAN, .images_per_s = NAN, .wall_s = step};
        cr_expect_eq(train_log_add(&tl, &r), step < 3 ? 0 : -1, "step %d: %s", step, err_msg());
    }
    expect_one_line_naming_db();
    cr_expect(strstr(err_msg(), "step 3 refused") != NULL, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM train_log"), 0);
    cr_expect_eq(s.depth, 0);
    /* the rows stay buffered: once the cause is gone, a retry writes them */
    cr_assert_eq(sqlite3_exec(s.db, "DROP TRIGGER refuse_step_3", NULL, NULL, NULL), SQLITE_OK);
    cr_expect_eq(train_log_close(&tl), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM train_log"), 3);
    store_close(&s);
}

static const char SCHEMA_V1[] =
    "-- a test schema\n"
    "-- version 1\n"
    "CREATE TABLE a (x INTEGER);\n";
static const char SCHEMA_V2[] =
    "-- a test schema\n"
    "-- version 1\n"
    "CREATE TABLE a (x INTEGER);\n"
    "-- version 2\n"
    "ALTER TABLE a ADD COLUMN y TEXT;\n"
    "CREATE TABLE b (z REAL);\n";
static const char SCHEMA_V2_BROKEN[] =
    "-- a test schema\n"
    "-- version 1\n"
    "CREATE TABLE a (x INTEGER);\n"
    "-- version 2\n"
    "CREATE TABLE b (z REAL);\n"
    "ALTER TABLE no_such_table ADD COLUMN y TEXT;\n";

Test(store, migrations_one_transaction_per_step)
{
    cr_expect_eq(store_schema_steps(SCHEMA_V2), 2);
    Store s;
    cr_assert_eq(store_open_schema(&s, dbpath, SCHEMA_V1), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), 1);
    cr_assert_eq(sqlite3_exec(s.db, "INSERT INTO a VALUES (7)", NULL, NULL, NULL), SQLITE_OK);
    store_close(&s);

    /* a step that fails half way leaves the database at the version before it */
    cr_expect_eq(store_open_schema(&s, dbpath, SCHEMA_V2_BROKEN), -1);
    expect_one_line_naming_db();
    cr_expect(strstr(err_msg(), "schema version 2: no such table: no_such_table") != NULL, "%s", err_msg());
    cr_assert_eq(store_open_schema(&s, dbpath, SCHEMA_V1), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), 1);
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM sqlite_schema WHERE name = 'b'"), 0);
    store_close(&s);

    /* the upgrade keeps the rows */
    cr_assert_eq(store_open_schema(&s, dbpath, SCHEMA_V2), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), 2);
    cr_expect_eq(query_int(&s, "SELECT x FROM a WHERE y IS NULL"), 7);
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM b"), 0);
    store_close(&s);

    /* and the older program now refuses the file */
    cr_expect_eq(store_open_schema(&s, dbpath, SCHEMA_V1), -1);
    expect_one_line_naming_db();
}

/* a results.db of the previous version (2) keeps its runs, which read NULL
   in the runner's columns, and the next run records them */
Test(store, migration_from_version_2_keeps_runs)
{
    char *v2 = schema_before(3);
    Store s;
    cr_assert_eq(store_open_schema(&s, dbpath, v2), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), 2);
    cr_assert_eq(sqlite3_exec(s.db,
        "INSERT INTO runs (uuid, kind, name, config, git_commit, machine, cpu, backend, pid, status, finished_at) "
        "VALUES ('u-old', 'eval', 'old', '{}', 'unknown', 'm', 'c', 'cpu', 1, 'done', '2026-01-01T00:00:00.000Z')",
        NULL, NULL, NULL), SQLITE_OK);
    store_close(&s);
    free(v2);

    setenv(STORE_ENV_RUN_KEY, "k1", 1);
    setenv(STORE_ENV_EXPERIMENT, "table1/smoke", 1);
    cr_assert_eq(store_open(&s, dbpath), 0, "%s", err_msg());
    cr_expect_eq(query_int(&s, "PRAGMA user_version"), store_schema_version());
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM runs WHERE name = 'old' AND run_key IS NULL AND gemm IS NULL"), 1);
    RunInfo ri = {.kind = "eval", .name = "new", .backend = "cpu"};
    int64_t id;
    cr_assert_eq(store_run_begin(&s, &ri, &id), 0, "%s", err_msg());
    unsetenv(STORE_ENV_RUN_KEY);
    unsetenv(STORE_ENV_EXPERIMENT);
    cr_expect_str_eq(query_text(&s, "SELECT run_key FROM runs WHERE name = 'new'"), "k1");
    cr_expect_str_eq(query_text(&s, "SELECT experiment FROM runs WHERE name = 'new'"), "table1/smoke");
    cr_expect_eq(query_int(&s, "SELECT count(*) FROM runs WHERE name = 'new' AND setting_key IS NULL"), 1);
    cr_expect_eq(query_int(&s, "SELECT length(code_version) FROM runs WHERE name = 'new'"), 64);
    cr_expect_eq(query_int(&s, "SELECT gemm LIKE 'openblas %' OR gemm LIKE 'onednn %' FROM runs WHERE name = 'new'"), 1);
    store_close(&s);
}
