/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader.
 *
 * Parses the input as a whole file; a rejected file must come with a message
 * that starts with the file name. An accepted file must keep the format's
 * promises (entries sorted by name, offsets tiling the data section), and
 * every tensor must read with st_read_f32 or st_read_i64 by its own shape.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "model/safetensors.h"

#define NAME "fuzz.safetensors"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *bytes = malloc(size ? size : 1);   /* an exact-size copy: overreads trap */
    if (size) memcpy(bytes, data, size);
    SafeTensors st;
    err_clear();
    if (st_parse(&st, NAME, bytes, size, 1) < 0) {
        assert(strncmp(err_msg(), NAME ": ", strlen(NAME) + 2) == 0);
        assert(strchr(err_msg(), '\n') == NULL);
        st_close(&st);
        return 0;
    }

    size_t covered = 0;
    for (int i = 0; i < st.count; i++) {
        const StEntry *e = &st.entries[i];
        assert(i == 0 || strcmp(st.entries[i - 1].name, e->name) < 0);
        assert(st_find(&st, e->name) == e);
        assert(e->begin <= e->end && e->end <= st.size - st.data_start);
        covered += e->end - e->begin;

        size_t numel = (e->end - e->begin) / dtype_size(e->dtype);
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
        assert((size_t)n == numel);
        if (e->dtype == DT_I64 || e->dtype == DT_I32) {
            int64_t *dst = malloc((numel ? numel : 1) * sizeof *dst);
            assert(st_read_i64(&st, e->name, dst, e->ndim, e->shape) == 0);
            assert(st_read_f32(&st, e->name, (float *)dst, -1, NULL) == -1);
            free(dst);
        } else {
            float *dst = malloc((numel ? numel : 1) * sizeof *dst);
            assert(st_read_f32(&st, e->name, dst, e->ndim, e->shape) == 0);
            assert(st_read_i64(&st, e->name, (int64_t *)dst, -1, NULL) == -1);
            free(dst);
        }
    }
    assert(covered == st.size - st.data_start);
    for (int i = 0; i < st.meta_count; i++)
        assert(st_metadata(&st, st.meta_keys[i]) == st.meta_values[i]);
    st_close(&st);
    return 0;
}
