/*
 * test_runner.c: the experiment runner (harness/runner/) and the tables it
 * draws (harness/report/).
 *
 *   - plan expansion of small experiment files: seeds x thresholds, eval
 *     flags in name order (keys do not depend on the file's key order),
 *     identical command lines as one run, stand-in columns merged with a
 *     note, "before" commands placed before the evals of their model and
 *     grouped with them, ${NAME} from the command's variables and from the
 *     environment, errors naming the file and the JSON path, and which runs
 *     --only and --shard take;
 *   - keys: same command line and file bytes give the same keys, a changed
 *     byte of any named file (also "prefix:FILE") changes both;
 *   - `deediff run` end to end on cheap real evals (the committed tiny
 *     U-ViT, 128 images, 2 DPM-Solver steps, a written reference .npz): a
 *     second run does nothing and draws the same table; a runner killed
 *     mid-experiment resumes with exactly one finished run per planned run
 *     and no row twice, also when the runner alone is killed (its run dies
 *     with it); a 'running' row of a dead process is marked failed;
 *   - tables from a fixture database written with the store API: mean and
 *     sample sd over seeds, "not yet run", "(stale)", the paper's numbers
 *     marked as the paper's, the FD-FMNIST proxy note, booktabs LaTeX, JSON.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/cli/text_file.h"
#include "harness/report/report.h"
#include "harness/runner/experiment.h"
#include "harness/runner/run_key.h"
#include "harness/runner/run_lookup.h"
#include "harness/runner/runner.h"
#include "harness/store/store.h"
#include "kernels/errors.h"
#include "model/fid_stats.h"
#include "support/cli_run.h"
#include "support/db_query.h"
#include "support/temp_dir.h"

#define UVIT "results/weights/fmnist-uvit.safetensors"

static char dir[64];

static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-runner-XXXXXX"); }
static void teardown(void) { temp_dir_remove(dir); }

TestSuite(runner, .init = setup, .fini = teardown, .timeout = 120);  // the end-to-end tests take ~25 s under ASan

static const char *path_in(const char *name) { return temp_dir_path(dir, name); }

/* ---- files ------------------------------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
    cr_assert_eq(write_file_atomic(path, text, strlen(text)), 0, "%s", err_msg());
}

/* the file's text, NUL-terminated (the caller frees) */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    TextBuf t;
    text_init(&t);
    text_printf(&t, "%s", "");
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) text_printf(&t, "%.*s", (int)got, chunk);
    fclose(f);
    return t.data;
}

/* an experiment file in the temp folder; returns its path */
static const char *write_experiment(const char *name, const char *json)
{
    const char *path = path_in(name);
    write_text(path, json);
    return path;
}

static void load(Plan *p, const char *path, const char *scale, const PlanVars *vars)
{
    cr_assert_eq(plan_load(p, path, scale, vars), 0, "%s", err_msg());
}

/* plan_load must fail with one message holding every needle */
static void expect_plan_error(const char *path, const char *scale, const PlanVars *vars, const char *needle1,
                              const char *needle2)
{
    Plan p;
    cr_assert_eq(plan_load(&p, path, scale, vars), -1, "%s at %s loaded", path, scale);
    const char *m = err_msg();
    cr_expect_not_null(strstr(m, path), "the message names the file: %s", m);
    cr_expect_not_null(strstr(m, needle1), "'%s' missing from: %s", needle1, m);
    if (needle2) cr_expect_not_null(strstr(m, needle2), "'%s' missing from: %s", needle2, m);
    cr_expect_null(strchr(m, '\n'), "one line: %s", m);
}

/* ---- plans -------------------------------------------------------------------------- */

static int find_run(const Plan *p, const char *label)
{
    for (int i = 0; i < p->n_runs; i++)
        if (!strcmp(p->runs[i].label, label)) return i;
    return -1;
}

/* the run's argv joined by spaces */
static const char *argv_text(const PlanRun *r)
{
    static char buf[2048];
    buf[0] = 0;
    for (int i = 0; i < r->argc; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", r->argv[i]);
    return buf;
}

Test(runner, seeds_times_thresholds)
{
    const char *path = write_experiment(
        "t.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\", \"DeeDiff\"], \"scales\": {\"tiny\": {"
        "  \"seeds\": [0, 1], \"eval\": {\"n\": 128, \"sampler\": \"dpm\"},"
        "  \"columns\": [{\"name\": \"FMNIST\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {"
        "    \"U-ViT\": {\"model\": \"u.safetensors\"},"
        "    \"DeeDiff\": {\"model\": \"d.safetensors\", \"threshold\": [0.1, 0.2, 0.3]}}}}}}}");
    Plan p;
    load(&p, path, "tiny", NULL);
    cr_assert_eq(p.n_runs, 2 + 3 * 2);
    cr_assert_eq(p.n_columns, 1);
    cr_assert_str_eq(p.columns[0].name, "FMNIST");
    cr_assert_null(p.columns[0].note);
    cr_assert_eq(p.n_cells, 2);
    const PlanCell *u = plan_cell(&p, 0, 0), *d = plan_cell(&p, 0, 1);
    cr_assert(u && d);
    cr_assert_eq(u->n_runs, 2);
    cr_assert_eq(d->n_runs, 6);
    int i = find_run(&p, "FMNIST/DeeDiff/T0.2/seed1");
    cr_assert_geq(i, 0);
    cr_assert_str_eq(argv_text(&p.runs[i]), "eval --model d.safetensors --threshold 0.2 --seed 1 --n 128 --sampler dpm");
    cr_assert(p.runs[i].is_eval && !p.runs[i].is_before);
    cr_assert_float_eq(p.runs[i].threshold, 0.2, 1e-12);
    cr_assert_eq(p.runs[i].seed, 1);
    i = find_run(&p, "FMNIST/U-ViT/seed0");
    cr_assert_geq(i, 0);
    cr_assert(isnan(p.runs[i].threshold));
    cr_assert_str_eq(argv_text(&p.runs[i]), "eval --model u.safetensors --seed 0 --n 128 --sampler dpm");
    // every (threshold, seed) once, and the rows are two groups (two models)
    for (int t = 0; t < 3; t++)
        for (int s = 0; s < 2; s++) {
            char label[64];
            snprintf(label, sizeof label, "FMNIST/DeeDiff/T0.%d/seed%d", t + 1, s);
            cr_expect_geq(find_run(&p, label), 0, "%s", label);
        }
    cr_assert_eq(p.n_groups, 2);
    plan_free(&p);
}

Test(runner, eval_flags_in_name_order_and_keys_ignore_key_order)
{
    const char *a = write_experiment(
        "a.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [3],"
        "  \"eval\": {\"steps\": 2, \"sampler\": \"dpm\", \"n\": 128, \"features\": \"fmnist\"},"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"eval\": {\"steps\": 5, \"ref\": \"fmnist-test\"},"
        "    \"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\", \"eval\": {\"batch\": 32, \"n\": 256}}}}}}}}");
    const char *b = write_experiment(
        "b.json",
        "{\"scales\": {\"tiny\": {\"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"eval\": {\"n\": 256, \"batch\": 32},"
        "    \"model\": \"u.safetensors\"}}, \"eval\": {\"ref\": \"fmnist-test\", \"steps\": 5}}},"
        "  \"columns\": [{\"setup\": \"f\", \"name\": \"F\"}],"
        "  \"eval\": {\"features\": \"fmnist\", \"n\": 128, \"sampler\": \"dpm\", \"steps\": 2}, \"seeds\": [3]}},"
        " \"rows\": [\"U-ViT\"], \"experiment\": \"t\"}");
    Plan pa, pb;
    load(&pa, a, "tiny", NULL);
    load(&pb, b, "tiny", NULL);
    cr_assert_eq(pa.n_runs, 1);
    cr_assert_eq(pb.n_runs, 1);
    // the row's eval beats the setup's, which beats the scale's; flags sorted by name
    const char *want = "eval --model u.safetensors --seed 3 --batch 32 --features fmnist --n 256 --ref fmnist-test "
                       "--sampler dpm --steps 5";
    cr_assert_str_eq(argv_text(&pa.runs[0]), want);
    cr_assert_str_eq(argv_text(&pb.runs[0]), want);
    RunKey ka, kb;
    cr_assert_eq(run_key_compute(&ka, pa.runs[0].argv, pa.runs[0].argc), 0, "%s", err_msg());
    cr_assert_eq(run_key_compute(&kb, pb.runs[0].argv, pb.runs[0].argc), 0, "%s", err_msg());
    cr_assert_str_eq(ka.run, kb.run);
    cr_assert_str_eq(ka.setting, kb.setting);
    plan_free(&pa);
    plan_free(&pb);

    // the runner owns seed, model, db and threads
    const char *c = write_experiment(
        "c.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"eval\": {\"threads\": 4}, \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}}}}}}");
    expect_plan_error(c, "tiny", NULL, "scales.tiny.setups.f.rows.U-ViT", "may not set seed, model, db or threads");
}

Test(runner, identical_command_lines_are_one_run)
{
    // two columns on different setups whose U-ViT rows are the same eval, and
    // two rows of one setup with the same model and threshold
    const char *path = write_experiment(
        "t.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\", \"A\", \"B\"], \"scales\": {\"tiny\": {"
        "  \"seeds\": [0, 1], \"eval\": {\"n\": 128},"
        "  \"columns\": [{\"name\": \"X\", \"setup\": \"x\"}, {\"name\": \"Y\", \"setup\": \"y\"}],"
        "  \"setups\": {"
        "    \"x\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"},"
        "                     \"A\": {\"model\": \"d.safetensors\", \"threshold\": 0.1},"
        "                     \"B\": {\"model\": \"d.safetensors\", \"threshold\": 0.1}}},"
        "    \"y\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}}}}}}");
    Plan p;
    load(&p, path, "tiny", NULL);
    cr_assert_eq(p.n_runs, 4, "2 seeds of u + 2 seeds of d at 0.1, got %d", p.n_runs);
    cr_assert_eq(p.n_cells, 4);
    const PlanCell *xu = plan_cell(&p, 0, 0), *yu = plan_cell(&p, 1, 0);
    const PlanCell *xa = plan_cell(&p, 0, 1), *xb = plan_cell(&p, 0, 2);
    cr_assert(xu && yu && xa && xb);
    cr_assert_null(plan_cell(&p, 1, 1), "Y has no row A");
    cr_assert_eq(xu->n_runs, 2);
    cr_assert_eq(yu->n_runs, 2);
    cr_assert_eq(xa->n_runs, 2);
    for (int k = 0; k < 2; k++) {
        cr_expect_eq(xu->runs[k], yu->runs[k], "both columns measure with the same runs");
        cr_expect_eq(xa->runs[k], xb->runs[k], "both rows measure with the same runs");
    }
    plan_free(&p);
}

/* two paper columns, only a Fashion-MNIST setup runnable */
static const char *const STAND_IN_JSON =
    "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
    "  \"columns\": [{\"name\": \"CIFAR-10\", \"setup\": \"cifar10\", \"else\": \"fmnist\"},"
    "              {\"name\": \"CelebA\", \"setup\": \"celeba\", \"else\": \"fmnist\"},"
    "              {\"name\": \"LSUN\", \"setup\": \"lsun\", \"else\": \"fmnist\"}],"
    "  \"setups\": {"
    "    \"cifar10\": {\"label\": \"CIFAR-10 32x32\", \"requires\": [\"${DEEDIFF_TEST_CIFAR}\"],"
    "                \"rows\": {\"U-ViT\": {\"model\": \"c.safetensors\"}}},"
    "    \"lsun\": {\"requires\": [\"%s/absent.bin\"], \"rows\": {\"U-ViT\": {\"model\": \"l.safetensors\"}}},"
    "    \"fmnist\": {\"label\": \"Fashion-MNIST 28x28\", \"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}}}}}}";

Test(runner, stand_in_columns_are_merged_with_a_note)
{
    char json[2048];
    snprintf(json, sizeof json, STAND_IN_JSON, dir);
    const char *path = write_experiment("t.json", json);
    unsetenv("DEEDIFF_TEST_CIFAR");
    Plan p;
    load(&p, path, "tiny", NULL);
    cr_assert_eq(p.n_columns, 1, "three stand-ins on one setup are one column");
    cr_assert_str_eq(p.columns[0].name, "Fashion-MNIST 28x28");
    cr_assert_str_eq(p.columns[0].setup, "fmnist");
    cr_assert_eq(cJSON_GetArraySize(p.columns[0].paper), 3);
    cr_assert_str_eq(cJSON_GetArrayItem(p.columns[0].paper, 0)->valuestring, "CIFAR-10");
    cr_assert_str_eq(cJSON_GetArrayItem(p.columns[0].paper, 2)->valuestring, "LSUN");
    const char *note = p.columns[0].note;
    cr_assert_not_null(note);
    cr_expect_not_null(strstr(note, "stands in for CIFAR-10 (${DEEDIFF_TEST_CIFAR} is not set"), "%s", note);
    cr_expect_not_null(strstr(note, "stands in for CelebA (no celeba setup at this scale)"), "%s", note);
    cr_expect_not_null(strstr(note, "stands in for LSUN ("), "%s", note);
    cr_expect_not_null(strstr(note, "absent.bin does not exist"), "%s", note);
    cr_assert_eq(p.n_runs, 1);
    cr_assert_str_eq(p.runs[0].label, "Fashion-MNIST 28x28/U-ViT/seed0");
    plan_free(&p);

    // with its file given, CIFAR-10 runs itself: its own column, no note
    write_text(path_in("cifar.bin"), "x");
    char assignment[128];
    snprintf(assignment, sizeof assignment, "DEEDIFF_TEST_CIFAR=%s", path_in("cifar.bin"));
    PlanVars vars = {0};
    cr_assert_eq(plan_vars_add(&vars, assignment), 0);
    load(&p, path, "tiny", &vars);
    cr_assert_eq(p.n_columns, 2);
    cr_assert_str_eq(p.columns[0].name, "CIFAR-10");
    cr_assert_null(p.columns[0].note);
    cr_assert_str_eq(p.columns[1].name, "Fashion-MNIST 28x28");
    cr_assert_eq(cJSON_GetArraySize(p.columns[1].paper), 2);
    cr_assert_eq(p.n_runs, 2);
    plan_free(&p);
    free((char *)vars.name[0]);
}

/* is every "before" of a group ahead of every other run of that group? */
static void expect_befores_first(const Plan *p)
{
    for (int i = 0; i < p->n_runs; i++) {
        if (!p->runs[i].is_before) continue;
        for (int k = 0; k < i; k++)
            cr_expect(p->runs[k].group != p->runs[i].group || p->runs[k].is_before,
                      "%s (run %d) comes after %s (run %d) of its group", p->runs[i].label, i, p->runs[k].label, k);
    }
}

/* rows "w/o EE" (no "before") and "DeeDiff" (trains the model first) on one
   model, a U-ViT row on another; the row without "before" comes first */
static const char *const BEFORE_JSON =
    "{\"experiment\": \"t\", \"rows\": [\"U-ViT\", \"w/o EE\", \"DeeDiff\"], \"scales\": {\"tiny\": {"
    "  \"seeds\": [0, 1], \"eval\": {\"n\": 128},"
    "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
    "  \"setups\": {\"f\": {\"rows\": {"
    "    \"w/o EE\": {\"model\": \"d.safetensors\", \"threshold\": 0},"
    "    \"U-ViT\": {\"model\": \"u.safetensors\"},"
    "    \"DeeDiff\": {\"model\": \"d.safetensors\", \"threshold\": [0.1, 0.2],"
    "      \"before\": [{\"creates\": \"d-backbone.safetensors\", \"run\": [\"prune\", \"--model\", \"u.safetensors\"]},"
    "                 {\"creates\": \"d.safetensors\", \"run\": [\"train\", \"--config\", \"c.json\"]}]}}}}}}}";

Test(runner, before_runs_come_first_and_are_grouped_with_their_evals)
{
    Plan p;
    load(&p, write_experiment("t.json", BEFORE_JSON), "tiny", NULL);
    cr_assert_eq(p.n_runs, 2 + 2 + 4 + 2);
    int prune = find_run(&p, "F/DeeDiff/before:prune"), train = find_run(&p, "F/DeeDiff/before:train");
    cr_assert(prune >= 0 && train >= 0);
    cr_assert(prune < train, "befores keep their order");
    cr_assert(p.runs[train].is_before && !p.runs[train].is_eval);
    cr_assert_str_eq(p.runs[train].creates, "d.safetensors");
    cr_assert_str_eq(argv_text(&p.runs[train]), "train --config c.json");
    int wo = find_run(&p, "F/w/o EE/T0/seed1"), dd = find_run(&p, "F/DeeDiff/T0.2/seed0");
    int uv = find_run(&p, "F/U-ViT/seed0");
    cr_assert(wo >= 0 && dd >= 0 && uv >= 0);
    cr_expect_eq(p.runs[train].group, p.runs[wo].group, "a model's training goes with every eval of it");
    cr_expect_eq(p.runs[train].group, p.runs[dd].group);
    cr_expect_eq(p.runs[prune].group, p.runs[dd].group);
    cr_expect_neq(p.runs[uv].group, p.runs[dd].group);
    expect_befores_first(&p);
    // the cells hold their evals only
    const PlanCell *c = plan_cell(&p, 0, 2);
    cr_assert_not_null(c);
    cr_assert_eq(c->n_runs, 4);
    for (int k = 0; k < c->n_runs; k++) cr_expect(p.runs[c->runs[k]].is_eval);
    c = plan_cell(&p, 0, 1);
    cr_assert_not_null(c);
    cr_assert_eq(c->n_runs, 2);
    cr_expect_str_eq(p.runs[c->runs[1]].label, "F/w/o EE/T0/seed1");
    plan_free(&p);
}

Test(runner, variables_from_the_command_then_the_environment)
{
    const char *path = write_experiment(
        "t.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"eval\": {\"ref\": \"${DEEDIFF_TEST_STATS}\"},"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"${DEEDIFF_TEST_W}/u.safetensors\"}}}}}}}");
    setenv("DEEDIFF_TEST_W", "/env", 1);
    setenv("DEEDIFF_TEST_STATS", "env.npz", 1);
    Plan p;
    load(&p, path, "tiny", NULL);
    cr_assert_str_eq(argv_text(&p.runs[0]), "eval --model /env/u.safetensors --seed 0 --ref env.npz");
    plan_free(&p);

    PlanVars vars = {0};
    cr_assert_eq(plan_vars_add(&vars, "DEEDIFF_TEST_W=/first"), 0);
    cr_assert_eq(plan_vars_add(&vars, "DEEDIFF_TEST_W=/given"), 0);  // the last one given wins
    load(&p, path, "tiny", &vars);
    cr_assert_str_eq(argv_text(&p.runs[0]), "eval --model /given/u.safetensors --seed 0 --ref env.npz");
    plan_free(&p);

    // an empty variable in the environment counts as unset
    setenv("DEEDIFF_TEST_STATS", "", 1);
    expect_plan_error(path, "tiny", &vars, "${DEEDIFF_TEST_STATS} is not set", "DEEDIFF_TEST_STATS=VALUE");
    unsetenv("DEEDIFF_TEST_W");
    unsetenv("DEEDIFF_TEST_STATS");
    for (int i = 0; i < vars.n; i++) free((char *)vars.name[i]);

    PlanVars bad = {0};
    cr_expect_eq(plan_vars_add(&bad, "NOEQUALS"), -1);
    cr_expect_eq(plan_vars_add(&bad, "=value"), -1);
    cr_expect_eq(bad.n, 0);
}

Test(runner, errors_name_the_file_and_the_field)
{
    // no rows
    const char *p1 = write_experiment("norows.json", "{\"experiment\": \"t\", \"scales\": {}}");
    expect_plan_error(p1, "tiny", NULL, ": rows: ", "list of row names");
    // not JSON
    expect_plan_error(write_experiment("broken.json", "{\"experiment\": "), "tiny", NULL, "not a JSON object", NULL);
    // a missing file
    expect_plan_error(path_in("absent.json"), "tiny", NULL, "cannot read", NULL);

    const char *ok = write_experiment(
        "t.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {"
        "  \"later\": {\"unavailable\": \"waits for the latent space\"},"
        "  \"tiny\": {\"seeds\": [0], \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "    \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}}}}}}");
    expect_plan_error(ok, "huge", NULL, "scales.huge: this experiment has no such scale", NULL);
    expect_plan_error(ok, "later", NULL, "scale later cannot run yet", "waits for the latent space");
    // the real Table 2 says what it waits for
    expect_plan_error("experiments/table2.json", "smoke", NULL, "experiments/table2.json: scale smoke cannot run yet",
                      NULL);

    // a column whose setup needs an unset variable, without "else"
    unsetenv("DEEDIFF_TEST_UNSET");
    const char *noelse = write_experiment(
        "noelse.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}, {\"name\": \"C\", \"setup\": \"c\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}},"
        "              \"c\": {\"requires\": [\"${DEEDIFF_TEST_UNSET}\"],"
        "                     \"rows\": {\"U-ViT\": {\"model\": \"c.safetensors\"}}}}}}}");
    expect_plan_error(noelse, "tiny", NULL, "scales.tiny.columns[1]: ${DEEDIFF_TEST_UNSET} is not set", NULL);
    // an unset variable in a row
    const char *row_var = write_experiment(
        "rowvar.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"${DEEDIFF_TEST_UNSET}/u.safetensors\"}}}}}}}");
    expect_plan_error(row_var, "tiny", NULL, "scales.tiny.setups.f.rows.U-ViT: ${DEEDIFF_TEST_UNSET} is not set",
                      NULL);
    // a bad threshold, in a row that also has a "before": the row is named, not its before
    const char *bad_th = write_experiment(
        "badth.json",
        "{\"experiment\": \"t\", \"rows\": [\"DeeDiff\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"DeeDiff\": {\"model\": \"d.safetensors\", \"threshold\": [0.1, \"high\"],"
        "    \"before\": [{\"creates\": \"d.safetensors\", \"run\": [\"train\"]}]}}}}}}}");
    expect_plan_error(bad_th, "tiny", NULL, "scales.tiny.setups.f.rows.DeeDiff: threshold: expected a number", NULL);
    // bad seeds, named where they are given: in the row, or for the scale
    const char *row_seeds = write_experiment(
        "rowseeds.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\", \"seeds\": [0, -1]}}}}}}}");
    expect_plan_error(row_seeds, "tiny", NULL, "scales.tiny.setups.f.rows.U-ViT.seeds: expected a list of sampling seeds",
                      NULL);
    const char *no_seeds = write_experiment(
        "noseeds.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}}}}}}");
    expect_plan_error(no_seeds, "tiny", NULL, "scales.tiny.seeds: expected a list of sampling seeds", NULL);
    // seeds no long holds, or not whole (make fuzz found 7.8e82 converted to a long)
    static const char *const bad_seeds[] = {"7.8e82", "1.5"};
    for (int k = 0; k < 2; k++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [%s],"
                 "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
                 "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"}}}}}}}", bad_seeds[k]);
        expect_plan_error(write_experiment("badseed.json", doc), "tiny", NULL,
                          "scales.tiny.seeds: expected a list of sampling seeds", NULL);
    }
    // "eval" options that are not an object, at each of their three places
    // (make fuzz found a scale's "eval": [0, 1, 2] leaking its copies)
    static const char *const evals[][3] = {
        {"\"eval\": [0, 1, 2], ", "", "scales.tiny.eval"},
        {"", "\"eval\": 3, ", "scales.tiny.setups.f.eval"},
        {"", "", "scales.tiny.setups.f.rows.U-ViT.eval"},
    };
    for (int k = 0; k < 3; k++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {%s\"seeds\": [0],"
                 "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
                 "  \"setups\": {\"f\": {%s\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\"%s}}}}}}}",
                 evals[k][0], evals[k][1], k == 2 ? ", \"eval\": \"n=10\"" : "");
        char want[128];
        snprintf(want, sizeof want, "%s: expected an object of eval options", evals[k][2]);
        expect_plan_error(write_experiment("badeval.json", doc), "tiny", NULL, want, NULL);
    }
    // a row the experiment does not list
    const char *stray = write_experiment(
        "stray.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"CALM\": {\"model\": \"c.safetensors\"}}}}}}}");
    expect_plan_error(stray, "tiny", NULL, "scales.tiny.setups.f.rows.CALM: not one of the experiment's", NULL);
    // a "before" without "creates"
    const char *no_creates = write_experiment(
        "nocreates.json",
        "{\"experiment\": \"t\", \"rows\": [\"U-ViT\"], \"scales\": {\"tiny\": {\"seeds\": [0],"
        "  \"columns\": [{\"name\": \"F\", \"setup\": \"f\"}],"
        "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"u.safetensors\", \"before\": [{\"run\": [\"train\"]}]}}}}}}}");
    expect_plan_error(no_creates, "tiny", NULL, "scales.tiny.setups.f.rows.U-ViT.before", "needs \"creates\"");
}

Test(runner, only_and_shard_take_runs_with_what_they_need)
{
    Plan p;
    load(&p, write_experiment("t.json", BEFORE_JSON), "tiny", NULL);
    int prune = find_run(&p, "F/DeeDiff/before:prune"), train = find_run(&p, "F/DeeDiff/before:train");
    // everything, by default
    for (int i = 0; i < p.n_runs; i++) cr_expect(plan_run_taken(&p, i, NULL, 0, 0));
    // by label; the DeeDiff model's training comes with any of its evals
    for (int i = 0; i < p.n_runs; i++) {
        int uvit = strstr(p.runs[i].label, "U-ViT") != NULL;
        cr_expect_eq(plan_run_taken(&p, i, "U-ViT", 0, 0), uvit, "%s", p.runs[i].label);
        cr_expect_eq(plan_run_taken(&p, i, "seed1", 0, 0),
                     strstr(p.runs[i].label, "seed1") != NULL || i == prune || i == train, "%s", p.runs[i].label);
        cr_expect_eq(plan_run_taken(&p, i, "nothing-matches,U-ViT", 0, 0), uvit, "%s", p.runs[i].label);
    }
    cr_expect(plan_run_taken(&p, train, "w/o EE/T0/seed0", 0, 0), "a row without before still gets the training");
    cr_expect(!plan_run_taken(&p, train, "U-ViT", 0, 0));
    // shards: each run in exactly one, a group in one shard, the befores with it
    for (int n = 1; n <= 3; n++)
        for (int i = 0; i < p.n_runs; i++) {
            int in = 0, where = -1;
            for (int k = 0; k < n; k++)
                if (plan_run_taken(&p, i, NULL, k, n)) {
                    in++;
                    where = k;
                }
            cr_expect_eq(in, 1, "run %s is in %d of %d shards", p.runs[i].label, in, n);
            for (int j = 0; j < p.n_runs; j++)
                if (p.runs[j].group == p.runs[i].group)
                    cr_expect(plan_run_taken(&p, j, NULL, where, n), "%s and %s split", p.runs[i].label,
                              p.runs[j].label);
        }
    // only and shard together: the shard's part of the match
    int taken = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < p.n_runs; i++) taken += plan_run_taken(&p, i, "DeeDiff", k, 2);
    cr_expect_eq(taken, 4 + 2, "DeeDiff's 4 evals and 2 befores, over both shards");
    plan_free(&p);
}

Test(runner, shard_text_is_k_of_n)
{
    int k, n;
    cr_assert_eq(runner_parse_shard(NULL, &k, &n), 0);
    cr_assert_eq(n, 0, "no shard: every run");
    cr_assert_eq(runner_parse_shard("", &k, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(runner_parse_shard("2/4", &k, &n), 0);
    cr_assert(k == 2 && n == 4);
    const char *bad[] = {"4/4", "-1/4", "1/0", "1", "1/4x", "a/b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(runner_parse_shard(bad[i], &k, &n), -1, "%s", bad[i]);
        cr_expect_not_null(strstr(err_msg(), "--shard"), "%s", err_msg());
    }
}

/* ---- keys ----------------------------------------------------------------------------- */

Test(runner, keys_follow_the_command_line_and_the_bytes_of_named_files)
{
    write_text(path_in("m.safetensors"), "model bytes");
    write_text(path_in("f.safetensors"), "feature bytes");
    char feat[256];
    snprintf(feat, sizeof feat, "fmnist:%s", path_in("f.safetensors"));
    char model[256];
    snprintf(model, sizeof model, "%s", path_in("m.safetensors"));
    char *argv[] = {"eval", "--model", model, "--features", feat, "--ref", "fmnist-train", "--n", "128"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    RunKey k0, k;
    cr_assert_eq(run_key_compute(&k0, argv, argc), 0, "%s", err_msg());
    cr_assert_eq(strlen(k0.run), SHA256_HEX_LEN);
    cr_assert_eq(strlen(k0.setting), SHA256_HEX_LEN);
    cr_assert_str_neq(k0.run, k0.setting, "the run key adds the code version");
    cr_assert_eq(run_key_compute(&k, argv, argc), 0);
    cr_assert_str_eq(k.run, k0.run);
    cr_assert_str_eq(k.setting, k0.setting);

    // one byte of the model
    write_text(path_in("m.safetensors"), "model bytez");
    cr_assert_eq(run_key_compute(&k, argv, argc), 0);
    cr_expect_str_neq(k.run, k0.run);
    cr_expect_str_neq(k.setting, k0.setting);
    write_text(path_in("m.safetensors"), "model bytes");
    cr_assert_eq(run_key_compute(&k, argv, argc), 0);
    cr_assert_str_eq(k.run, k0.run, "the same bytes again, the same key");
    // one byte of a file named as prefix:FILE
    write_text(path_in("f.safetensors"), "feature bytez");
    cr_assert_eq(run_key_compute(&k, argv, argc), 0);
    cr_expect_str_neq(k.run, k0.run);
    cr_expect_str_neq(k.setting, k0.setting);
    write_text(path_in("f.safetensors"), "feature bytes");
    // one argument
    argv[8] = "129";
    cr_assert_eq(run_key_compute(&k, argv, argc), 0);
    cr_expect_str_neq(k.setting, k0.setting);
    argv[8] = "128";
    // an unreadable named file is an error, not a key without it
    chmod(path_in("m.safetensors"), 0);
    if (access(path_in("m.safetensors"), R_OK) != 0) cr_expect_eq(run_key_compute(&k, argv, argc), -1);
    chmod(path_in("m.safetensors"), 0644);
}

/* ---- deediff run, end to end ------------------------------------------------------------ */

/* a reference for FD-FMNIST: mean 0, identity covariance (128-d), so evals
   need not compute the Fashion-MNIST statistics */
static void write_reference(const char *path)
{
    enum { D = 128 };
    FidStats s = {.dim = D, .n = 1000, .mu = calloc(D, sizeof(double)), .sigma = calloc(D * D, sizeof(double))};
    for (int i = 0; i < D; i++) s.sigma[i * D + i] = 1;
    cr_assert_eq(fid_stats_save(path, &s), 0, "%s", err_msg());
    fid_stats_free(&s);
}

/* three real but cheap evals of the committed tiny U-ViT (seeds 0, 1, 2) */
static const char *write_e2e_experiment(void)
{
    if (access(UVIT, R_OK)) cr_skip_test("%s is missing", UVIT);
    write_reference(path_in("ref.npz"));
    char json[2048];
    snprintf(json, sizeof json,
             "{\"experiment\": \"e2e\", \"title\": \"End to end\", \"rows\": [\"U-ViT\"],"
             " \"metrics\": [\"quality\", \"layers_ratio\"],"
             " \"scales\": {\"tiny\": {\"seeds\": [0, 1, 2],"
             "  \"eval\": {\"n\": 128, \"sampler\": \"dpm\", \"steps\": 2, \"features\": \"fmnist\", \"ref\": \"%s\"},"
             "  \"columns\": [{\"name\": \"FMNIST\", \"setup\": \"f\"}],"
             "  \"setups\": {\"f\": {\"rows\": {\"U-ViT\": {\"model\": \"" UVIT "\"}}}}}}}",
             path_in("ref.npz"));
    return write_experiment("e2e.json", json);
}

static double count(const char *db, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE %s", where);
    return db_number(db, sql);
}

/* the Markdown without its "Drawn by ... on DATE" line */
static char *md_without_date(const char *path)
{
    char *t = read_text(path);
    char *line = strstr(t, "Drawn by");
    cr_assert_not_null(line, "%s", t);
    char *end = strchr(line, '\n');
    memmove(line, end, strlen(end) + 1);
    return t;
}

Test(runner, second_run_skips_everything_and_draws_the_same_table)
{
    cli_need_binary();
    const char *exp = write_e2e_experiment();
    char args[1024], db[256], out_dir[256];
    snprintf(db, sizeof db, "%s", path_in("r.db"));
    snprintf(out_dir, sizeof out_dir, "%s", path_in("paper"));
    snprintf(args, sizeof args, "run %s --db %s --out-dir %s --threads 1", exp, db, out_dir);
    static char out[65536], err[65536];
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_assert_not_null(strstr(out, "3 runs, 0 done, 3 to do"), "%s", out);
    cr_assert_not_null(strstr(out, "run [3/3] FMNIST/U-ViT/seed2 (0 left after it"), "%s", out);
    cr_assert_eq(count(db, "kind = 'eval' AND status = 'done'"), 3);
    cr_assert_eq(count(db, "1"), 3);
    cr_assert_eq(count(db, "experiment = 'e2e/tiny' AND length(run_key) = 64 AND length(setting_key) = 64"), 3);
    cr_assert_eq(db_number(db, "SELECT count(DISTINCT run_key) FROM runs"), 3);
    // the runner's keys are the ones the plan gives
    Plan p;
    load(&p, exp, "tiny", NULL);
    Store st;
    cr_assert_eq(store_open(&st, db), 0, "%s", err_msg());
    for (int i = 0; i < p.n_runs; i++) {
        RunFound f;
        cr_assert_eq(run_lookup_plan(&st, &p, i, &f), 0, "%s", err_msg());
        cr_expect(f.run_id > 0 && !f.stale, "%s not found by its key", p.runs[i].label);
    }
    store_close(&st);
    plan_free(&p);

    char md[300], tex[300], js[300];
    snprintf(md, sizeof md, "%s/tables/e2e.md", out_dir);
    snprintf(tex, sizeof tex, "%s/tables/e2e.tex", out_dir);
    snprintf(js, sizeof js, "%s/tables/e2e.json", out_dir);
    char *md1 = md_without_date(md), *tex1 = read_text(tex), *js1 = read_text(js);
    cr_assert_not_null(strstr(md1, "| FMNIST: FD-FMNIST-128 |"), "%s", md1);
    cr_assert_not_null(strstr(md1, "3 of 3 seeds"), "%s", md1);
    cr_assert_null(strstr(md1, "not yet run"), "%s", md1);

    // nothing changed: nothing to do, the same table
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_assert_not_null(strstr(out, "3 runs, 3 done, 0 to do"), "%s", out);
    cr_assert_null(strstr(out, "run [1/"), "%s", out);
    cr_assert_eq(count(db, "1"), 3);
    char *md2 = md_without_date(md), *tex2 = read_text(tex), *js2 = read_text(js);
    cr_expect_str_eq(md2, md1);
    cr_expect_str_eq(tex2, tex1);
    cr_expect_str_eq(js2, js1);
    // --list says done, --only narrows it
    snprintf(args, sizeof args, "run %s --db %s --list --only seed1", exp, db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_assert_not_null(strstr(out, "done  FMNIST/U-ViT/seed1: eval --model " UVIT " --seed 1"), "%s", out);
    cr_assert_null(strstr(out, "seed0"), "%s", out);
    free(md1);
    free(tex1);
    free(js1);
    free(md2);
    free(tex2);
    free(js2);
}

/* a 'running' row of a process that is gone: a child begins a run and exits */
static int64_t leave_running_row(const char *db)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        Store s;
        int64_t id = 0;
        RunInfo ri = {.kind = "train", .name = "killed", .backend = "cpu"};
        if (store_open(&s, db) == 0 && store_run_begin(&s, &ri, &id) == 0) store_close(&s);
        if (write(fds[1], &id, sizeof id) != sizeof id) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    int64_t id = 0;
    cr_assert_eq(read(fds[0], &id, sizeof id), (ssize_t)sizeof id);
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(id > 0);
    return id;
}

/* count(*) of finished runs, or -1 while the database cannot be read yet */
static int done_now(const char *db)
{
    sqlite3 *h;
    int n = -1;
    if (access(db, F_OK) || sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
    sqlite3_busy_timeout(h, 1000);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h, "SELECT count(*) FROM runs WHERE status = 'done'", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(h);
    return n;
}

/* is process pid there and not a zombie (dead, not yet reaped by whoever
   inherited it)? *pgrp receives its process group */
static int proc_running(const char *pid, int *pgrp)
{
    char path[300], stat[512], state;
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char *after = strrchr(stat, ')');  // the command name may hold spaces
    return after && sscanf(after, ") %c %*d %d", &state, pgrp) == 2 && state != 'Z';
}

/* how many processes of group pgid still run */
static int group_running(pid_t pgid)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    struct dirent *e;
    int running = 0, pgrp;
    while ((e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') running += proc_running(e->d_name, &pgrp) && pgrp == pgid;
    closedir(d);
    return running;
}

/* starts `deediff run EXP` in a process group of its own, waits until its
   first run is stored and the second has started, and kills it with
   SIGKILL: the whole group (as Ctrl-C or a job scheduler does), or the
   runner's process alone. Returns how many runs were done then. */
static int run_and_kill(const char *exp, const char *db, int whole_group)
{
    const char *log = path_in("killed.log");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(126);
        execl(cli_binary(), "deediff", "run", exp, "--db", db, "--no-report", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    struct timespec nap = {0, 20 * 1000 * 1000};
    int waited = 0;
    while (waited++ < 1500 && done_now(db) < 1) nanosleep(&nap, NULL);
    // the first run's process gone, then the runner and its second run there
    char first[32];
    snprintf(first, sizeof first, "%.0f", db_number(db, "SELECT pid FROM runs WHERE status = 'done'"));
    int pgrp;
    while (waited++ < 1500 && proc_running(first, &pgrp)) nanosleep(&nap, NULL);
    while (waited++ < 1500 && group_running(pid) < 2) nanosleep(&nap, NULL);
    cr_assert_eq(kill(whole_group ? -pid : pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "the runner ended before it was killed:\n%s", read_text(log));
    if (!whole_group) {
        // nothing of the experiment may go on behind the killed runner
        int alive = 1;
        for (waited = 0; waited < 15 && alive; waited++) {  // 0.3 s: a signal, not a finished run
            alive = group_running(pid) > 0;
            if (alive) nanosleep(&nap, NULL);
        }
        cr_expect(!alive, "a run of the killed runner is still going");
        if (alive) kill(-pid, SIGKILL);
    }
    int done = done_now(db);
    cr_assert(done >= 1 && done < 3, "%d runs done when the runner was killed", done);
    return done;
}

Test(runner, killed_runner_resumes_without_lost_or_doubled_rows)
{
    cli_need_binary();
    const char *exp = write_e2e_experiment();
    char db[256];
    snprintf(db, sizeof db, "%s", path_in("r.db"));
    int done = run_and_kill(exp, db, 1);
    // a run of a dead process left 'running' (a training killed half-way)
    int64_t orphan = leave_running_row(db);

    char args[1024];
    static char out[65536], err[65536];
    snprintf(args, sizeof args, "run %s --db %s --no-report --threads 1", exp, db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    char want[128];
    snprintf(want, sizeof want, "3 runs, %d done, %d to do", done, 3 - done);
    cr_assert_not_null(strstr(out, want), "%s", out);
    cr_assert_not_null(strstr(out, "1 interrupted run(s) of this machine marked failed"), "%s", out);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT status = 'failed' AND error LIKE 'interrupted%%' FROM runs WHERE id = %lld",
             (long long)orphan);
    cr_assert_eq(db_number(db, sql), 1);

    // exactly one finished run per planned run; no row twice
    cr_assert_eq(count(db, "kind = 'eval' AND status = 'done'"), 3);
    cr_assert_eq(count(db, "kind = 'eval'"), 3, "an eval stores all or nothing: no half-written run");
    cr_assert_eq(count(db, "status = 'running'"), 0);
    cr_assert_eq(db_number(db, "SELECT count(DISTINCT run_key) FROM runs WHERE kind = 'eval'"), 3);
    cr_assert_eq(db_number(db, "SELECT count(DISTINCT json_extract(config, '$.seed')) FROM runs WHERE kind = 'eval'"),
                 3);
    cr_assert_eq(db_number(db, "SELECT count(*) FROM (SELECT run_id, name, step FROM metrics "
                               "GROUP BY run_id, name, step HAVING count(*) > 1)"),
                 0);
    cr_assert_eq(db_number(db, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                               "WHERE r.kind = 'eval' AND m.name = 'fd_fmnist'"),
                 3);
    double per_run = db_number(db, "SELECT count(*) FROM metrics WHERE run_id = (SELECT min(id) FROM runs "
                                   "WHERE kind = 'eval')");
    cr_assert_eq(db_number(db, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.kind = 'eval'"),
                 3 * per_run);

    // and a third start finds nothing to do and nobody to reap
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_assert_not_null(strstr(out, "3 runs, 3 done, 0 to do"), "%s", out);
    cr_assert_null(strstr(out, "interrupted"), "%s", out);
}

Test(runner, runner_killed_alone_takes_its_run_with_it)
{
    cli_need_binary();
    const char *exp = write_e2e_experiment();
    char db[256];
    snprintf(db, sizeof db, "%s", path_in("r.db"));
    run_and_kill(exp, db, 0);
    char args[1024];
    static char out[65536], err[65536];
    snprintf(args, sizeof args, "run %s --db %s --no-report --threads 1", exp, db);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_assert_eq(count(db, "kind = 'eval' AND status = 'done'"), 3, "one finished run per planned run");
    cr_assert_eq(db_number(db, "SELECT count(DISTINCT run_key) FROM runs WHERE kind = 'eval'"), 3);
}

Test(runner, reap_marks_only_dead_processes)
{
    const char *db = path_in("r.db");
    int64_t dead = leave_running_row(db);
    Store s;
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    RunInfo ri = {.kind = "eval", .name = "alive", .backend = "cpu"};
    int64_t alive;
    cr_assert_eq(store_run_begin(&s, &ri, &alive), 0, "%s", err_msg());  // this process: alive
    int n;
    cr_assert_eq(run_lookup_reap(&s, &n), 0, "%s", err_msg());
    cr_assert_eq(n, 1);
    cr_assert_eq(run_lookup_reap(&s, &n), 0);
    cr_assert_eq(n, 0, "a reaped run is reaped once");
    store_close(&s);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT status = 'failed' FROM runs WHERE id = %lld", (long long)dead);
    cr_assert_eq(db_number(db, sql), 1);
    snprintf(sql, sizeof sql, "SELECT status = 'running' FROM runs WHERE id = %lld", (long long)alive);
    cr_assert_eq(db_number(db, sql), 1);
}

/* ---- tables from a fixture database ------------------------------------------------------- */

static const char *const TABLE_JSON =
    "{\"experiment\": \"fix\", \"title\": \"Fixture table\", \"rows\": [\"U-ViT\", \"DeeDiff\", \"CALM\"],"
    " \"metrics\": [\"quality\", \"layers_ratio\", \"gflops\"],"
    " \"paper\": {\"metric\": \"FID-50k\", \"columns\": {\"CIFAR-10\": {"
    "   \"U-ViT\": {\"quality\": 3.11, \"layers_ratio\": 1, \"gflops\": 22.86},"
    "   \"DeeDiff\": {\"quality\": 3.7, \"layers_ratio\": 0.523, \"gflops\": 11.97}}}},"
    " \"scales\": {\"tiny\": {\"seeds\": [0, 1, 2], \"eval\": {\"n\": 128, \"sampler\": \"dpm\", \"steps\": 50},"
    "  \"columns\": [{\"name\": \"CIFAR-10\", \"setup\": \"cifar10\", \"else\": \"fmnist\"}],"
    "  \"setups\": {\"fmnist\": {\"label\": \"Fashion-MNIST 28x28\", \"rows\": {"
    "    \"U-ViT\": {\"model\": \"%s/u.safetensors\"},"
    "    \"DeeDiff\": {\"model\": \"%s/d.safetensors\", \"threshold\": 0.15},"
    "    \"CALM\": {\"model\": \"%s/c.safetensors\", \"threshold\": 0.035}}}}}}}";

/* stores an eval run for plan run i with the given keys and numbers */
static int64_t fixture_eval(Store *s, const Plan *p, int i, const char *run_key, const char *setting_key,
                            double fd, double layers, double gflops_per_image, int done)
{
    RunKey k;
    cr_assert_eq(run_key_compute(&k, p->runs[i].argv, p->runs[i].argc), 0, "%s", err_msg());
    setenv(STORE_ENV_RUN_KEY, run_key ? run_key : k.run, 1);
    setenv(STORE_ENV_SETTING_KEY, setting_key ? setting_key : k.setting, 1);
    setenv(STORE_ENV_EXPERIMENT, "fix/tiny", 1);
    char config[512];
    snprintf(config, sizeof config,
             "{\"metric\": \"FD-FMNIST-128\", \"evals_per_image\": 50, \"sampler\": \"dpm\", \"steps\": 50,"
             " \"n\": 128, \"seed\": %ld, \"features\": \"fmnist\", \"ref\": \"fmnist-train\", \"precision\": \"fp32\","
             " \"backend\": \"cpu\", \"threads\": 2}",
             p->runs[i].seed);
    RunInfo ri = {.kind = "eval", .name = p->runs[i].label, .config_json = config, .backend = "cpu"};
    int64_t id;
    cr_assert_eq(store_run_begin(s, &ri, &id), 0, "%s", err_msg());
    unsetenv(STORE_ENV_RUN_KEY);
    unsetenv(STORE_ENV_SETTING_KEY);
    unsetenv(STORE_ENV_EXPERIMENT);
    Metric m[] = {
        {.name = "fd_fmnist", .value = fd, .step = -1},
        {.name = "layers_ratio", .value = layers, .step = -1},
        {.name = "compute_ratio", .value = layers, .step = -1},
        {.name = "gflops_per_image", .value = gflops_per_image, .step = -1},
        {.name = "seconds_per_image", .value = 0.01, .step = -1},
    };
    cr_assert_eq(store_metrics(s, id, m, 5), 0, "%s", err_msg());
    if (done) cr_assert_eq(store_run_done(s, id), 0, "%s", err_msg());
    else cr_assert_eq(store_run_failed(s, id, "test: failed"), 0, "%s", err_msg());
    return id;
}

/* the fixture: U-ViT 3 seeds by this code; DeeDiff 2 seeds by other code
   (setting key only); CALM one failed run */
static void write_fixture(const Plan *p, const char *db)
{
    Store s;
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    const double fd[3] = {10, 12, 14}, layers[3] = {1, 1, 1};
    for (int seed = 0; seed < 3; seed++) {
        char label[96];
        snprintf(label, sizeof label, "Fashion-MNIST 28x28/U-ViT/seed%d", seed);
        int i = find_run(p, label);
        cr_assert_geq(i, 0, "%s", label);
        fixture_eval(&s, p, i, NULL, NULL, fd[seed], layers[seed], 100 + seed, 1);
    }
    for (int seed = 0; seed < 2; seed++) {
        char label[96];
        snprintf(label, sizeof label, "Fashion-MNIST 28x28/DeeDiff/T0.15/seed%d", seed);
        int i = find_run(p, label);
        cr_assert_geq(i, 0, "%s", label);
        fixture_eval(&s, p, i, "a-run-key-of-other-code", NULL, 20 + 2 * seed, 0.5 + 0.1 * seed, 50, 1);
    }
    fixture_eval(&s, p, find_run(p, "Fashion-MNIST 28x28/CALM/T0.035/seed0"), NULL, NULL, 99, 0.8, 80, 0);
    store_close(&s);
}

static const cJSON *json_cell(const cJSON *root, const char *row)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cells"))
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "row")), row)) return c;
    cr_assert_fail("no cell for row %s", row);
    return NULL;
}

static double json_stat(const cJSON *cell, const char *metric, const char *what)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cell, metric), what);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

Test(runner, table_from_a_fixture_database)
{
    write_text(path_in("u.safetensors"), "u weights");
    write_text(path_in("d.safetensors"), "d weights");
    write_text(path_in("c.safetensors"), "c weights");
    char json[4096];
    snprintf(json, sizeof json, TABLE_JSON, dir, dir, dir);
    Plan p;
    load(&p, write_experiment("fix.json", json), "tiny", NULL);
    const char *db = path_in("fix.db");
    write_fixture(&p, db);
    Store st;
    cr_assert_eq(store_open(&st, db), 0, "%s", err_msg());
    char out_dir[256];
    snprintf(out_dir, sizeof out_dir, "%s", path_in("paper"));
    cr_assert_eq(report_table(&st, &p, out_dir), 0, "%s", err_msg());
    store_close(&st);

    char path[512];
    snprintf(path, sizeof path, "%s/tables/fix.md", out_dir);
    char *md = read_text(path);
    // the stand-in column, its quality named as the proxy
    cr_expect_not_null(strstr(md, "| Method | Fashion-MNIST 28x28: FD-FMNIST-128 | Fashion-MNIST 28x28: layers ratio |"),
                       "%s", md);
    cr_expect_not_null(strstr(md, "Fashion-MNIST 28x28 stands in for CIFAR-10"), "%s", md);
    // mean ± sample sd over 3 seeds (10, 12, 14: sd 2, not the population's
    // 1.63); no spread where nothing moved (the layers ratio)
    cr_expect_not_null(strstr(md, "| U-ViT | 12.00 ± 2.00 [[1]](#p1) | 1.000 | 2.02 ± 0.020 |"), "%s", md);
    // other code's runs: shown, marked stale
    cr_expect_not_null(strstr(md, "| DeeDiff | 21.00 ± 1.41 (2 of 3 seeds) (stale)"), "%s", md);
    cr_expect_not_null(strstr(md, "0.550 ± 0.071 (stale)"), "%s", md);
    cr_expect_not_null(strstr(md, "STALE"), "the protocol says so too: %s", md);
    // a failed run is no measurement
    cr_expect_not_null(strstr(md, "| CALM | not yet run | not yet run | not yet run |"), "%s", md);
    // the paper's numbers, marked as the paper's
    cr_expect_not_null(strstr(md, "*paper* CIFAR-10: FID-50k |"), "%s", md);
    cr_expect_not_null(strstr(md, "| *3.11* | *1* | *22.86* |"), "%s", md);
    cr_expect_not_null(strstr(md, "| *3.7* | *0.523 (-47.7%)* | *11.97* |"), "%s", md);
    cr_expect_not_null(strstr(md, "| *–* | *–* | *–* |"), "CALM has no paper numbers here: %s", md);
    // FD-FMNIST is the proxy, never FID
    cr_expect_not_null(strstr(md, "FD-FMNIST-N is this project's proxy"), "%s", md);
    cr_expect_not_null(strstr(md, "It is not FID"), "%s", md);
    cr_expect_not_null(strstr(md, "3 of 3 seeds"), "%s", md);
    cr_expect_not_null(strstr(md, "2 of 3 seeds"), "%s", md);

    snprintf(path, sizeof path, "%s/tables/fix.tex", out_dir);
    char *tex = read_text(path);
    cr_expect_not_null(strstr(tex, "\\toprule"), "%s", tex);
    cr_expect_not_null(strstr(tex, "\\midrule"), "%s", tex);
    cr_expect_not_null(strstr(tex, "\\bottomrule"), "%s", tex);
    cr_expect_not_null(strstr(tex, "U-ViT & 12.00 $\\pm$ 2.00 & 1.000 &"), "%s", tex);
    cr_expect_not_null(strstr(tex, "CALM & not yet run"), "%s", tex);
    cr_expect_not_null(strstr(tex, "(stale)"), "a stale cell is marked in every report: %s", tex);
    cr_expect_null(strstr(tex, "±"), "no raw UTF-8 ± in LaTeX: %s", tex);

    snprintf(path, sizeof path, "%s/tables/fix.json", out_dir);
    char *js = read_text(path);
    cJSON *root = cJSON_Parse(js);
    cr_assert_not_null(root, "%s", js);
    const cJSON *u = json_cell(root, "U-ViT"), *d = json_cell(root, "DeeDiff"), *c = json_cell(root, "CALM");
    cr_expect_float_eq(json_stat(u, "quality", "mean"), 12, 1e-12);
    cr_expect_float_eq(json_stat(u, "quality", "sd"), 2, 1e-12);
    cr_expect_eq(json_stat(u, "quality", "n"), 3);
    cr_expect_float_eq(json_stat(u, "gflops", "mean"), 101.0 / 50, 1e-12, "GFLOPs per network evaluation");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(u, "stale")));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(d, "stale")));
    cr_expect_float_eq(json_stat(d, "quality", "sd"), sqrt(2), 1e-12);
    cr_expect_float_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(d, "threshold")), 0.15, 1e-12);
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "seeds_found")), 0);
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "seeds_wanted")), 3);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "quality"), "mean")));
    const cJSON *col = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "columns"), 0);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(col, "stands_for"), 0)), "CIFAR-10");
    cJSON_Delete(root);
    free(js);
    free(tex);
    free(md);
    plan_free(&p);
}

Test(runner, report_command_draws_the_table_running_nothing)
{
    cli_need_binary();
    write_text(path_in("u.safetensors"), "u weights");
    write_text(path_in("d.safetensors"), "d weights");
    write_text(path_in("c.safetensors"), "c weights");
    char json[4096];
    snprintf(json, sizeof json, TABLE_JSON, dir, dir, dir);
    const char *exp = write_experiment("fix.json", json);
    Plan p;
    load(&p, exp, "tiny", NULL);
    const char *db = path_in("fix.db");
    write_fixture(&p, db);
    plan_free(&p);
    char args[1024];
    static char out[65536], err[4096];
    snprintf(args, sizeof args, "report %s --db %s --out-dir %s/paper", exp, db, dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_expect_not_null(strstr(out, "12.00 ± 2.00"), "%s", out);
    cr_expect_not_null(strstr(out, "/paper/tables/fix.{md,tex,json}"), "%s", out);
    cr_expect_eq(count(db, "1"), 6, "report runs nothing");
    // another scale goes to its own files
    snprintf(args, sizeof args, "report %s --db %s --out-dir %s/paper --scale huge", exp, db, dir);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2, "%s\n%s", out, err);
    cr_expect_not_null(strstr(err, "scales.huge"), "%s", err);
}

/* paper/CLAIMS.md from the same fixture: each verdict by its rule, stale
   runs said so, a claim whose row never ran and a scale the experiment lacks
   are "not yet run" */
static const char *const CLAIMS_JSON =
    "{\"scales\": [\"tiny\", \"paper\"], \"claims\": ["
    " {\"id\": \"uvit-good\", \"experiment\": \"%s\", \"column\": \"CIFAR-10\", \"text\": \"U-ViT is good.\","
    "  \"paper\": \"FID 3.11\", \"rule\": {\"at_most\": {\"row\": \"U-ViT\", \"metric\": \"quality\"}, \"bound\": 13}},"
    " {\"id\": \"deediff-close\", \"experiment\": \"%s\", \"column\": \"CIFAR-10\", \"text\": \"DeeDiff is close.\","
    "  \"paper\": \"FID 3.7\", \"rule\": {\"all\": ["
    "   {\"at_least\": {\"row\": \"DeeDiff\", \"metric\": \"layer_reduction\"}, \"bound\": 0.4},"
    "   {\"at_most\": {\"row\": \"DeeDiff\", \"metric\": \"quality\"}, \"than\": {\"row\": \"U-ViT\", \"metric\": \"quality\"},"
    "    \"factor\": 1.5}]}},"
    " {\"id\": \"calm\", \"experiment\": \"%s\", \"column\": \"CIFAR-10\", \"text\": \"CALM saves layers.\","
    "  \"paper\": \"-20%%\", \"rule\": {\"at_least\": {\"row\": \"CALM\", \"metric\": \"layer_reduction\"}, \"bound\": 0.1}}]}";

Test(runner, claims_from_a_fixture_database)
{
    cli_need_binary();
    write_text(path_in("u.safetensors"), "u weights");
    write_text(path_in("d.safetensors"), "d weights");
    write_text(path_in("c.safetensors"), "c weights");
    char json[4096];
    snprintf(json, sizeof json, TABLE_JSON, dir, dir, dir);
    const char *exp = write_experiment("fix.json", json);
    Plan p;
    load(&p, exp, "tiny", NULL);
    const char *db = path_in("fix.db");
    write_fixture(&p, db);
    plan_free(&p);
    char claims[4096], args[1024];
    snprintf(claims, sizeof claims, CLAIMS_JSON, exp, exp, exp);
    write_text(path_in("claims.json"), claims);
    static char out[65536], err[4096];
    snprintf(args, sizeof args, "claims --claims %s --db %s --output %s", path_in("claims.json"), db,
             path_in("CLAIMS.md"));
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    char *md = read_text(path_in("CLAIMS.md"));
    // U-ViT: mean 12 <= 13
    cr_expect_not_null(strstr(md, "| U-ViT is good. <a href=\"#uvit-good\">[rule]</a> | FID 3.11 | **reproduced**: "
                                  "U-ViT: FD-FMNIST-128 12 (Fashion-MNIST 28x28 stands in) |"), "%s", md);
    // DeeDiff: layers -45% >= 40%, but FD 21 > 1.5 x 12; its runs are other code's
    cr_expect_not_null(strstr(md, "**not reproduced**: DeeDiff: layers -45.0%; DeeDiff: FD-FMNIST-128 21; U-ViT: "
                                  "FD-FMNIST-128 12 (Fashion-MNIST 28x28 stands in) (stale: made by other code; rerun)"),
                       "%s", md);
    // CALM's only run failed
    cr_expect_not_null(strstr(md, "| CALM saves layers. <a href=\"#calm\">[rule]</a> | -20% | **not yet run** |"), "%s",
                       md);
    // the fixture has no paper scale
    cr_expect_not_null(strstr(md, "not yet run: scales.paper: this experiment has no such scale"), "%s", md);
    // the rules are written out
    cr_expect_not_null(strstr(md, "layer_reduction DeeDiff >= 0.4 and quality DeeDiff <= 1.5 x quality U-ViT"), "%s", md);
    free(md);
    // a missing claims file is bad input, one line naming it
    snprintf(args, sizeof args, "claims --claims %s/none.json --db %s --output %s", dir, db, path_in("C2.md"));
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2, "%s\n%s", out, err);
    cr_expect_not_null(strstr(err, "none.json: cannot read the claims file"), "%s", err);
}

/* make regress: a baseline recorded from the database passes, a moved
   baseline fails with exit status 1 naming the metric, a missing baseline is
   bad input; the smoke runs come from a fixture database, so nothing runs */
static const char *const REGRESS_JSON =
    "{\"experiment\": \"fixr\", \"rows\": [\"U-ViT\"],"
    " \"scales\": {\"smoke\": {\"seeds\": [0], \"eval\": {\"n\": 128, \"sampler\": \"dpm\", \"steps\": 2},"
    "  \"columns\": [{\"name\": \"Fashion-MNIST 28x28\", \"setup\": \"fmnist\"}],"
    "  \"setups\": {\"fmnist\": {\"rows\": {\"U-ViT\": {\"model\": \"%s/u.safetensors\"}}}}}}}";

Test(runner, regress_passes_then_fails_on_a_moved_baseline)
{
    cli_need_binary();
    write_text(path_in("u.safetensors"), "u weights");
    char json[2048], args[1024];
    snprintf(json, sizeof json, REGRESS_JSON, dir);
    const char *exp = write_experiment("fixr.json", json);
    Plan p;
    load(&p, exp, "smoke", NULL);
    const char *db = path_in("r.db");
    Store s;
    cr_assert_eq(store_open(&s, db), 0, "%s", err_msg());
    fixture_eval(&s, &p, 0, NULL, NULL, 10, 1, 100, 1);
    store_close(&s);
    plan_free(&p);
    static char out[65536], err[4096];
    const char *base = path_in("baseline.json");
    snprintf(args, sizeof args, "regress --rebaseline --baseline %s --db %s %s", base, db, exp);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    snprintf(args, sizeof args, "regress --baseline %s --db %s %s", base, db, exp);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 0, "%s\n%s", out, err);
    cr_expect_not_null(strstr(out, "of 4 metrics within tolerance"), "%s", out);
    cr_expect_eq(count(db, "1"), 1, "regress ran nothing");

    // the quality moved by half: a regression, named, exit status 1
    char *text = read_text(base);
    char *at = strstr(text, "| quality\":");
    cr_assert_not_null(at, "%s", text);
    at = strchr(at, ':') + 1;
    at += strspn(at, " \t");
    cr_assert_eq(strncmp(at, "10", 2), 0, "%s", at);
    at[0] = '1', at[1] = '5';
    write_text(base, text);
    free(text);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 1, "%s\n%s", out, err);
    cr_expect_not_null(strstr(out, "REGRESSION fixr/smoke | Fashion-MNIST 28x28 | U-ViT | quality: 15 -> 10"), "%s", out);
    cr_expect_eq(count(db, "1"), 1, "regress ran nothing");

    // a missing baseline is bad input, one line naming it
    snprintf(args, sizeof args, "regress --baseline %s/none.json --db %s %s", dir, db, exp);
    cr_assert_eq(cli_run(args, out, sizeof out, err, sizeof err), 2, "%s\n%s", out, err);
    cr_expect_not_null(strstr(err, "none.json: cannot read the baseline"), "%s", err);
}
