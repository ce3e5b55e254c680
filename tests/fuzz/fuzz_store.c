/*
 * fuzz_store.c: libFuzzer target for opening a results database that is
 * foreign or corrupt (harness/store/store.c: store_open, the schema migrations,
 * and reading a training curve back).
 *
 * The input is written as results.db into a temporary folder (its -wal and
 * -shm files removed first) and opened. A rejection must be one line naming
 * the file; an accepted database must be at the schema's version and answer
 * a training-curve query (rows or none) without crashing.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "harness/store/store.h"

static int count_row(void *user, const TrainRow *r)
{
    (void)r;
    ++*(int *)user;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_remove_file("results.db-wal");
    fuzz_remove_file("results.db-shm");
    fuzz_write_file("results.db", data, size, path, sizeof path);
    Store s;
    err_clear();
    if (store_open(&s, path) < 0) {
        fuzz_check_error(path);
        return 0;
    }
    int rows = 0;
    err_clear();
    if (store_train_curve(&s, "runs/x", count_row, &rows) < 0) fuzz_check_error(path);
    store_close(&s);
    return 0;
}
