/*
 * dataset_cifar10.c: CIFAR-10 from its binary batches (the "binary version"
 * of https://www.cs.toronto.edu/~kriz/cifar.html, folder cifar-10-batches-bin).
 *
 * Train: data_batch_1.bin .. data_batch_5.bin (50,000 images, in that order);
 * test: test_batch.bin (10,000). Each file is records of 3073 bytes: one label
 * byte (0..9), then 3072 bytes of 1024 R, 1024 G, 1024 B, each 32 x 32
 * row-major: exactly our [C, H, W] layout, copied as is. The file size must
 * be a whole number of records.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/data/dataset.h"
#include "kernels/errors.h"

#define CIFAR_RECORD 3073
#define CIFAR_PIXELS 3072

/* the number of records in one batch file, after checking its size */
static int batch_records(const char *path, int64_t *records)
{
    struct stat st;
    if (stat(path, &st) != 0) return err_set("%s: file: cannot open", path);
    if (st.st_size == 0 || st.st_size % CIFAR_RECORD != 0)
        return err_set("%s: size: %lld bytes is not a positive multiple of the 3073-byte record",
                       path, (long long)st.st_size);
    *records = st.st_size / CIFAR_RECORD;
    return 0;
}

/* reads `records` records of path into ds starting at item `first` */
static int batch_read(const char *path, int64_t records, Dataset *ds, int64_t first)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: file: cannot open", path);
    uint8_t rec[CIFAR_RECORD];
    for (int64_t r = 0; r < records; r++) {
        if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD) {
            fclose(f);
            return err_set("%s: record %lld: short read", path, (long long)r);
        }
        if (rec[0] > 9) {
            fclose(f);
            return err_set("%s: label: record %lld has label %u, expected 0..9", path,
                           (long long)r, rec[0]);
        }
        ds->labels[first + r] = rec[0];
        memcpy(ds->pixels + (size_t)(first + r) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
    fclose(f);
    return 0;
}

int dataset_open_cifar10(const DatasetSpec *spec, Dataset **out)
{
    if (!spec->path) return err_set("cifar-10: path: no folder given");
    static const char *train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                  "data_batch_4.bin", "data_batch_5.bin"};
    static const char *test[] = {"test_batch.bin"};
    const char **names = spec->test_split ? test : train;
    int nfiles = spec->test_split ? 1 : 5;

    char paths[5][4096];
    int64_t records[5], total = 0;
    for (int i = 0; i < nfiles; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/%s", spec->path, names[i]);
        if (batch_records(paths[i], &records[i]) < 0) return -1;
        total += records[i];
    }
    Dataset *ds = dataset_alloc_pixels(spec->test_split ? "cifar-10 test" : "cifar-10 train",
                                       total, 3, 32, 32, 10);
    int64_t first = 0;
    for (int i = 0; i < nfiles; i++) {
        if (batch_read(paths[i], records[i], ds, first) < 0) {
            dataset_close(ds);
            return -1;
        }
        first += records[i];
    }
    *out = ds;
    return 0;
}
