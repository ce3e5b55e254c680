/*
 * fuzz_images.c: libFuzzer target for the PNG / JPEG folder reader
 * (harness/data/dataset_images.c), plain and with U-ViT's CelebA crop + resize.
 *
 * The input is written into a temporary folder as image.png when it starts
 * with the PNG signature, else as image.jpg, and the folder is opened twice:
 * plain (the side from the image itself) and CelebA (178 x 218 -> 64 x 64),
 * in RGB or gray as the last input byte says. A rejection must be one line
 * naming the file.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "harness/data/dataset.h"

static void open_folder(const char *path, ImagesTransform transform, int channels)
{
    DatasetSpec spec = {.format = DATA_IMAGES, .path = fuzz_tmp_dir(), .transform = transform,
                        .channels = channels};
    Dataset *ds = NULL;
    err_clear();
    if (dataset_open(&spec, &ds) < 0) {
        fuzz_check_error(path);
        return;
    }
    assert(ds->n == 1 && ds->c == channels && ds->h == ds->w);
    assert(transform != IMAGES_CELEBA || ds->h == 64);
    dataset_close(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int png = size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0;
    const char *name = png ? "image.png" : "image.jpg";
    fuzz_remove_file(png ? "image.jpg" : "image.png");
    char path[512];
    fuzz_write_file(name, data, size, path, sizeof path);
    int channels = size && (data[size - 1] & 1) ? 1 : 3;
    open_folder(path, IMAGES_PLAIN, channels);
    open_folder(path, IMAGES_CELEBA, channels);
    return 0;
}
