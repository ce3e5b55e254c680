/*
 * fuzz_pickle.c: libFuzzer target for the restricted unpickler
 * (harness/data/dataset_pickle.c) that reads U-ViT's latent items: .npy object
 * arrays holding a pickled (moments, label) tuple.
 *
 * A rejected input must come with one line naming the file. An accepted one
 * must hand out arrays whose byte count matches shape and dtype, and that
 * convert to float without reading past their data.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "harness/data/dataset_pickle.h"

#define NAME "fuzz.npy"
#define MAX_ITEMS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *bytes = malloc(size ? size : 1);   /* an exact-size copy: overreads trap */
    if (size) memcpy(bytes, data, size);
    PickleItem items[MAX_ITEMS];
    int count = -1;
    err_clear();
    if (pickle_npy_object_items(NAME, bytes, size, items, MAX_ITEMS, &count) < 0) {
        fuzz_check_error(NAME ": ");
        assert(count == 0);
        free(bytes);
        return 0;
    }
    assert(count >= 0 && count <= MAX_ITEMS);
    for (int i = 0; i < count; i++) {
        if (!items[i].is_array) continue;
        const NpyArray *a = &items[i].array;
        int64_t numel = npy_numel(a);
        assert((size_t)numel * (size_t)a->itemsize == a->nbytes);
        float *dst = malloc((size_t)(numel ? numel : 1) * sizeof *dst);
        npy_to_f32(a, dst);
        free(dst);
    }
    pickle_items_free(items, count);
    free(bytes);
    return 0;
}
