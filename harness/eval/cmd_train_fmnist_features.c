/*
 * cmd_train_fmnist_features.c: `deediff train-fmnist-features`: trains the
 * FD-FMNIST feature network (model/fmnist_net.h) on the Fashion-MNIST
 * training set, measures its test accuracy and writes its weights.
 *
 * Training: softmax cross-entropy, AdamW (model/optim.h: betas 0.9, 0.999,
 * weight decay 0.01 on every parameter) with a 100-step linear warmup and a
 * cosine decay of the learning rate to 0 at the last step. Batches come from
 * the dataset cursor (Philox shuffle of (seed, RNG_DATA_SHUFFLE, epoch), no
 * flips), the initial weights from (seed, RNG_INIT_WEIGHTS), so a run is a
 * function of its flags (and of the thread count, through the summation
 * order of the convolution's weight gradients).
 *
 * The weights file (safetensors, written atomically) carries metadata:
 * "architecture" (JSON), "command" (the exact command line), "test_accuracy",
 * "train_seconds", "epochs", "seed", "batch", "lr", and "dataset" (the four
 * IDX file names with their sha256).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "../../kernels/philox.h"
#include "../../model/fmnist_net.h"
#include "../../model/optim.h"
#include "../cli/cli.h"
#include "../data/dataset.h"
#include "../cli/progress.h"
#include "../cli/run_context.h"

#define FMNIST_DIR_DEFAULT "/usr/share/datasets/fashion-mnist"
#define WARMUP_STEPS 100
#define EVAL_CHUNK 500

/* "name sha256, name sha256, ..." of the four IDX files (sha256sum; a
   file it cannot read gets "?") */
static void dataset_fingerprint(const char *dir, char *out, size_t size)
{
    static const char *const files[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < 4; i++) {
        char cmd[4400], hash[80] = "?";
        if (!strchr(dir, '\'')) {
            snprintf(cmd, sizeof cmd, "sha256sum '%s/%s' 2>/dev/null", dir, files[i]);
            FILE *p = popen(cmd, "r");
            if (p) {
                if (fscanf(p, "%64s", hash) != 1) snprintf(hash, sizeof hash, "?");
                pclose(p);
            }
        }
        at += (size_t)snprintf(out + at, at < size ? size - at : 0, "%s%s/%s sha256:%s", i ? ", " : "", dir,
                               files[i], hash);
    }
}

/* fraction of the set classified correctly */
static double test_accuracy(Ctx *ctx, const FmnistNet *m, Dataset *ds)
{
    const int64_t px = FMNIST_NET_SIDE * FMNIST_NET_SIDE, K = m->cfg.classes;
    FmnistActs a;
    fmnist_acts_create(&a, ctx, m, EVAL_CHUNK, 0);
    float *x = xmalloc(sizeof(float) * EVAL_CHUNK * px), *logits = xmalloc(sizeof(float) * EVAL_CHUNK * K);
    int64_t *y = xmalloc(sizeof(int64_t) * EVAL_CHUNK);
    float *dx = ctx_alloc(ctx, sizeof(float) * EVAL_CHUNK * px);
    int64_t correct = 0;
    for (int64_t at = 0; at < ds->n; at += EVAL_CHUNK) {
        int64_t b = ds->n - at < EVAL_CHUNK ? ds->n - at : EVAL_CHUNK;
        for (int64_t i = 0; i < b; i++) CHECK(dataset_get(ds, at + i, x + i * px, y + i) == 0, "%s", err_msg());
        ctx_upload(ctx, dx, x, sizeof(float) * b * px);
        fmnist_net_forward(ctx, m, &a, tensor4(dx, DT_F32, b, 1, FMNIST_NET_SIDE, FMNIST_NET_SIDE));
        ctx_download(ctx, logits, a.logits, sizeof(float) * b * K);
        for (int64_t i = 0; i < b; i++) {
            int64_t best = 0;
            for (int64_t k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
            correct += best == y[i];
        }
    }
    ctx_free(ctx, dx);
    free(x), free(logits), free(y);
    fmnist_acts_destroy(&a, ctx);
    return (double)correct / (double)ds->n;
}

int cmd_train_fmnist_features(int argc, char **argv)
{
    const char *out = NULL, *epochs_s = "5", *seed_s = "0", *batch_s = "128", *lr_s = "2e-3", *data = NULL;
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--out", "W.safetensors", "where the weights go (results/weights/fmnist_features.safetensors)", &out, NULL, 1},
        {"--epochs", "E", "passes over the 60,000 training images (default 5)", &epochs_s, NULL, 0},
        {"--seed", "S", "initial weights and batch order (default 0)", &seed_s, NULL, 0},
        {"--batch", "B", "images per step (default 128)", &batch_s, NULL, 0},
        {"--lr", "LR", "peak AdamW learning rate (default 2e-3)", &lr_s, NULL, 0},
        {"--data", "DIR", "Fashion-MNIST IDX folder (default " FMNIST_DIR_DEFAULT ")", &data, NULL, 0},
        RUN_OPTIONS(ro),
    };
    int rc = cli_parse("train-fmnist-features", "--out W.safetensors [--epochs E --seed S --batch B]",
                       "Trains the FD-FMNIST feature network (a small CNN classifier of Fashion-MNIST whose "
                       "pooled,\nnormed penultimate activation is the feature vector) and writes its weights "
                       "with its test accuracy.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (rc) return rc > 0 ? 0 : -1;
    long epochs, seed, batch;
    double lr;
    if (cli_int("--epochs", epochs_s, 1, 1000, &epochs) || cli_int("--seed", seed_s, 0, 0x7fffffffL, &seed) ||
        cli_int("--batch", batch_s, 1, 4096, &batch) || cli_double("--lr", lr_s, &lr))
        return -1;
    if (!(lr > 0 && lr < 1)) return err_set("--lr: %s is not in (0, 1)", lr_s);
    if (run_options_cpu_only(&ro, "the FD-FMNIST feature network trains on the CPU only")) return -1;

    DatasetSpec spec = {.format = DATA_FMNIST, .path = data, .test_split = 0};
    Dataset *train = NULL, *test = NULL;
    if (dataset_open(&spec, &train)) return -1;
    spec.test_split = 1;
    if (dataset_open(&spec, &test)) {
        dataset_close(train);
        return -1;
    }
    RunContext run;
    if (run_context_open(&run, &ro)) {
        dataset_close(train), dataset_close(test);
        return -1;
    }
    Ctx *ctx = &run.ctx;
    double t0 = progress_now();

    FmnistNetConfig cfg = fmnist_net_config_default();
    FmnistNet m;
    fmnist_net_create(&m, ctx, &cfg, 1);
    fmnist_net_init(&m, ctx, (uint64_t)seed);
    OptimConfig oc = {.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
                      .warmup_steps = WARMUP_STEPS, .ema_decay = 0.0, .max_grad_norm = 0.0};
    Optimizer opt;
    optim_create(&opt, ctx, &oc, m.weights, m.n_floats);
    FmnistActs acts;
    fmnist_acts_create(&acts, ctx, &m, (int)batch, 1);

    const int64_t px = FMNIST_NET_SIDE * FMNIST_NET_SIDE;
    const int64_t steps_per_epoch = train->n / batch, total = steps_per_epoch * epochs;
    float *x = xmalloc(sizeof(float) * batch * px);
    int64_t *y = xmalloc(sizeof(int64_t) * batch);
    float *dx = ctx_alloc(ctx, sizeof(float) * batch * px);
    int64_t *dy = ctx_alloc(ctx, sizeof(int64_t) * batch);
    Tensor xt = tensor4(dx, DT_F32, batch, 1, FMNIST_NET_SIDE, FMNIST_NET_SIDE);
    Tensor logits = tensor2(acts.logits, DT_F32, batch, cfg.classes);
    Tensor dlogits = tensor2(acts.dlogits, DT_F32, batch, cfg.classes);
    Tensor labels = tensor1(dy, DT_I64, batch);
    size_t n_params = 0;
    for (int i = 0; i < FMNIST_NET_PARAMS; i++) n_params += m.params[i].numel;
    char threads[24] = "all";
    if (run.threads > 0) snprintf(threads, sizeof threads, "%d", run.threads);
    printf("train-fmnist-features: %s, %lld steps of %ld (%ld epochs), %zu parameters, %s threads\n",
           train->name, (long long)total, batch, epochs, n_params, threads);
    fflush(stdout);
    Progress pg;
    progress_init(&pg, stdout, 0, total, steps_per_epoch / 4 > 0 ? steps_per_epoch / 4 : 1, (double)batch);
    DataCursor cur = {0, 0};
    rc = 0;
    double loss_avg = NAN;
    for (int64_t step = 1; rc == 0 && step <= total; step++) {
        if (dataset_next_batch(train, &cur, (uint64_t)seed, (int)batch, 0, x, y, NULL)) { rc = -1; break; }
        ctx_upload(ctx, dx, x, sizeof(float) * batch * px);
        ctx_upload(ctx, dy, y, sizeof(int64_t) * batch);
        fmnist_net_forward(ctx, &m, &acts, xt);
        float loss = op_cross_entropy_forward(ctx, logits, labels);
        ctx_zero(ctx, dlogits);
        op_cross_entropy_backward(ctx, dlogits, logits, labels, 1.0f);
        ctx_zero(ctx, tensor1(m.grads, DT_F32, (int64_t)m.n_floats));
        fmnist_net_backward(ctx, &m, &acts, xt);
        /* cosine decay on top of optim's warmup: update k uses
           lr * min((k-1)/warmup, 1) * (1 + cos(pi (k-1) / total)) / 2 */
        opt.cfg.lr = lr * 0.5 * (1.0 + cos(M_PI * (double)(step - 1) / (double)total));
        rc = optim_step_buffers(ctx, &opt, m.weights, m.grads);
        loss_avg = isnan(loss_avg) ? loss : 0.98 * loss_avg + 0.02 * loss;
        progress_update(&pg, step, loss_avg);
    }
    if (rc == 0) progress_finish(&pg);
    double train_seconds = progress_now() - t0;

    if (rc == 0) {
        double acc = test_accuracy(ctx, &m, test);
        printf("test accuracy %.4f (%lld images), trained in %.1f s\n", acc, (long long)test->n, train_seconds);
        char acc_s[32], secs_s[32], ep_s[24], seed_m[24], batch_m[24], lr_m[32], fp[1200];
        char command[2048] = "deediff";
        for (int i = 0; i < argc; i++) {
            size_t at = strlen(command);
            snprintf(command + at, sizeof command - at, " %s", argv[i]);
        }
        snprintf(acc_s, sizeof acc_s, "%.4f", acc);
        snprintf(secs_s, sizeof secs_s, "%.1f", train_seconds);
        snprintf(ep_s, sizeof ep_s, "%ld", epochs);
        snprintf(seed_m, sizeof seed_m, "%ld", seed);
        snprintf(batch_m, sizeof batch_m, "%ld", batch);
        snprintf(lr_m, sizeof lr_m, "%g", lr);
        dataset_fingerprint(data ? data : FMNIST_DIR_DEFAULT, fp, sizeof fp);
        const char *keys[] = {"command", "test_accuracy", "train_seconds", "epochs", "seed", "batch", "lr",
                              "dataset", "features"};
        const char *values[] = {command, acc_s, secs_s, ep_s, seed_m, batch_m, lr_m, fp,
                                "FD-FMNIST: LayerNorm(global average pool of conv3), dimension c3"};
        rc = fmnist_net_save(&m, ctx, out, 9, keys, values);
        if (rc == 0) printf("wrote %s\n", out);
    }
    ctx_free(ctx, dx), ctx_free(ctx, dy);
    free(x), free(y);
    fmnist_acts_destroy(&acts, ctx);
    optim_destroy(&opt, ctx);
    fmnist_net_destroy(&m, ctx);
    run_context_close(&run);
    dataset_close(train), dataset_close(test);
    return rc;
}
