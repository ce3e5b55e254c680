/*
 * code_version.h: the sha256 of the sources this binary was built from
 * that compute numbers (kernels/, model/, baselines/ and every harness room
 * but report/, runner/, bench/, store/ and the command line's plumbing in
 * cli/: the Makefile's NOT_MEASURING), in path order, computed by the
 * Makefile into $(BUILD)/gen/code_version.c together with the compiler
 * flags. It is part of every run's key (harness/runner/run_key.h): a change
 * to code that measures makes every run new, while a change to how results
 * are stored, run or reported, to documentation or to experiment files
 * does not.
 */
#ifndef DEEDIFF_CODE_VERSION_H
#define DEEDIFF_CODE_VERSION_H

extern const char deediff_code_version[];   /* 64 hex digits */

#endif
