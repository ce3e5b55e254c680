/*
 * cmd_autoencoder.c: `deediff encode` and `deediff decode`: the KL
 * autoencoder (model/autoencoder.h) between images and U-ViT's latent space.
 *
 *   encode: IN's `x` [B,in_channels,H,W] in [-1,1] -> OUT's `moments`
 *           [B,2 embed_dim,H/f,W/f] (mean, then log-variance), as U-ViT's
 *           encode_moments (its extracted feature files hold these)
 *   decode: IN's `z` [B,embed_dim,h,w] (latents times scale_factor, what
 *           U-ViT's latent models produce) -> OUT's `images` [B,out_ch,h f,w f],
 *           as U-ViT's decode (z / scale_factor first)
 * encode --dataset NAME (fmnist, fmnist-test, cifar10, cifar10-test) reads
 * a whole labelled dataset instead and writes the latent file training
 * reads (harness/data/dataset_latent_file.c): `moments`, `labels` I64 [N],
 * and metadata scale_factor (the autoencoder's), num_classes, dataset,
 * autoencoder and its sha256.
 * H and W are any multiples of the factor f = 2^(levels-1). Inputs may be
 * F32, F16 or BF16; outputs are F32, written atomically, with the weights'
 * and the input's paths in the metadata. Bad input (a file, a tensor, a
 * value) is one line naming the file and the field, exit status 2, and no
 * output file. The time of the network calls is printed as images/s.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../model/autoencoder.h"
#include "../cli/cli.h"
#include "../cli/progress.h"
#include "../cli/run_context.h"
#include "../cli/text_file.h"
#include "../data/dataset.h"
#include "../store/file_hash.h"

/* images per network call unless --batch: bounds the activation arena
   (Stable Diffusion's decoder at 256x256 needs ~0.2 GB per image) */
#define AE_DEFAULT_BATCH 4

typedef struct {
    AutoencoderPart part;
    const char *tensor;      /* x or z */
    const char *meaning;     /* for error messages */
    int64_t channels, factor;
    float lo, hi;            /* the accepted range of values */
} InputSpec;

/* reads tensor spec->tensor of path: [B, channels, side...], sides multiples
   of spec->factor; -1 + err_msg() naming the file and the tensor */
static int read_input(const char *path, const InputSpec *spec, int64_t shape[4], float **data)
{
    SafeTensors st;
    *data = NULL;
    if (st_open(&st, path)) return -1;
    int rc = 0;
    const StEntry *e = st_find(&st, spec->tensor);
    if (!e) rc = err_set("%s: missing tensor '%s' (%s)", path, spec->tensor, spec->meaning);
    else if (e->ndim != 4 || e->shape[0] < 1)
        rc = err_set("%s: tensor '%s': %d dimensions, expected [B,C,H,W] with B >= 1 (%s)", path, spec->tensor,
                     e->ndim, spec->meaning);
    else if (e->shape[1] != spec->channels)
        rc = err_set("%s: tensor '%s': %lld channels, the autoencoder takes %lld (%s)", path, spec->tensor,
                     (long long)e->shape[1], (long long)spec->channels, spec->meaning);
    else if (e->shape[2] < spec->factor || e->shape[3] < spec->factor || e->shape[2] % spec->factor ||
             e->shape[3] % spec->factor)
        rc = err_set("%s: tensor '%s': side %lldx%lld is not a multiple of the autoencoder's factor %lld", path,
                     spec->tensor, (long long)e->shape[2], (long long)e->shape[3], (long long)spec->factor);
    if (rc == 0) {
        memcpy(shape, e->shape, 4 * sizeof *shape);
        int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
        *data = xmalloc((size_t)n * sizeof(float));
        rc = st_read_f32(&st, spec->tensor, *data, 4, shape);
        for (int64_t i = 0; rc == 0 && i < n; i++) {
            float v = (*data)[i];
            if (!isfinite(v) || v < spec->lo || v > spec->hi)
                rc = err_set("%s: tensor '%s': element %lld is %g, expected a finite value%s", path, spec->tensor,
                             (long long)i, v, spec->part == AE_ENCODER ? " in [-1,1] (images as 2 u - 1)" : "");
        }
    }
    st_close(&st);
    return rc;
}

/* --dataset NAME: every item's pixels in [-1,1] as x [N,C,H,W] and its labels
   (the dataset's own checks name its files); the shape must suit the
   autoencoder as read_input's does */
static int read_dataset(const char *name, int64_t max_items, const InputSpec *spec, int64_t shape[4], float **data,
                        int64_t **labels, int *num_classes)
{
    DatasetSpec ds_spec = {0};
    if (!strcmp(name, "fmnist") || !strcmp(name, "fmnist-test")) ds_spec.format = DATA_FMNIST;
    else if (!strcmp(name, "cifar10") || !strcmp(name, "cifar10-test")) ds_spec.format = DATA_CIFAR10;
    else return err_set("--dataset: '%s' is not fmnist, fmnist-test, cifar10 or cifar10-test", name);
    ds_spec.test_split = strstr(name, "-test") != NULL;
    Dataset *ds;
    if (dataset_open(&ds_spec, &ds)) return -1;
    int rc = 0;
    if (ds->c != spec->channels)
        rc = err_set("--dataset: %s has %d channels, the autoencoder takes %lld", ds->name, ds->c,
                     (long long)spec->channels);
    else if (ds->h % spec->factor || ds->w % spec->factor)
        rc = err_set("--dataset: %s images are %dx%d, not multiples of the autoencoder's factor %lld", ds->name,
                     ds->h, ds->w, (long long)spec->factor);
    if (rc == 0) {
        int64_t n = max_items > 0 && max_items < ds->n ? max_items : ds->n;
        shape[0] = n, shape[1] = ds->c, shape[2] = ds->h, shape[3] = ds->w;
        size_t per = (size_t)ds->c * ds->h * ds->w;
        *data = xmalloc((size_t)n * per * sizeof(float));
        *labels = xmalloc((size_t)n * sizeof(int64_t));
        *num_classes = ds->num_classes;
        for (int64_t i = 0; rc == 0 && i < n; i++) rc = dataset_get(ds, i, *data + i * per, *labels + i);
    }
    dataset_close(ds);
    return rc;
}

/* runs the part over all B inputs, `batch` at a time; out is host memory of
   out_shape; returns the seconds spent in the network calls */
static double run_part(Ctx *ctx, const Autoencoder *m, AutoencoderPart part, const int64_t in_shape[4],
                       const float *in, const int64_t out_shape[4], float *out, int batch)
{
    int64_t B = in_shape[0], f = autoencoder_factor(&m->cfg);
    int chunk = B < batch ? (int)B : batch;
    int64_t side_h = part == AE_ENCODER ? in_shape[2] : in_shape[2] * f;
    int64_t side_w = part == AE_ENCODER ? in_shape[3] : in_shape[3] * f;
    size_t per_in = (size_t)(in_shape[1] * in_shape[2] * in_shape[3]);
    size_t per_out = (size_t)(out_shape[1] * out_shape[2] * out_shape[3]);
    AutoencoderActs *acts = autoencoder_acts_create(ctx, m, part, chunk, side_h, side_w, 0);
    float *din = ctx_alloc(ctx, (size_t)chunk * per_in * sizeof(float));
    float *dout = ctx_alloc(ctx, (size_t)chunk * per_out * sizeof(float));
    double t0 = progress_now();
    for (int64_t at = 0; at < B; at += chunk) {
        int64_t n = B - at < chunk ? B - at : chunk;
        ctx_upload(ctx, din, in + at * per_in, (size_t)n * per_in * sizeof(float));
        Tensor ti = tensor4(din, DT_F32, n, in_shape[1], in_shape[2], in_shape[3]);
        Tensor to = tensor4(dout, DT_F32, n, out_shape[1], out_shape[2], out_shape[3]);
        if (part == AE_ENCODER) autoencoder_encode_moments(ctx, m, acts, ti, to);
        else autoencoder_decode(ctx, m, acts, ti, to);
        ctx_download(ctx, out + at * per_out, dout, (size_t)n * per_out * sizeof(float));
    }
    ctx_sync(ctx);
    double seconds = progress_now() - t0;
    ctx_free(ctx, din);
    ctx_free(ctx, dout);
    autoencoder_acts_destroy(ctx, acts);
    return seconds;
}

typedef struct {
    const char *weights, *input, *dataset, *output, *batch, *n;
    RunOptions ro;
} AeArgs;

/* what a latent file (dataset_latent_file.c) holds beside the moments */
static int latent_file_meta(StWriter *w, const char *dataset, const char *weights, const AutoencoderConfig *c,
                            int64_t n, const int64_t *labels, int num_classes)
{
    char sha[SHA256_HEX_LEN + 1], num[64];
    if (file_sha256(weights, sha)) return -1;
    st_writer_add(w, "labels", DT_I64, 1, (int64_t[]){n}, labels);
    snprintf(num, sizeof num, "%.9g", c->scale_factor);
    st_writer_meta(w, "scale_factor", num);
    snprintf(num, sizeof num, "%d", num_classes);
    st_writer_meta(w, "num_classes", num);
    st_writer_meta(w, "dataset", dataset);
    st_writer_meta(w, "autoencoder_sha256", sha);
    return 0;
}

/* the body of both commands once the options are parsed */
static int run_command(AutoencoderPart part, const AeArgs *a)
{
    const char *cmd = part == AE_ENCODER ? "encode" : "decode";
    long batch = AE_DEFAULT_BATCH;
    if (a->batch && cli_int("--batch", a->batch, 1, 4096, &batch)) return -1;
    RunOptions ro = a->ro;
    if (run_options_cpu_only(&ro, "the autoencoder has not run on a GPU yet (its CUDA kernels await make gpu-check): CPU only")) return -1;
    RunContext run;
    if (run_context_open(&run, &ro)) return -1;
    Autoencoder m;
    if (autoencoder_load(&m, &run.ctx, a->weights)) {
        run_context_close(&run);
        return -1;
    }
    const AutoencoderConfig *c = &m.cfg;
    int64_t f = autoencoder_factor(c);
    InputSpec spec = {part, "x", "images F32 [B,in_channels,H,W] in [-1,1]", c->in_channels, f, -1.0f, 1.0f};
    if (part == AE_DECODER)
        spec = (InputSpec){part, "z", "latents F32 [B,embed_dim,h,w], times scale_factor", c->embed_dim, 1,
                           -INFINITY, INFINITY};
    int64_t in_shape[4], out_shape[4], *labels = NULL;
    float *in = NULL, *out = NULL;
    int num_classes = 0, rc;
    if (part == AE_ENCODER && !a->input == !a->dataset)
        rc = err_set("encode: give one of --images IN.safetensors and --dataset NAME");
    else if (a->dataset) {
        long max_items = 0;
        rc = a->n ? cli_int("--n", a->n, 1, 1 << 30, &max_items) : 0;
        if (rc == 0) rc = read_dataset(a->dataset, max_items, &spec, in_shape, &in, &labels, &num_classes);
    } else
        rc = read_input(a->input, &spec, in_shape, &in);
    if (rc == 0) {
        out_shape[0] = in_shape[0];
        out_shape[1] = part == AE_ENCODER ? 2 * c->embed_dim : c->out_ch;
        out_shape[2] = part == AE_ENCODER ? in_shape[2] / f : in_shape[2] * f;
        out_shape[3] = part == AE_ENCODER ? in_shape[3] / f : in_shape[3] * f;
        out = xmalloc((size_t)(out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3]) * sizeof(float));
        double seconds = run_part(&run.ctx, &m, part, in_shape, in, out_shape, out, (int)batch);
        const char *name = part == AE_ENCODER ? "moments" : "images";
        StWriter *w = st_writer_new();
        st_writer_add(w, name, DT_F32, 4, out_shape, out);
        st_writer_meta(w, "autoencoder", a->weights);
        if (a->dataset) rc = latent_file_meta(w, a->dataset, a->weights, c, in_shape[0], labels, num_classes);
        else st_writer_meta(w, part == AE_ENCODER ? "images" : "latents", a->input);
        if (rc == 0) rc = make_parent_dirs(a->output);
        if (rc == 0) rc = st_writer_save(w, a->output);
        st_writer_free(w);
        if (rc == 0)
            printf("%s: %s [%lld,%lld,%lld,%lld] (%s of %lld images by %s, batch %ld): %.3g images/s\n", a->output,
                   name, (long long)out_shape[0], (long long)out_shape[1], (long long)out_shape[2],
                   (long long)out_shape[3], cmd, (long long)in_shape[0], a->weights, batch,
                   (double)in_shape[0] / seconds);
    }
    free(in);
    free(out);
    free(labels);
    autoencoder_destroy(&m, &run.ctx);
    run_context_close(&run);
    return rc;
}

static int parse_and_run(AutoencoderPart part, int argc, char **argv)
{
    AeArgs a = {.ro = run_options_default()};
    int enc = part == AE_ENCODER;
    CliOpt opts[] = {
        {"--autoencoder", "W.safetensors",
         "KL autoencoder weights, config in the metadata (tests/reference/convert_autoencoder_pth.py)", &a.weights,
         NULL, 1},
        {enc ? "--images" : "--latents", "IN.safetensors",
         enc ? "x F32 [B,in_channels,H,W] in [-1,1], H and W multiples of the factor"
             : "z F32 [B,embed_dim,h,w]: latents times scale_factor",
         &a.input, NULL, enc ? 0 : 1},
        {"--dataset", "NAME", "encode: a whole labelled dataset instead (fmnist, fmnist-test, cifar10, cifar10-test): "
         "writes the latent file training reads", &a.dataset, NULL, 0},
        {"--n", "N", "with --dataset: its first N items only (default all)", &a.n, NULL, 0},
        {"--output", "OUT.safetensors",
         enc ? "receives moments F32 [B,2 embed_dim,H/f,W/f]" : "receives images F32 [B,out_ch,h f,w f]", &a.output,
         NULL, 1},
        {"--batch", "B", "images per network call (default 4)", &a.batch, NULL, 0},
        RUN_OPTIONS(a.ro),
    };
    int rc = cli_parse(enc ? "encode" : "decode",
                       enc ? "--autoencoder W --images IN --output OUT [options]"
                           : "--autoencoder W --latents IN --output OUT [options]",
                       enc ? "Encodes images into the KL autoencoder's moments (mean and log-variance of the "
                             "latent), as U-ViT's encode_moments."
                           : "Decodes latents (already times scale_factor) into images in about [-1,1], as "
                             "U-ViT's decode.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    return run_command(part, &a);
}

int cmd_encode(int argc, char **argv) { return parse_and_run(AE_ENCODER, argc, argv); }
int cmd_decode(int argc, char **argv) { return parse_and_run(AE_DECODER, argc, argv); }
