/*
 * run_key.c: a run's setting key and run key (run_key.h).
 */
#include <string.h>
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
        if (file_sha256(path, hex)) {
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
