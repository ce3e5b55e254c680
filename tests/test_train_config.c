/*
 * test_train_config.c: train_config_load on hostile configuration files
 * (regressions found by tests/fuzz/fuzz_train_config.c): each ends in one
 * line naming the file, never in a crash.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness/train/train_config.h"
#include "kernels/errors.h"
#include "support/temp_dir.h"

static char dir[256];

static void setup(void) { temp_dir_make(dir, sizeof dir, "/tmp/deediff-train-config-XXXXXX"); }

static void teardown(void) { temp_dir_remove(dir); }

TestSuite(train_config, .init = setup, .fini = teardown);

/* writes text as config.json and loads it; returns its path */
static const char *load_text(const char *text, int *rc)
{
    const char *path = temp_dir_path(dir, "config.json");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    TrainConfig tc;
    err_clear();
    *rc = train_config_load(&tc, path, 0, NULL);
    train_config_free(&tc);
    return path;
}

/* the fuzzer's first find: the JSON error position was read from the text
   after it was freed (a use-after-free on every invalid file) */
Test(train_config, invalid_json_names_the_file_and_the_byte)
{
    static const struct { const char *text, *near; } cases[] = {
        {"", "(near byte 0)"},
        {"{\"model\": {}", "(near byte 12)"},
        {"{\"model\": x}", "(near byte 10)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        const char *path = load_text(cases[i].text, &rc);
        cr_expect_eq(rc, -1, "'%s' was accepted", cases[i].text);
        cr_expect(strncmp(err_msg(), path, strlen(path)) == 0, "%s", err_msg());
        cr_expect(strstr(err_msg(), "not valid JSON") != NULL, "%s", err_msg());
        cr_expect(strstr(err_msg(), cases[i].near) != NULL, "'%s': %s", cases[i].text, err_msg());
        cr_expect(strchr(err_msg(), '\n') == NULL);
    }
}
