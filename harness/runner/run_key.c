/*
 * run_key.c: a run's setting key and run key (run_key.h).
 */
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../cli/text_file.h"
#include "../store/code_version.h"
#include "run_key.h"

static int is_file(const char *path)
{
    struct stat sb;
    return path[0] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* a file's sha256, computed once per process for each (path, size, mtime):
   every seed and threshold of a row names the same weights, and a report
   keys every run of its plan (paper-scale checkpoints are gigabytes). A file
   changed in the last seconds is hashed every time: a rewrite of the same
   size within one timestamp tick would look unchanged. */
#define HASH_CACHE 64
static struct {
    char path[512];
    off_t size;
    struct timespec mtime;
    char hex[SHA256_HEX_LEN + 1];
} hash_cache[HASH_CACHE];
static int hash_cache_n;

static int cached_sha256(const char *path, char hex[SHA256_HEX_LEN + 1])
{
    struct stat sb;
    if (stat(path, &sb) || time(NULL) - sb.st_mtim.tv_sec < 3) return file_sha256(path, hex);
    for (int i = 0; i < hash_cache_n; i++)
        if (!strcmp(hash_cache[i].path, path) && hash_cache[i].size == sb.st_size &&
            hash_cache[i].mtime.tv_sec == sb.st_mtim.tv_sec && hash_cache[i].mtime.tv_nsec == sb.st_mtim.tv_nsec) {
            memcpy(hex, hash_cache[i].hex, SHA256_HEX_LEN + 1);
            return 0;
        }
    if (file_sha256(path, hex)) return -1;
    if (strlen(path) < sizeof hash_cache[0].path) {
        int i = hash_cache_n < HASH_CACHE ? hash_cache_n++ : 0;
        snprintf(hash_cache[i].path, sizeof hash_cache[i].path, "%s", path);
        hash_cache[i].size = sb.st_size;
        hash_cache[i].mtime = sb.st_mtim;
        memcpy(hash_cache[i].hex, hex, SHA256_HEX_LEN + 1);
    }
    return 0;
}

int run_key_compute(RunKey *k, char *const *argv, int argc)
{
    TextBuf t;
    text_init(&t);
    text_printf(&t, "deediff run key 1\n");
    for (int i = 0; i < argc; i++) text_printf(&t, "%s\n", argv[i]);
    for (int i = 0; i < argc; i++) {
        const char *colon = strchr(argv[i], ':');
        const char *path = is_file(argv[i]) ? argv[i] : colon && is_file(colon + 1) ? colon + 1 : NULL;
        if (!path) continue;
        char hex[SHA256_HEX_LEN + 1];
        if (cached_sha256(path, hex)) {
            text_free(&t);
            return -1;
        }
        text_printf(&t, "file %s\n", hex);
    }
    sha256_hex(t.data, t.len, k->setting);
    text_free(&t);
    char both[2 * SHA256_HEX_LEN + 8];
    snprintf(both, sizeof both, "%s %s", k->setting, deediff_code_version);
    sha256_hex(both, strlen(both), k->run);
    return 0;
}
