/*
 * fuzz_train_config.c: libFuzzer target for the training configuration
 * (harness/train/train_config.c: train_config_load), its "section.key=value"
 * overrides and the "method" section (validated by model/method.c).
 *
 * The input up to its first NUL byte is the JSON file (written to a
 * temporary file); what follows is up to 8 overrides, one per line. A
 * rejection must be one line naming the file or the override. An accepted
 * configuration must load again from its own JSON (tc.json) to the same JSON.
 * Built by `make fuzz` with -fsanitize=fuzzer,address,undefined.
 */
#include "fuzz_util.h"
#include "harness/train/train_config.h"

#define MAX_OVERRIDES 8

/* splits text at '\n' into at most MAX_OVERRIDES lines; returns the count */
static int split_lines(char *text, const char *ov[MAX_OVERRIDES])
{
    int n = 0;
    while (*text && n < MAX_OVERRIDES) {
        ov[n++] = text;
        char *nl = strchr(text, '\n');
        if (!nl) break;
        *nl = 0;
        text = nl + 1;
    }
    return n;
}

/* an accepted configuration, loaded again from its own JSON */
static void check_round_trip(const TrainConfig *tc)
{
    char path[512];
    fuzz_write_file("again.json", (const uint8_t *)tc->json, strlen(tc->json), path, sizeof path);
    TrainConfig again;
    if (train_config_load(&again, path, 0, NULL) < 0) {
        fprintf(stderr, "round trip rejected %s: %s\n", tc->json, err_msg());
        abort();
    }
    assert(strcmp(again.json, tc->json) == 0);
    assert(strcmp(again.method_options, tc->method_options) == 0);
    train_config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 2);
    memcpy(text, data, size);
    text[size] = text[size + 1] = 0;
    size_t json_len = strlen(text);
    const char *ov[MAX_OVERRIDES];
    int n = json_len < size ? split_lines(text + json_len + 1, ov) : 0;
    char path[512];
    fuzz_write_file("config.json", (const uint8_t *)text, json_len, path, sizeof path);
    TrainConfig tc;
    err_clear();
    if (train_config_load(&tc, path, n, ov) < 0) {
        if (strncmp(err_msg(), "override '", 10) != 0) fuzz_check_error(path);
        else fuzz_check_error("override '");
    } else {
        check_round_trip(&tc);
    }
    train_config_free(&tc);
    free(text);
    return 0;
}
