/*
 * fuzz_cifar10.c: libFuzzer target for the CIFAR-10 binary batch reader
 * (harness/data/dataset_cifar10.c).
 *
 * The input is written as test_batch.bin into a temporary folder opened as
 * the CIFAR-10 test split. A rejection must be one line naming the file; an
 * accepted batch must hold one item per 3073-byte record, labels 0..9 and
 * the record's pixels unchanged.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "harness/data/dataset.h"

#define RECORD 3073

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write_file("test_batch.bin", data, size, path, sizeof path);
    DatasetSpec spec = {.format = DATA_CIFAR10, .path = fuzz_tmp_dir(), .test_split = 1};
    Dataset *ds = NULL;
    err_clear();
    if (dataset_open(&spec, &ds) < 0) {
        fuzz_check_error(path);
        return 0;
    }
    assert(ds->n * RECORD == (int64_t)size && ds->c == 3 && ds->h == 32 && ds->w == 32);
    for (int64_t i = 0; i < ds->n; i++) {
        assert(ds->labels[i] == data[i * RECORD] && ds->labels[i] <= 9);
        assert(memcmp(ds->pixels + i * (RECORD - 1), data + i * RECORD + 1, RECORD - 1) == 0);
    }
    dataset_close(ds);
    return 0;
}
