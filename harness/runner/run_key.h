/*
 * run_key.h: the keys that make a run skippable (schema.sql, version 3).
 *
 *   setting_key = sha256("deediff run key 1\n" + every argument + "\n" +
 *                        for every argument naming a file: "file " + its sha256 + "\n")
 *   run_key     = sha256(setting_key + " " + code version)
 *
 * An argument names a file when it is an existing regular file, or when
 * the part after its first ':' is one ("inception:W.safetensors"). So the
 * key changes when the command line, the bytes of any weights, statistics
 * or configuration it reads, or the code change, and not otherwise; a named
 * dataset ("--ref fmnist-train") is identified by its name (Debian's
 * package pins its bytes).
 */
#ifndef DEEDIFF_RUN_KEY_H
#define DEEDIFF_RUN_KEY_H

#include "../store/file_hash.h"

typedef struct {
    char setting[SHA256_HEX_LEN + 1];
    char run[SHA256_HEX_LEN + 1];
} RunKey;

/* -1 + err_msg() when a named file cannot be read */
int run_key_compute(RunKey *k, char *const *argv, int argc);

#endif
