/*
 * code_version.h: the sha256 of the sources this binary was built from
 * (every .c, .h, .cu and the schema, in path order), computed by the
 * Makefile into $(BUILD)/gen/code_version.c. It is part of every run's key
 * (harness/runner/run_key.h): a change to any source makes every run new,
 * while a change to documentation or experiment files does not.
 */
#ifndef DEEDIFF_CODE_VERSION_H
#define DEEDIFF_CODE_VERSION_H

extern const char deediff_code_version[];   /* 64 hex digits */

#endif
