/*
 * json_values.c: exact scalar values of configuration JSON (json_values.h).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "json_values.h"

int json_int(const cJSON *v, int *out)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= INT_MIN && d <= INT_MAX) || d != floor(d)) return -1;
    *out = (int)d;
    return 0;
}

int json_bool(const cJSON *v, int *out)
{
    if (!cJSON_IsBool(v)) return -1;
    *out = cJSON_IsTrue(v);
    return 0;
}

void json_format_double(char *buf, size_t n, double x)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) return;
    }
}
