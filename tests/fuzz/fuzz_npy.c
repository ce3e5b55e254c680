/*
 * fuzz_npy.c: libFuzzer target for the .npy and .npz readers (model/npy.c).
 *
 * An input starting with "PK" is an .npz (zip, members stored or deflated):
 * it is written to a file, opened, and every member read. Anything else is a
 * .npy, parsed from memory and read from a file: both must agree. A rejection
 * must be one line naming the file; an accepted array must hold exactly
 * numel * itemsize bytes, convert to float, and re-encode to the same image.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "model/npy.h"

#define NAME "fuzz.npy"

/* the promises an accepted array keeps */
static void check_array(const NpyArray *a)
{
    int64_t numel = npy_numel(a);
    assert((size_t)numel * (size_t)a->itemsize == a->nbytes);
    float *dst = malloc((size_t)(numel ? numel : 1) * sizeof *dst);
    npy_to_f32(a, dst);
    free(dst);
    size_t size;
    uint8_t *image = npy_encode(a, &size);
    NpyArray back;
    assert(npy_parse("re-encoded", image, size, &back) == 0);
    assert(back.kind == a->kind && back.itemsize == a->itemsize && back.ndim == a->ndim);
    assert(memcmp(back.shape, a->shape, sizeof a->shape) == 0);
    assert(back.nbytes == a->nbytes && memcmp(back.data, a->data, a->nbytes) == 0);
    npy_free(&back);
    free(image);
}

static void fuzz_npy(const uint8_t *data, size_t size)
{
    uint8_t *bytes = malloc(size ? size : 1);   /* an exact-size copy: overreads trap */
    if (size) memcpy(bytes, data, size);
    NpyArray mem, file;
    char path[512];
    fuzz_write_file(NAME, data, size, path, sizeof path);
    err_clear();
    int rc_mem = npy_parse(NAME, bytes, size, &mem);
    if (rc_mem < 0) fuzz_check_error(NAME ": ");
    int rc_file = npy_read_file(path, &file);
    if (rc_file < 0) fuzz_check_error(path);
    assert(rc_mem == rc_file);
    if (rc_mem == 0) {
        check_array(&mem);
        assert(mem.nbytes == file.nbytes && memcmp(mem.data, file.data, mem.nbytes) == 0);
    }
    npy_free(&mem);
    npy_free(&file);
    free(bytes);
}

static void fuzz_npz(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write_file("fuzz.npz", data, size, path, sizeof path);
    Npz *z;
    err_clear();
    if (npz_open(path, &z) < 0) {
        fuzz_check_error(path);
        return;
    }
    for (int i = 0; i < npz_count(z); i++) {
        NpyArray a;
        assert(npz_has(z, npz_name(z, i)));
        if (npz_read(z, npz_name(z, i), &a) < 0) {
            fuzz_check_error(path);
            continue;
        }
        check_array(&a);
        npy_free(&a);
    }
    npz_close(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') fuzz_npz(data, size);
    else fuzz_npy(data, size);
    return 0;
}
