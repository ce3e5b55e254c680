/*
 * philox_ulps.c: the table of philox_ulps.h: how far this process's C
 * library (logf, cosf, sinf) is from the correctly rounded float at every
 * uniform and angle Box-Muller can see, and how far each correctly rounded
 * value's double lies from a float rounding boundary.
 */
#include <float.h>

#include "philox_ulps.h"

/* the offset code of the library's float lib against the double d:
   0 when lib == (float)d, 1 one ulp above, 2 one ulp below, 3 farther */
static unsigned offset_code(float lib, double d)
{
    float f = (float)d;
    if (lib == f) return 0;
    if (lib == nextafterf(f, INFINITY)) return 1;
    if (lib == nextafterf(f, -INFINITY)) return 2;
    return 3;
}

/* the distance of d from the nearest float rounding boundary (a midpoint
   between two adjacent floats), in units of d's double ulp */
static double boundary_margin(double d)
{
    float f = (float)d;
    double up = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
    double down = ((double)f + (double)nextafterf(f, -INFINITY)) / 2;
    double a = fabs(d - up), b = fabs(d - down), ulp = nextafter(fabs(d), INFINITY) - fabs(d);
    return (a < b ? a : b) / ulp;
}

PhiloxUlpsReport philox_ulps_build(uint8_t *code)
{
    int64_t beyond = 0;
    double margin = DBL_MAX;
    #pragma omp parallel for schedule(static) reduction(+ : beyond) reduction(min : margin)
    for (int64_t k = 0; k < (int64_t)PHILOX_ULPS_COUNT; k++) {
        float u = philox_u01((uint32_t)k << 9);
        float theta = 6.28318530717958647692f * u;
        double dl = log((double)u), dc = cos((double)theta), ds = sin((double)theta);
        unsigned cl = offset_code(logf(u), dl), cc = offset_code(cosf(theta), dc);
        unsigned cs = offset_code(sinf(theta), ds);
        beyond += (cl == 3) + (cc == 3) + (cs == 3);
        code[k] = (uint8_t)((cl & 3) | (cc & 3) << 2 | (cs & 3) << 4);
        double m = boundary_margin(dl);
        double mc = boundary_margin(dc), ms = boundary_margin(ds);
        m = mc < m ? mc : m;
        m = ms < m ? ms : m;
        margin = m < margin ? m : margin;
    }
    PhiloxUlpsReport r = {beyond, margin};
    return r;
}
