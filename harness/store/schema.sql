-- schema.sql: the tables of results/results.db, as an append-only list of
-- migrations. The Makefile embeds this file into the binary as a C string
-- (store_schema_sql), and harness/store/store.c applies it.
--
-- Versioning. The database's version is PRAGMA user_version (0 for a new
-- file), and nothing else: there is no schema_version table, so the version
-- can never disagree with itself. Each "-- version N" line below starts the
-- statements that upgrade version N-1 to N. store_open() runs every step
-- above the file's version, each in its own transaction that also sets
-- user_version = N, so a crash leaves the database at N-1 or at N, never in
-- between. A file whose version is newer than the last step here is refused.
--
-- Rules for later changes: never edit a step that has been committed; add
-- a "-- version N+1" step at the end (CREATE TABLE, ALTER TABLE ADD COLUMN,
-- CREATE INDEX, or a table copy for anything harder). A step is handed to
-- sqlite3_exec() whole; a "-- version N" line must start at column 0.
--
-- Conventions: timestamps are UTC ISO-8601 text with milliseconds
-- ("2026-01-31T12:00:00.000Z"); JSON columns are checked with json_valid();
-- every measured number refers to the run (and so the configuration, git
-- commit, machine and backend) that produced it.

-- version 1

-- One execution of one command (a training run, a sampling run, an
-- evaluation, a benchmark). uuid identifies a run across databases, so that
-- `deediff merge` can combine shards whose integer ids collide. config is
-- the run's complete configuration as JSON (the protocol of everything it
-- measures: dataset, model, method, sampler, steps, seeds, N, precision...);
-- a resumable runner finds finished runs by (kind, name, config). pid and
-- machine tell a runner whether a 'running' row is still alive.
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('train', 'sample', 'eval', 'bench')),
    name            TEXT NOT NULL,
    config          TEXT NOT NULL CHECK (json_valid(config)),
    git_commit      TEXT NOT NULL,          -- 40 hex digits, "-dirty" appended, or "unknown"
    machine         TEXT NOT NULL,          -- host name
    cpu             TEXT NOT NULL,          -- CPU model and hardware threads
    backend         TEXT NOT NULL,          -- "cpu" or "cuda"
    device          TEXT,                   -- the accelerator's name; NULL on the CPU backend
    pid             INTEGER NOT NULL,
    parent_id       INTEGER REFERENCES runs (id),  -- e.g. the training run a sampling run uses
    checkpoint_hash TEXT,                   -- the weights this run read, when it read any
    started_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at     TEXT,
    status          TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    error           TEXT,                   -- the one-line reason of a failed run
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX runs_by_name ON runs (kind, name);

-- The training curve: one row per logged step. wall_s counts seconds from
-- the run's start (a resumed run continues its count); a resumed run that
-- logs a step again replaces the earlier row.
CREATE TABLE train_log (
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    step         INTEGER NOT NULL CHECK (step >= 0),
    loss         REAL NOT NULL,
    lr           REAL NOT NULL,
    grad_norm    REAL,
    images_per_s REAL,
    wall_s       REAL NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

-- Every other measured number: FID, layer ratio, GFLOPs spent, wall time,
-- a kernel's time, an error against the full model. name is dotted, most
-- general first ("fid", "layers_ratio", "time.network_ms.median",
-- "kernel_ns.gemm_bf16"); unit is "" for a pure number. protocol holds what
-- the number depends on beyond the run's config (for FID: N, the feature
-- network, the reference statistics' hash, EMA or not); step is the training
-- or sampling step it belongs to, NULL when it belongs to the whole run.
CREATE TABLE metrics (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    name       TEXT NOT NULL,
    value      REAL NOT NULL,
    unit       TEXT NOT NULL DEFAULT '',
    step       INTEGER,
    protocol   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(protocol)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX metrics_by_run ON metrics (run_id, name);
CREATE INDEX metrics_by_name ON metrics (name);

-- Files a run wrote or read: checkpoints, sample archives, image grids,
-- reference statistics. hash is the file's content hash as the writer
-- computed it, so a later run can name exactly the weights or statistics
-- it used (runs.checkpoint_hash, a metric's protocol).
CREATE TABLE artifacts (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    kind       TEXT NOT NULL,           -- "checkpoint", "samples", "grid", "stats", ...
    path       TEXT NOT NULL,
    hash       TEXT,
    bytes      INTEGER,
    step       INTEGER,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX artifacts_by_run ON artifacts (run_id, kind);
CREATE INDEX artifacts_by_hash ON artifacts (hash);

-- version 2

-- Where every image left the network at every evaluation of a sampling run
-- (early-exit methods, model/method.h). eval counts the run's network
-- evaluations from 0; t is that evaluation's continuous time in [0, 1];
-- exit_block is the last block computed (num_blocks - 1: the full network);
-- score is the exit rule's confidence score at that block (DeeDiff: the mean
-- of the uncertainty map), NULL when no rule ran (threshold 0, method none).
-- image_id is the sampler's id (classifier-free guidance's unconditional
-- copy carries bit 62).
CREATE TABLE exits (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    image_id   INTEGER NOT NULL,
    eval       INTEGER NOT NULL CHECK (eval >= 0),
    t          REAL NOT NULL,
    exit_block INTEGER NOT NULL CHECK (exit_block >= 0),
    score      REAL,
    PRIMARY KEY (run_id, image_id, eval)
) WITHOUT ROWID;

-- The points behind the paper's figures, one row each: figure names the
-- figure ("fig1_layer_mse", "fig3_loss_by_t", "fig4_uncertainty",
-- "fig6_error_accumulation", ...), series one curve of it ("block 3",
-- "threshold 0.1", "map eval 10 block 2 image 0"), x and y the point (an
-- uncertainty map is a series with x = the pixel's index in C,H,W order).
CREATE TABLE figure_points (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    figure TEXT NOT NULL,
    series TEXT NOT NULL,
    x      REAL NOT NULL,
    y      REAL NOT NULL,
    PRIMARY KEY (run_id, figure, series, x)
) WITHOUT ROWID;

-- version 3

-- The experiment runner (harness/runner/) and the provenance of the numbers.
-- run_key makes a run skippable: the sha256 of its command line, of every
-- file that command line names, and of code_version, so a finished run with
-- the same key is never repeated. setting_key is the same hash without the
-- code version: a report can still find a run that an older build made, and
-- says so. experiment is "NAME/SCALE" of the experiment file that asked for
-- the run (NULL: run by hand). code_version is the sha256 of the sources the
-- binary was built from (the Makefile computes it). gemm is the GEMM library,
-- its version and the kernel it chose ("openblas 0.3.21 Zen"). All NULL in
-- rows written before version 3.
ALTER TABLE runs ADD COLUMN run_key TEXT;
ALTER TABLE runs ADD COLUMN setting_key TEXT;
ALTER TABLE runs ADD COLUMN experiment TEXT;
ALTER TABLE runs ADD COLUMN code_version TEXT;
ALTER TABLE runs ADD COLUMN gemm TEXT;
CREATE INDEX runs_by_run_key ON runs (run_key);
CREATE INDEX runs_by_setting_key ON runs (setting_key);
CREATE INDEX runs_by_experiment ON runs (experiment);

-- Regression tracking (make regress): one row per metric compared with
-- results/baseline.json. check_id groups the rows of one comparison (a
-- uuid); cell names the metric ("table1/smoke Fashion-MNIST BERxiT
-- quality"); tolerance is the rule applied, as JSON
-- ({"abs":0,"rel":0.02,"exact":false}); passed is 1 or 0. The runs whose
-- numbers were compared are found by run_key.
CREATE TABLE regress_checks (
    id           INTEGER PRIMARY KEY,
    check_id     TEXT NOT NULL,
    checked_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    git_commit   TEXT NOT NULL,
    code_version TEXT NOT NULL,
    machine      TEXT NOT NULL,
    cpu          TEXT NOT NULL,
    cell         TEXT NOT NULL,
    baseline     REAL,
    value        REAL,
    tolerance    TEXT NOT NULL CHECK (json_valid(tolerance)),
    passed       INTEGER NOT NULL CHECK (passed IN (0, 1)),
    run_key      TEXT
);
CREATE INDEX regress_by_cell ON regress_checks (cell, checked_at);

-- version 4

-- Kernel timings (`--profile` on train, sample and eval; harness/profile/).
-- runs.kernel_timing names how a run's GPU time was measured: 'none' (not
-- profiled: every run before version 4 and every run without --profile),
-- 'cupti' (CUPTI's activity records, one per kernel) or 'cuda-events' (CUPTI
-- could not start: CUDA events at the phase boundaries, so a phase's time
-- but no kernel's); kernel_timing_note says why CUPTI could not start.
ALTER TABLE runs ADD COLUMN kernel_timing TEXT NOT NULL DEFAULT 'none'
    CHECK (kernel_timing IN ('none', 'cupti', 'cuda-events'));
ALTER TABLE runs ADD COLUMN kernel_timing_note TEXT;

-- One row per (run, phase, phase index, kernel): how often the kernel ran
-- inside that phase and for how long (GPU time, ns). phase is one of
-- kernels/phase.h's kinds: 'run' (the whole run, phase_index -1),
-- 'train_step' (every step, -1), 'sample_step' (a sampler's network
-- evaluation by its number), 'block', 'block_backward', 'head', 'exit_rule'
-- (by block or exit number). A kernel counts in every phase open when it
-- was launched, so a sample_step's rows include its blocks'. Under
-- 'cuda-events' kernel is '(phase)': the phase's span on the stream, one
-- count per instance, in its innermost phase only.
CREATE TABLE kernel_timings (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    phase       TEXT NOT NULL,
    phase_index INTEGER NOT NULL,
    kernel      TEXT NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    total_ns    INTEGER NOT NULL CHECK (total_ns >= 0),
    min_ns      INTEGER NOT NULL,
    max_ns      INTEGER NOT NULL,
    PRIMARY KEY (run_id, phase, phase_index, kernel)
) WITHOUT ROWID;
