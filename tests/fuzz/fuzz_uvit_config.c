/*
 * fuzz_uvit_config.c: libFuzzer target for the U-ViT config parser.
 *
 * Parses the input as a NUL-terminated string; a rejected config must come
 * with a one-line message that starts with the source name. An accepted one
 * must survive to_json -> parse unchanged, and print the same JSON again.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "model/uvit_config.h"

#define NAME "fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    UViTConfig c, back;
    err_clear();
    if (uvit_config_parse(&c, text, NAME) < 0) {
        assert(strncmp(err_msg(), NAME ": config: ", strlen(NAME) + 10) == 0);
        assert(strchr(err_msg(), '\n') == NULL);
        free(text);
        return 0;
    }
    char *json = uvit_config_to_json(&c);
    if (uvit_config_parse(&back, json, "round trip") < 0) {
        fprintf(stderr, "round trip rejected %s: %s\n", json, err_msg());
        abort();
    }
    assert(uvit_config_equal(&c, &back));
    char *again = uvit_config_to_json(&back);
    assert(strcmp(json, again) == 0);
    free(again);
    free(json);
    free(text);
    return 0;
}
