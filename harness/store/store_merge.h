/*
 * store_merge.h: combining results databases (`deediff merge`). A sharded
 * experiment (SHARD=i/n) writes one database per GPU or cluster node; merge
 * makes one database of them, with no run twice.
 *
 * What a merge does, exactly:
 *   - Identity is runs.uuid. The runs of each input are taken in input order,
 *     and in id order within an input. A run whose uuid is already in the
 *     output is skipped with all its rows ("present"), so overlapping shards
 *     and a repeated merge add nothing. One exception: when the output's copy
 *     is 'running' (a snapshot of a shard taken while it ran, or a killed
 *     shard) and the input's is finished ('done' or 'failed'), the finished
 *     copy replaces it in place, its rows included ("updated").
 *   - Integer ids are the input's own and collide between shards: every
 *     copied run gets a new runs.id, and the rows of every table with a
 *     run_id column (train_log, metrics, artifacts, exits, figure_points, and
 *     any later one) follow it; their own integer ids (metrics.id,
 *     artifacts.id) are renumbered too. parent_id is resolved through the
 *     parent's uuid after all inputs are copied, so a parent in another input
 *     of the same merge resolves; a parent in no input (or a dangling one)
 *     becomes NULL and is counted (MergeSummary.orphans).
 *   - regress_checks rows are copied unless the output already has a row with
 *     the same check_id and cell.
 *   - Two different runs with the same run_key that are both 'done' (two
 *     shards ran one setting) are both kept: they are real measurements. The
 *     number of such keys is counted (MergeSummary.duplicate_keys) for the
 *     caller to report. 'running' and 'failed' rows are copied as they are.
 *   - Inputs are opened read-only and never changed (SQLite may leave an
 *     empty A.db-wal and A.db-shm beside an input in WAL mode). An input of
 *     an older schema version is read as it is (columns and tables it lacks
 *     are left at their defaults, NULL); one of a newer version, a file that
 *     is not a results database, or a corrupt one is refused.
 *   - If OUT exists it is an input too, and the first: the result is OUT's
 *     rows (with their ids kept) plus the inputs'. OUT must not be open in
 *     another process (a runner writing to it) during a merge, and two
 *     merges into one OUT must not run at once: the new file replaces it,
 *     and the last rename wins.
 *   - The result is built in OUT.tmp-<pid> in one transaction and renamed
 *     over OUT only when everything succeeded: a failure leaves OUT as it
 *     was and no temporary file behind.
 */
#ifndef DEEDIFF_STORE_MERGE_H
#define DEEDIFF_STORE_MERGE_H

#include <stdint.h>

/* what became of one input's rows */
typedef struct {
    int64_t runs_merged;    /* new to the output */
    int64_t runs_present;   /* uuid already there: skipped with their rows */
    int64_t runs_updated;   /* finished copies that replaced a 'running' one */
    int64_t checks_merged;  /* regress_checks rows new to the output */
    int64_t checks_present; /* same check_id and cell already there */
} MergeInputStats;

typedef struct {
    int64_t out_runs_before;  /* runs OUT held before the merge (0: no OUT) */
    int64_t runs;             /* runs in the result */
    int64_t orphans;          /* runs whose parent is in no input: parent_id NULL */
    int64_t duplicate_keys;   /* run_keys with more than one 'done' run */
} MergeSummary;

/* Merges inputs[0..n) (n >= 1) into out as described above; stats[i] (the
   caller's array of n) receives input i's counts. Returns 0, or -1 with
   err_msg() one line naming the file at fault, and out unchanged. */
int store_merge(const char *out, const char *const *inputs, int n, MergeInputStats *stats,
                MergeSummary *summary);

#endif
