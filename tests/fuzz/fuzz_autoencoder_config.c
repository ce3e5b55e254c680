/*
 * fuzz_autoencoder_config.c: libFuzzer target for the KL autoencoder's
 * configuration parser (model/autoencoder_config.h), which reads every
 * autoencoder file's metadata and `deediff train-autoencoder`'s model.
 *
 * Parses the input as a NUL-terminated string; a rejected config must come
 * with a one-line message that starts with the source name. An accepted one
 * must pass autoencoder_config_check and survive to_json -> parse unchanged.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/errors.h"
#include "model/autoencoder_config.h"

#define NAME "fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    AutoencoderConfig c, back;
    err_clear();
    if (autoencoder_config_parse(&c, text, NAME) < 0) {
        assert(strncmp(err_msg(), NAME ": ", strlen(NAME) + 2) == 0);
        assert(strchr(err_msg(), '\n') == NULL);
        free(text);
        return 0;
    }
    assert(autoencoder_config_check(&c, "accepted") == 0);
    char *json = autoencoder_config_to_json(&c);
    if (autoencoder_config_parse(&back, json, "round trip") < 0) {
        fprintf(stderr, "round trip rejected %s: %s\n", json, err_msg());
        abort();
    }
    assert(autoencoder_config_equal(&c, &back));
    free(json);
    free(text);
    return 0;
}
