/*
 * commands.c: the table of deediff commands. A new command is a file
 * harness/cmd_<name>.c defining cmd_<name>() and one line here.
 */
#include "cli.h"

int cmd_forward(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_fid(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_train_fmnist_features(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_table(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_methods(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_regress(int argc, char **argv);
int cmd_claims(int argc, char **argv);
int cmd_train_autoencoder(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_kernels(int argc, char **argv);

const CliCommand cli_commands[] = {
    {"forward", "run the U-ViT network on inputs from a safetensors file", cmd_forward},
    {"info", "show a model's configuration, parameter count and multiply-adds", cmd_info},
    {"train", "train a U-ViT (VPSDE, AdamW, EMA) with checkpoints and exact resume", cmd_train},
    {"train-autoencoder", "train a KL autoencoder of our own (reconstruction + KL) and measure its scale factor",
     cmd_train_autoencoder},
    {"prune", "S-Pruning (Diff-Pruning): prune a U-ViT's heads and MLP units to a compute ratio", cmd_prune},
    {"log", "a training run's loss curve from the results database, as a table", cmd_log},
    {"kernels", "a profiled run's kernel timings by phase (--profile on train, sample, eval)", cmd_kernels},
    {"sample", "draw images from a U-ViT checkpoint (PNG, grid, manifest)", cmd_sample},
    {"bench", "performance as ratios to OpenBLAS sgemm and to PyTorch, one run", cmd_bench},
    {"fid", "Frechet distance (FID) between statistics (.npz) or features, with its N", cmd_fid},
    {"stats", "feature statistics (mu, sigma) of features, written as a pytorch-fid .npz", cmd_stats},
    {"features", "pool3 features (FID Inception) of images from safetensors or a PNG folder", cmd_features},
    {"encode", "KL autoencoder: images [-1,1] to latent moments (mean, log-variance), as U-ViT's encode_moments", cmd_encode},
    {"decode", "KL autoencoder: latents (times scale_factor) to images, as U-ViT's decode", cmd_decode},
    {"train-fmnist-features", "train the FD-FMNIST feature network (Fashion-MNIST CNN) and save its weights",
     cmd_train_fmnist_features},
    {"eval", "sample N images and store FD/FID-<N>, layers ratio, GMAC and s per image with the protocol", cmd_eval},
    {"table", "render one early-exit model's threshold sweep from the eval runs in the results database", cmd_table},
    {"analyze", "data of the paper's figures 1, 3, 4, 6 (exit MSE, loss by t, uncertainty maps, error accumulation)",
     cmd_analyze},
    {"run", "run an experiment file (a table or figure of the paper) at a scale: skips what is done, resumes, shards",
     cmd_run},
    {"report", "draw an experiment's table or figure from the database, running nothing", cmd_report},
    {"merge", "merge results databases (an experiment's shards) into one, no run twice", cmd_merge},
    {"regress", "run the smoke experiments and compare every metric with results/baseline.json (exit 1 on a regression)",
     cmd_regress},
    {"claims", "paper/CLAIMS.md: the paper's claims, ours at every scale and a verdict by a stated rule", cmd_claims},
    {"methods", "list every method (--method NAME) with one line each and its options", cmd_methods},
    {"ops", "list every op of kernels/ops.h and the backends that implement its forward and backward", cmd_ops},
};
const int cli_command_count = sizeof cli_commands / sizeof cli_commands[0];
