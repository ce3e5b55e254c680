/*
 * json_file.c: a JSON file read whole (json_file.h).
 */
#include <stdio.h>

#include "../../kernels/errors.h"
#include "../cli/text_file.h"
#include "json_file.h"

cJSON *json_read_file(const char *path, const char *what)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("%s: cannot read %s", path, what);
        return NULL;
    }
    TextBuf t;
    text_init(&t);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) text_printf(&t, "%.*s", (int)got, chunk);
    fclose(f);
    cJSON *doc = t.data ? cJSON_Parse(t.data) : NULL;
    text_free(&t);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        err_set("%s: not a JSON object", path);
        return NULL;
    }
    return doc;
}
