/*
 * fuzz_experiment.c: libFuzzer target for experiment files
 * (harness/runner/experiment.c: plan_load) at every scale, and the run
 * filters (plan_run_taken) over the plan they give.
 *
 * The input is the JSON file. A rejection must be one line naming the file;
 * an accepted plan must be consistent: every cell's runs and every run's
 * group exist, every run has a command and a label, and the filters run
 * over all of them.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "harness/runner/experiment.h"

static void check_plan(const Plan *p)
{
    for (int i = 0; i < p->n_cells; i++) {
        assert(p->cells[i].n_runs > 0);
        assert(p->cells[i].column >= 0 && p->cells[i].column < p->n_columns);
        assert(p->cells[i].row >= 0 && p->cells[i].row < p->n_rows);
        for (int k = 0; k < p->cells[i].n_runs; k++)
            assert(p->cells[i].runs[k] >= 0 && p->cells[i].runs[k] < p->n_runs);
    }
    for (int i = 0; i < p->n_runs; i++) {
        const PlanRun *r = &p->runs[i];
        assert(r->argc >= 1 && r->argv[0] && r->label);
        assert(r->group >= 0 && r->group < p->n_groups);
        (void)plan_run_taken(p, i, "seed1,T0", 1, 3);
        (void)plan_run_taken(p, i, NULL, 0, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write_file("experiment.json", data, size, path, sizeof path);
    static const char *const scales[] = {"smoke", "tiny", "paper"};
    for (int s = 0; s < 3; s++) {
        Plan p;
        err_clear();
        if (plan_load(&p, path, scales[s], NULL) < 0) {
            fuzz_check_error(path);
            continue;
        }
        check_plan(&p);
        plan_free(&p);
    }
    return 0;
}
