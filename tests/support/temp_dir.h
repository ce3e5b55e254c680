/*
 * temp_dir.h: a fresh temporary folder for a test suite (test support),
 * made in the suite's .init and removed with everything in it in its .fini,
 * and paths of files inside it.
 */
#ifndef DEEDIFF_TEST_TEMP_DIR_H
#define DEEDIFF_TEST_TEMP_DIR_H

#include <stddef.h>

/* makes a new folder from template (a path ending in XXXXXX, as mkdtemp
   takes it) and writes its path to dir[size]; the test fails when it cannot */
void temp_dir_make(char *dir, size_t size, const char *template);

/* removes dir and all it holds (rm -rf); nothing when dir is empty (a suite
   whose .init skipped before making it); the test fails when rm fails */
void temp_dir_remove(const char *dir);

/* "dir/name", in one of 8 static buffers used in turn: valid until eight
   more calls */
const char *temp_dir_path(const char *dir, const char *name);

#endif
