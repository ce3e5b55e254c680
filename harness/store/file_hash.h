/*
 * file_hash.h: the SHA-256 of a file, as the hex text `sha256sum` prints.
 *
 * Every evaluation names the exact bytes it read (the model, the feature
 * network, the reference statistics) by this hash (REFERENCE.md section 7,
 * items 1 and 2). FIPS 180-4, computed here so no shell or library is needed.
 */
#ifndef DEEDIFF_FILE_HASH_H
#define DEEDIFF_FILE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

/* hex[65] <- the lowercase hex SHA-256 of n bytes */
void sha256_hex(const void *data, size_t n, char hex[SHA256_HEX_LEN + 1]);
/* hex[65] <- the SHA-256 of the file's bytes; -1 + err_msg() naming the path */
int file_sha256(const char *path, char hex[SHA256_HEX_LEN + 1]);

#endif
