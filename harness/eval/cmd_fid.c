/*
 * cmd_fid.c: `deediff fid A B` and `deediff stats FEATURES --output S.npz`.
 *
 * An input is one of
 *   - statistics: an .npz with 'mu' and 'sigma' (pytorch-fid's format; ours
 *     adds 'n', the sample count, which pytorch-fid files lack),
 *   - features: a .safetensors holding a 2-D tensor 'pool3' or 'features'
 *     [N, dim] (F32, F16 or BF16), or a .npy [N, dim] float array,
 *   - images, when --features names the network: a PNG folder with
 *     inception:W.safetensors (pool3, harness/eval/cmd_features.c), or with
 *     fmnist[:W] an "fmnist source" (a folder of 28x28 PNGs, fmnist-train,
 *     fmnist-test, ...: harness/eval/image_features.h).
 * With the FD-FMNIST network (fmnist) the distance is printed as
 * FD-FMNIST-<N>: it is a proxy on the project's own Fashion-MNIST
 * classifier, not FID, and is never called FID.
 *
 * The distance is printed with everything needed to read it (REFERENCE.md
 * section 7, items 3 and 5): its N on both sides, the dimension, the feature
 * network, the covariance ranks, whether pytorch-fid's 1e-6 offset was
 * applied (and the value without it), and the trace residual. N below the
 * dimension is refused (the covariance is singular and the number
 * meaningless); N below 50,000 draws a warning, since FID is biased upward
 * at small N and only numbers at equal N compare.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/errors.h"
#include "../../model/fid_stats.h"
#include "../../model/frechet.h"
#include "../../model/npy.h"
#include "../../model/safetensors.h"
#include "../cli/cli.h"
#include "fd_name.h"
#include "image_features.h"
#include "../cli/run_context.h"

#define INCEPTION_DIM 2048

/* the feature network named by --features */
typedef struct {
    const char *name;      /* "inception", "fmnist" or NULL (not stated) */
    const char *weights;   /* inception:W.safetensors or fmnist:W.safetensors (images are read) */
} FeatureNet;

static int parse_feature_net(const char *text, FeatureNet *fn)
{
    fn->name = fn->weights = NULL;
    if (!text) return 0;
    if (!strcmp(text, "fmnist")) { fn->name = "fmnist"; return 0; }
    if (!strncmp(text, "fmnist:", 7) && text[7]) {
        fn->name = "fmnist";
        fn->weights = text + 7;
        return 0;
    }
    if (!strcmp(text, "inception")) { fn->name = "inception"; return 0; }
    if (!strncmp(text, "inception:", 10) && text[10]) {
        fn->name = "inception";
        fn->weights = text + 10;
        return 0;
    }
    return err_set("--features: '%s' is not fmnist, fmnist:W.safetensors, inception or inception:W.safetensors", text);
}

/* reads 2-D features [N, dim] as float from a .safetensors or .npy file */
static int load_features(const char *path, float **out, int64_t *n, int *dim, char *what, size_t what_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[6] = {0};
    size_t got = fread(magic, 1, 6, f);
    fclose(f);
    if (got == 6 && !memcmp(magic, "\x93NUMPY", 6)) {
        NpyArray a;
        if (npy_read_file(path, &a)) return -1;
        char sh[160];
        if (a.ndim != 2 || a.kind != 'f' || a.shape[1] < 1 || a.shape[1] > (1 << 20)) {
            err_set("%s: features: expected a 2-D float array [N, dim], got %c%d %s", path, a.kind, a.itemsize,
                    npy_shape_str(&a, sh, sizeof sh));
            npy_free(&a);
            return -1;
        }
        *n = a.shape[0];
        *dim = (int)a.shape[1];
        *out = xmalloc(sizeof(float) * (size_t)(*n * *dim + 1));
        npy_to_f32(&a, *out);
        npy_free(&a);
        snprintf(what, what_size, "%s: features", path);
        return 0;
    }
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    const char *name = st_find(&st, "pool3") ? "pool3" : st_find(&st, "features") ? "features" : NULL;
    if (!name) {
        st_close(&st);
        return err_set("%s: tensor 'pool3': missing (a features file holds 'pool3' or 'features' [N, dim])", path);
    }
    const StEntry *e = st_find(&st, name);
    if (e->ndim != 2 || e->shape[1] < 1 || e->shape[1] > (1 << 20)) {
        st_close(&st);
        return err_set("%s: tensor '%s': expected 2 dimensions [N, dim], got %d", path, name, e->ndim);
    }
    *n = e->shape[0];
    *dim = (int)e->shape[1];
    *out = xmalloc(sizeof(float) * (size_t)(*n * *dim + 1));
    int rc = st_read_f32(&st, name, *out, 2, e->shape);
    st_close(&st);
    if (rc) {
        free(*out);
        *out = NULL;
        return -1;
    }
    snprintf(what, what_size, "%s: tensor '%s'", path, name);
    return 0;
}

static int is_zip(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t m[4] = {0};
    size_t got = fread(m, 1, 4, f);
    fclose(f);
    return got == 4 && m[0] == 'P' && m[1] == 'K' && (m[2] == 3 || m[2] == 5);
}

/* features of images through the network of --features (a CPU context of all cores) */
static int image_features(const char *path, const FeatureNet *net, float **x, int64_t *n, int *dim)
{
    RunContext run;
    RunOptions ro = run_options_default();
    ro.backend = "cpu"; /* the feature networks run on the CPU only for now */
    if (run_context_open(&run, &ro)) return -1;
    int rc;
    if (!strcmp(net->name, "fmnist")) {
        rc = fmnist_features_of(&run.ctx, net->weights, path, x, n, dim);
    } else {
        *dim = INCEPTION_DIM;
        rc = inception_features_of(&run.ctx, net->weights, path, x, n);
    }
    run_context_close(&run);
    return rc;
}

/* statistics of one input; *from_features says whether N is measured here */
static int load_input(const char *path, const FeatureNet *net, FidStats *s, int *from_features)
{
    float *x = NULL;
    int64_t n = 0;
    int dim = 0;
    char what[600];
    int fmnist = net && net->name && !strcmp(net->name, "fmnist");
    if (fmnist && fmnist_source_is_images(path)) {
        *from_features = 1;
        if (image_features(path, net, &x, &n, &dim)) return -1;
        snprintf(what, sizeof what, "%s: FD-FMNIST features", path);
        int rc = fid_stats_from_features(what, x, n, dim, s);
        free(x);
        return rc;
    }
    struct stat sb;
    if (stat(path, &sb)) return err_set("%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        if (!net || !net->name || (!fmnist && !net->weights))
            return err_set("%s: is a folder; reading images needs the network: --features fmnist[:W.safetensors] "
                           "or --features inception:W.safetensors", path);
        *from_features = 1;
        if (image_features(path, net, &x, &n, &dim)) return -1;
        snprintf(what, sizeof what, "%s: pool3", path);
        int rc = fid_stats_from_features(what, x, n, dim, s);
        free(x);
        return rc;
    }
    *from_features = !is_zip(path);
    if (!*from_features) return fid_stats_load(path, s);
    if (load_features(path, &x, &n, &dim, what, sizeof what)) return -1;
    int rc = fid_stats_from_features(what, x, n, dim, s);
    free(x);
    return rc;
}

static void print_side(const char *label, const char *path, const FidStats *s, int from_features)
{
    if (s->n > 0)
        printf("  %s: %s  N = %lld (%s)\n", label, path, (long long)s->n,
               from_features ? "features" : "statistics file");
    else
        printf("  %s: %s  N unknown (statistics file without 'n', e.g. pytorch-fid's)\n", label, path);
}

/* refuses N below the dimension; warns below the standard 50k */
static int check_n(const char *path, const FidStats *s)
{
    if (s->n > 0 && s->n < s->dim)
        return err_set("%s: N = %lld is below the feature dimension %d: the covariance is singular and the "
                       "distance meaningless; use at least %d samples", path, (long long)s->n, s->dim, s->dim);
    return 0;
}

int cmd_fid(int argc, char **argv)
{
    const char *features = NULL;
    const CliOpt opts[] = {
        {"--features", "NET", "feature network behind the inputs: fmnist[:W.safetensors] (FD-FMNIST), inception or "
                              "inception:W.safetensors (checks the dimension; needed for image folders)",
         &features, NULL, 0},
    };
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse("fid", "A B [--features NET]",
                       "Frechet distance between two sets of features. A and B are each statistics (.npz with mu "
                       "and sigma,\nas pytorch-fid writes them) or features (.safetensors with 'pool3' or "
                       "'features' [N, dim], or .npy [N, dim]),\nor images through the network of --features: a PNG "
                       "folder, or for fmnist also fmnist-train, fmnist-test\n(+blur3, +noiseS: sanity checks). "
                       "With --features fmnist the distance is FD-FMNIST, a proxy, not FID.",
                       argc, argv, opts, 1, pos, 2, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    if (npos != 2) return err_set("fid: expected two inputs A and B (see deediff fid --help)");
    FeatureNet net;
    if (parse_feature_net(features, &net)) return -1;

    FidStats s[2] = {{0}, {0}};
    int from_features[2];
    rc = -1;
    for (int k = 0; k < 2; k++) {
        if (load_input(pos[k], &net, &s[k], &from_features[k]) || check_n(pos[k], &s[k])) goto done;
        if (net.name && !strcmp(net.name, "inception") && s[k].dim != INCEPTION_DIM) {
            err_set("%s: dimension %d, but Inception-v3 pool3 features are %d-d (--features inception)", pos[k],
                    s[k].dim, INCEPTION_DIM);
            goto done;
        }
    }
    if (s[0].dim != s[1].dim) {
        err_set("%s: dimension %d differs from %s: dimension %d", pos[0], s[0].dim, pos[1], s[1].dim);
        goto done;
    }
    FrechetResult r;
    if (frechet_distance(s[0].dim, s[0].mu, s[0].sigma, s[1].mu, s[1].sigma, &r)) {
        char why[512];
        snprintf(why, sizeof why, "%s", err_msg());
        err_set("%s vs %s: %s", pos[0], pos[1], why);
        goto done;
    }

    // the name carries N: FID-10k (inception), FD-FMNIST-10k (the Fashion-MNIST
    // proxy, never called FID) or FD-10k (features of an unstated network)
    const char *kind = fd_kind(net.name);
    char name[96], na[24], nb[24];
    if (s[0].n > 0 && (s[1].n == 0 || s[1].n == s[0].n))
        snprintf(name, sizeof name, "%s-%s", kind, fd_n_label(s[0].n, na, sizeof na));
    else if (s[0].n > 0)
        snprintf(name, sizeof name, "%s-%s (vs N = %s)", kind, fd_n_label(s[0].n, na, sizeof na),
                 fd_n_label(s[1].n, nb, sizeof nb));
    else if (s[1].n > 0)
        snprintf(name, sizeof name, "%s (N unknown vs %s)", kind, fd_n_label(s[1].n, nb, sizeof nb));
    else
        snprintf(name, sizeof name, "%s (N unknown)", kind);
    printf("%s = %.6f\n", name, r.distance);
    print_side("A", pos[0], &s[0], from_features[0]);
    print_side("B", pos[1], &s[1], from_features[1]);
    printf("  dimension %d, feature network %s\n", r.dim,
           !net.name ? "not stated (--features)" : !strcmp(net.name, "fmnist") ? "fmnist (FD-FMNIST: the project's Fashion-MNIST classifier, not Inception)"
                                                 : "inception (pool3)");
    printf("  |mu_A - mu_B|^2 = %.6f, tr S_A = %.6f, tr S_B = %.6f, tr sqrt(S_A S_B) = %.6f\n", r.mean_term,
           r.trace1, r.trace2, r.trace_sqrt);
    printf("  rank S_A = %d/%d, rank S_B = %d/%d, trace residual %.2e, float64 symmetric eigendecompositions\n",
           r.rank1, r.dim, r.rank2, r.dim, r.residual);
    if (r.offset_applied)
        printf("  a covariance is singular: %g I added to both inside the square root, as pytorch-fid does "
               "(without it: %.6f)\n", r.offset, r.distance_plain);
    for (int k = 0; k < 2; k++)
        if (s[k].n > 0 && s[k].n < FID_STANDARD_N)
            fprintf(stderr, "warning: %s: N = %lld < %d: the distance is biased upward at small N; compare "
                            "only numbers with equal N\n", pos[k], (long long)s[k].n, FID_STANDARD_N);
    rc = 0;
done:
    fid_stats_free(&s[0]);
    fid_stats_free(&s[1]);
    return rc;
}

int cmd_stats(int argc, char **argv)
{
    const char *output = NULL, *features = NULL;
    const CliOpt opts[] = {
        {"--output", "S.npz", "where to write mu, sigma (float64) and n", &output, NULL, 1},
        {"--features", "NET", "fmnist[:W.safetensors] or inception:W.safetensors: FEATURES are images (a folder; "
                              "for fmnist also fmnist-train, fmnist-test)", &features, NULL, 0},
    };
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse("stats", "FEATURES --output S.npz [--features NET]",
                       "Mean and covariance (N-1) of features, written as pytorch-fid statistics (.npz with mu, "
                       "sigma, plus n).\nFEATURES is a .safetensors with 'pool3' or 'features' [N, dim], or a "
                       ".npy [N, dim], or images\nthrough the network of --features (a PNG folder; for fmnist also "
                       "fmnist-train, fmnist-test).",
                       argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    if (npos != 1) return err_set("stats: expected one FEATURES file (see deediff stats --help)");
    FeatureNet net;
    if (parse_feature_net(features, &net)) return -1;
    FidStats s;
    int from_features;
    if (load_input(pos[0], &net, &s, &from_features)) return -1;
    if (!from_features) {
        fid_stats_free(&s);
        return err_set("%s: already statistics (an .npz); stats reads features", pos[0]);
    }
    rc = fid_stats_save(output, &s);
    if (!rc)
        printf("%s: mu [%d], sigma [%d, %d] (float64) from N = %lld features of %s\n", output, s.dim, s.dim, s.dim,
               (long long)s.n, pos[0]);
    if (!rc && s.n < s.dim)
        fprintf(stderr, "warning: %s: N = %lld is below the dimension %d: the covariance is singular and "
                        "deediff fid will refuse it\n", pos[0], (long long)s.n, s.dim);
    fid_stats_free(&s);
    return rc;
}
