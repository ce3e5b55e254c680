/*
 * dataset_pickle.h: reads the NumPy object arrays that U-ViT's feature
 * extraction saved with np.save(path, (moments, label)) (scripts/
 * extract_imagenet_feature.py): a .npy whose descr is '|O' and whose data is
 * a Python pickle of a 1-d object array holding numeric ndarrays and integer
 * scalars. Only what np.save writes is understood (pickle protocols 2-5,
 * numpy's _reconstruct / dtype / scalar globals under numpy.core or
 * numpy._core); any other global or opcode is refused, so nothing is ever
 * executed. Errors name the file and the field: "7.npy: pickle: ...".
 */
#ifndef DEEDIFF_DATASET_PICKLE_H
#define DEEDIFF_DATASET_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "model/npy.h"

/* one element of the object array: a numeric array (is_array, array owned
   by the caller after the call: npy_free it) or an integer (value) */
typedef struct {
    int is_array;
    NpyArray array;
    int64_t value;
} PickleItem;

/* Parses the .npy image bytes[size] of an object array; fills up to
   max_items items and sets *count. -1 with err_msg() on anything else. */
int pickle_npy_object_items(const char *name, const uint8_t *bytes, size_t size,
                            PickleItem *items, int max_items, int *count);

void pickle_items_free(PickleItem *items, int count);

#endif
