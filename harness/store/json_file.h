/*
 * json_file.h: a JSON file read whole (experiment files, the regression
 * baseline, the claims), with one-line errors naming the file.
 */
#ifndef DEEDIFF_JSON_FILE_H
#define DEEDIFF_JSON_FILE_H

#include <cjson/cJSON.h>

/* the parsed document, the caller's to cJSON_Delete; NULL + err_msg() when
   the file cannot be read ("PATH: cannot read WHAT") or is not a JSON object
   ("PATH: not a JSON object") */
cJSON *json_read_file(const char *path, const char *what);

#endif
