/*
 * cuda_c_headers.h: the C headers of kernels/ as seen from CUDA C++.
 *
 * The headers of kernels/ are C11 headers without extern "C" guards. The .cu files
 * include them through this file so their functions keep C linkage. The C
 * library headers they pull in are included first, outside the extern "C"
 * block, because libstdc++'s wrappers of those headers hold C++ templates.
 */
#ifndef DEEDIFF_CUDA_C_HEADERS_H
#define DEEDIFF_CUDA_C_HEADERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "../errors.h"
#include "../op_table.h"
}

#endif
