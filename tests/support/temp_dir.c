/*
 * temp_dir.c: temporary folders for test suites (see temp_dir.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "temp_dir.h"

void temp_dir_make(char *dir, size_t size, const char *template)
{
    cr_assert_lt(snprintf(dir, size, "%s", template), (int)size, "template %s is too long", template);
    cr_assert_not_null(mkdtemp(dir));
}

void temp_dir_remove(const char *dir)
{
    if (!dir[0]) return;
    char cmd[600];
    cr_assert_lt(snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir), (int)sizeof cmd);
    cr_assert_eq(system(cmd), 0);
}

const char *temp_dir_path(const char *dir, const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}
