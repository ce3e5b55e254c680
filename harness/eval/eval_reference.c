/*
 * eval_reference.c: reference statistics of deediff eval, computed once per
 * feature network and cached (see eval_reference.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "eval_reference.h"
#include "image_features.h"

int eval_ref_is_dataset(const char *ref) { return !strcmp(ref, "fmnist-train") || !strcmp(ref, "fmnist-test"); }

/* "results/weights/fmnist_features.safetensors" -> "fmnist_features" */
static void file_stem(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static int compute_and_cache(Ctx *ctx, const char *ref, const char *weights, const char *stats_dir,
                             EvalReference *out)
{
    float *feats = NULL;
    int64_t n = 0;
    int dim = 0;
    if (fmnist_features_of(ctx, weights, ref, &feats, &n, &dim)) return -1;
    char what[256];
    snprintf(what, sizeof what, "%s: FD-FMNIST features", ref);
    int rc = fid_stats_from_features(what, feats, n, dim, &out->stats);
    free(feats);
    if (rc) return -1;
    if (mkdir(stats_dir, 0777) && errno != EEXIST)
        return err_set("%s: cannot create the statistics cache folder: %s", stats_dir, strerror(errno));
    if (fid_stats_save(out->path, &out->stats)) return -1;
    out->computed = 1;
    return 0;
}

int eval_reference_load(Ctx *ctx, const char *ref, const char *fmnist_weights,
                        const char *fmnist_sha256, const char *stats_dir, EvalReference *out)
{
    memset(out, 0, sizeof *out);
    if (eval_ref_is_dataset(ref)) {
        if (!fmnist_weights || !fmnist_sha256)
            return err_set("--ref: %s is read through the FD-FMNIST network: use --features fmnist[:W]; for "
                           "another network give statistics (S.npz)", ref);
        char stem[256];
        file_stem(fmnist_weights, stem, sizeof stem);
        snprintf(out->path, sizeof out->path, "%s/%s-%s-%.12s.npz", stats_dir, ref, stem, fmnist_sha256);
        struct stat sb;
        if (stat(out->path, &sb) == 0) {
            if (fid_stats_load(out->path, &out->stats)) return -1;
            out->cached = 1;
        } else if (compute_and_cache(ctx, ref, fmnist_weights, stats_dir, out)) {
            fid_stats_free(&out->stats);
            return -1;
        }
    } else {
        struct stat sb;
        if (stat(ref, &sb)) return err_set("--ref: %s: cannot open: %s", ref, strerror(errno));
        if (S_ISDIR(sb.st_mode))
            return err_set("--ref: %s: is a folder; expected fmnist-train, fmnist-test or statistics S.npz "
                           "(deediff stats writes them)", ref);
        snprintf(out->path, sizeof out->path, "%s", ref);
        if (fid_stats_load(ref, &out->stats)) return -1;
    }
    if (file_sha256(out->path, out->sha256)) {
        fid_stats_free(&out->stats);
        return -1;
    }
    return 0;
}

void eval_reference_free(EvalReference *r) { fid_stats_free(&r->stats); }
