/*
 * store.h: the results database (results/results.db by default). Every
 * measured number goes here with the run that produced it: the run's full
 * configuration (JSON), git commit, machine, CPU, backend and device. Tables
 * and figures are drawn from this database and from nothing else.
 *
 * The schema lives in harness/store/schema.sql (embedded at build time) as a list
 * of versioned migrations; store_open() creates or upgrades a database and
 * refuses one written by a newer deediff. Connections use WAL and a busy
 * timeout, so several processes (shards, a report reader) share one file.
 *
 * Failures (an unreadable or corrupt file, a newer schema, a full disk, a
 * lock held too long) return -1 with err_msg() set to one line naming the
 * database file; nothing here aborts on bad data. Writes that belong
 * together go in one transaction: store_begin()/store_commit() nest (the
 * inner levels are savepoints), and every function below that writes several
 * rows wraps them itself, so a crash never leaves half a row set.
 */
#ifndef DEEDIFF_STORE_H
#define DEEDIFF_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#define STORE_DEFAULT_PATH "results/results.db"
#define STORE_BUSY_TIMEOUT_MS 30000

typedef struct {
    sqlite3 *db;
    char *path;
    int depth;          /* open transaction levels (0: none) */
} Store;

/* Opens (creating the file and its parent folders when missing) and brings
   the schema to store_schema_version(). path NULL means STORE_DEFAULT_PATH. */
int store_open(Store *s, const char *path);
/* the same with a schema text of the form of harness/store/schema.sql (tests) */
int store_open_schema(Store *s, const char *path, const char *schema_sql);
void store_close(Store *s);

/* the version the embedded schema brings a database to */
int store_schema_version(void);
/* the number of "-- version N" steps in a schema text; FATAL when they are
   not numbered 1, 2, ... in order (the schema is part of the program) */
int store_schema_steps(const char *schema_sql);

/* transactions; they nest. store_rollback() undoes the innermost level. */
int store_begin(Store *s);
int store_commit(Store *s);
int store_rollback(Store *s);

/* runs ------------------------------------------------------------------- */

typedef struct {
    const char *kind;            /* "train", "sample", "eval" or "bench" */
    const char *name;            /* the setting's name, e.g. "cifar10-small/backbone" */
    const char *config_json;     /* the complete configuration; NULL: "{}" */
    const char *backend;         /* "cpu" or "cuda" */
    const char *device;          /* the accelerator's name, or NULL */
    int64_t parent_id;           /* 0: none */
    const char *checkpoint_hash; /* the weights read, or NULL */
} RunInfo;

/* Inserts a 'running' run with this process's git commit, host, CPU, pid,
   code version and GEMM library; *run_id receives its id. The experiment
   runner (harness/runner/) starts each run as a child process with these
   variables set, and the run records them (unset or empty: NULL): */
#define STORE_ENV_RUN_KEY "DEEDIFF_RUN_KEY"          /* runs.run_key */
#define STORE_ENV_SETTING_KEY "DEEDIFF_SETTING_KEY"  /* runs.setting_key */
#define STORE_ENV_EXPERIMENT "DEEDIFF_EXPERIMENT"    /* runs.experiment, "NAME/SCALE" */
int store_run_begin(Store *s, const RunInfo *ri, int64_t *run_id);
/* a new random (version 4) uuid into out[37] */
int store_uuid(Store *s, char out[37]);
/* marks a running run 'done' or 'failed' (with its one-line reason) */
int store_run_done(Store *s, int64_t run_id);
int store_run_failed(Store *s, int64_t run_id, const char *error);
/* the end of a command's run: 'done' when rc is 0, else 'failed' with
   err_msg() as its error (err_msg() is kept for the caller); returns rc, or
   -1 when marking it done fails. run_id 0 (never begun) is left alone. */
int store_run_end(Store *s, int64_t run_id, int rc);

/* what store_run_begin records about this process; the strings are the
   caller's to free(). The git commit is `git rev-parse HEAD` of the checkout
   holding the executable (else the current folder), with "-dirty" when
   `git status` shows changes, or "unknown"; it is found once per process. */
char *store_git_commit(void);
char *store_machine_name(void);
char *store_cpu_model(void);

/* measured numbers ------------------------------------------------------------ */

typedef struct {
    const char *name;            /* "fid", "layers_ratio", "time.network_ms.median" */
    double value;
    const char *unit;            /* "" or NULL for a pure number */
    const char *protocol_json;   /* NULL: "{}" */
    int64_t step;                /* < 0: the whole run */
} Metric;

/* records n metrics of a run in one transaction: all of them or none */
int store_metrics(Store *s, int64_t run_id, const Metric *m, int n);

typedef struct {
    const char *kind;            /* "checkpoint", "samples", "grid", "stats" */
    const char *path;
    const char *hash;            /* NULL when not computed */
    int64_t bytes;               /* < 0: unknown */
    int64_t step;                /* < 0: none */
} Artifact;

int store_artifact(Store *s, int64_t run_id, const Artifact *a);

/* where images left the network (schema version 2, table exits) ------------- */

typedef struct {
    int64_t image_id;
    int eval;
    double t;
    int exit_block;
    double score;                /* NaN: none (stored as NULL) */
} ExitRow;

/* records n exits of a run in one transaction */
int store_exits(Store *s, int64_t run_id, const ExitRow *rows, int64_t n);

/* the points of a figure (table figure_points) -------------------------------- */

typedef struct {
    const char *figure, *series;
    double x, y;
} FigurePoint;

/* records n points in one transaction (a point given again replaces the
   earlier one) */
int store_figure_points(Store *s, int64_t run_id, const FigurePoint *p, int64_t n);

/* the training curve, written in batches ---------------------------------------- */

typedef struct {
    int64_t step;
    double loss, lr;
    double grad_norm;            /* NaN: not measured (stored as NULL) */
    double images_per_s;         /* NaN: not measured (stored as NULL) */
    double wall_s;
} TrainRow;

typedef struct {
    Store *store;
    int64_t run_id;
    TrainRow *rows;
    int n, batch;
} TrainLog;

/* rows are buffered and written every `batch` rows in one transaction (a
   step logged again replaces the earlier row, as after a resume) */
void train_log_init(TrainLog *t, Store *s, int64_t run_id, int batch);
int train_log_add(TrainLog *t, const TrainRow *row);
int train_log_flush(TrainLog *t);
/* flushes what is left and frees the buffer (freed even when the flush fails) */
int train_log_close(TrainLog *t);

/* the training curve of the training runs named `name`, by step; a resumed
   run continues an earlier one of the same name, and a step logged by
   several runs is taken from the latest. Calls row() for each step (a
   nonzero return stops and is returned); -1 + err_msg() on a database error */
int store_train_curve(Store *s, const char *name, int (*row)(void *user, const TrainRow *r),
                      void *user);

#endif
