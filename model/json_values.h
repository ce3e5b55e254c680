/*
 * json_values.h: reading and writing the scalar values of configuration
 * JSON exactly (shared by the U-ViT and the autoencoder configurations).
 */
#ifndef DEEDIFF_JSON_VALUES_H
#define DEEDIFF_JSON_VALUES_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* a JSON number that is an integer in int range; -1 otherwise */
int json_int(const cJSON *v, int *out);
/* true or false; -1 otherwise */
int json_bool(const cJSON *v, int *out);
/* the shortest "%.Ng" text that reads back as exactly x (cJSON's own number
   printing rounds off the last bit: it compares with a tolerance) */
void json_format_double(char *buf, size_t n, double x);

#endif
