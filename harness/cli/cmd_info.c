/*
 * cmd_info.c: `deediff info`: a model's configuration, parameter count and
 * multiply-adds per image per forward, per block and in total, and for a
 * method's model (or --method) what its heads and estimators add and what
 * an image evaluation costs when it leaves after each block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/cpu_startup.h"
#include "../../kernels/errors.h"
#include "../../model/method.h"
#include "../../model/uvit.h"
#include "../bench/bench_util.h"
#include "cli.h"

/* the paper's Table 1 figure for U-ViT-S/2 on CIFAR-10 */
#define PAPER_CIFAR10_GFLOPS 22.86

static int is_cifar10_small(const UViTConfig *c)
{
    return c->img_size == 32 && c->patch_size == 2 && c->in_chans == 3 && c->embed_dim == 512 &&
           c->depth == 12 && c->num_heads == 8 && c->mlp_ratio == 4.0 && c->num_classes <= 0;
}

static void block_name(const UViTConfig *c, int i, char *buf, size_t n)
{
    int n_in = c->depth / 2;
    if (i < n_in) snprintf(buf, n, "in_blocks.%d", i);
    else if (i == n_in) snprintf(buf, n, "mid_block");
    else snprintf(buf, n, "out_blocks.%d", i - n_in - 1);
}

static void print_info(const char *source, const UViTConfig *c, size_t file_params)
{
    char *json = uvit_config_to_json(c);
    printf("model        %s\nconfig       %s\n", source, json);
    free(json);
    printf("tokens       %d (%d patches + %d extra)\n", uvit_num_tokens(c), uvit_num_patches(c),
           uvit_num_extras(c));
    if (uvit_is_text(c))
        printf("text         clip_dim %d, num_clip_token %d: text-to-image (context_embed Linear(%d, %d) over each "
               "prompt's CLIP tokens; sequence [time, %d context tokens, patches])\n", c->clip_dim, c->num_clip_token,
               c->clip_dim, c->embed_dim, c->num_clip_token);
    size_t params = uvit_param_count(c);
    printf("parameters   %zu (%.2f M)\n", params, params / 1e6);
    if (file_params && file_params != params)
        printf("             the file holds %zu values\n", file_params);
    UViTMacs macs;
    uvit_macs(c, &macs);
    printf("\nmultiply-adds per image per forward pass\n"
           "(1 MAC = one multiply and one add; counted: GEMMs, attention q.k and p.v,\n"
           " convolutions; not counted: norms, activations, adds, softmax)\n\n");
    printf("  %-16s %10s %8s %6s\n", "part", "MMAC", "MLP", "heads");
    printf("  %-16s %10.2f\n", "embed", macs.embed / 1e6);
    for (int i = 0; i < c->num_blocks; i++) {
        char name[32];
        block_name(c, i, name, sizeof name);
        printf("  %-16s %10.2f %8d %6d\n", name, macs.per_block[i] / 1e6, c->block_mlp_hidden[i],
               c->block_num_heads[i]);
    }
    printf("  %-16s %10.2f\n", "decode", macs.decode / 1e6);
    printf("  %-16s %10.2f   = %.2f G MAC = %.2f GFLOPs at 2 FLOPs per MAC\n", "total",
           macs.total / 1e6, macs.total / 1e9, 2 * macs.total / 1e9);
    if (is_cifar10_small(c))
        printf("\npaper (Table 1, U-ViT-S/2 on CIFAR-10): %.2f GFLOPs, counting convention not "
               "stated;\nours: %.2f G MAC, %.2f GFLOPs\n",
               PAPER_CIFAR10_GFLOPS, macs.total / 1e9, 2 * macs.total / 1e9);
    printf("\nCPU backend (%s)\n", bench_cpu_name());
    cpu_describe(stdout);
    Ctx cpu;
    ctx_init_cpu(&cpu, 0);
    double mib = uvit_largest_block_params(c) * sizeof(float) / 1048576.0;
    int pieces = uvit_block_pieces(&cpu, c);
    if (pieces > 1)
        printf("blocks       as pieces of the batch, one per thread (%d): the largest block's weights, %.2f MiB, "
               "fit %.0f MiB\n", pieces, mib, UVIT_PIECE_MAX_WEIGHT_BYTES / 1048576.0);
    else if (ctx_split_threads(&cpu) == 1)
        printf("blocks       op by op, on one thread\n");
    else
        printf("blocks       op by op, each op across the threads: the largest block's weights, %.2f MiB, "
               "are over the pieces' limit of %.0f MiB\n", mib, UVIT_PIECE_MAX_WEIGHT_BYTES / 1048576.0);
    ctx_destroy(&cpu);
}

/* what the method adds: its parameters, and the cost of an exit after each block */
static int print_method(const char *name, const char *options_json, const char *source, const UViTConfig *c)
{
    Method *me;
    if (method_new(&me, name)) return -1;
    if (options_json && method_set_options_json(me, options_json, source)) {
        method_free(me, NULL);
        return -1;
    }
    method_build_table(me, c);
    size_t n = 0;
    for (int i = 0; i < me->num_params; i++) n += me->params[i].numel;
    char *opts = method_options_json(me);
    printf("\nmethod       %s %s\n", name, opts);
    free(opts);
    printf("parameters   %zu (%.3f M) beside the backbone's\n", n, n / 1e6);
    if (me->kind->macs_base) {   /* a pruned network (S-Pruning) against the one it came from */
        UViTMacs now;
        uvit_macs(c, &now);
        double base = method_base_macs(me, c);
        printf("compute ratio %.4f: %.6f G MAC of the unpruned network's %.6f\n", now.total / base,
               now.total / 1e9, base / 1e9);
    }
    if (!me->kind->macs_estimator && !me->kind->macs_head && !method_has_probe(me)) {
        printf("exits        none: every image evaluation runs the whole network\n");
        method_free(me, NULL);
        return 0;
    }
    double est = me->kind->macs_estimator ? me->kind->macs_estimator(me, c) : 0;
    double head = me->kind->macs_head ? me->kind->macs_head(me, c) : 0;
    printf("estimator    %.4f MMAC per image at every block passed (before the last)\n", est / 1e6);
    printf("exit head    %.4f MMAC per image leaving early\n", head / 1e6);
    printf("\n  leaving after     MMAC per image evaluation (estimators at every block passed, its head)\n");
    for (int i = 0; i < c->num_blocks; i++) {
        char block[32];
        block_name(c, i, block, sizeof block);
        int scored = i < c->num_blocks - 1 ? i + 1 : i;
        printf("  %-16s %10.3f\n", block, method_macs_of_exit(me, c, i, scored) / 1e6);
    }
    method_free(me, NULL);
    return 0;
}

int cmd_info(int argc, char **argv)
{
    const char *config = NULL, *method = NULL;
    CliOpt opts[] = {
        {"--config", "JSON", "describe a configuration instead of a file", &config, NULL, 0},
        {"--method", "NAME", "with --config: what a method (deediff) adds, with its default options", &method,
         NULL, 0},
    };
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse("info", "M.safetensors | --config JSON",
                       "Shows a model's configuration, its parameter count and its multiply-adds "
                       "per image per forward pass, per block and in total.",
                       argc, argv, opts, 2, pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    UViTConfig c;
    if (config) {
        if (npos) return err_set("info: give a model file or --config, not both");
        if (uvit_config_parse(&c, config, "--config")) return -1;
        print_info("(--config)", &c, 0);
        return method && strcmp(method, "none") ? print_method(method, NULL, "--method", &c) : 0;
    }
    if (method) return err_set("info: --method goes with --config (a model file names its own method)");
    if (npos != 1) return err_set("info: missing the model file (see deediff info --help)");
    SafeTensors st;
    if (st_open(&st, pos[0])) return -1;
    const char *json = st_metadata(&st, "config");
    char source[1100];
    snprintf(source, sizeof source, "%s: __metadata__", pos[0]);
    rc = json ? uvit_config_parse(&c, json, source)
              : err_set("%s: missing \"config\" (the U-ViT configuration as JSON)", source);
    if (rc == 0) {
        size_t n = 0;
        for (int i = 0; i < st.count; i++) {
            size_t k = 1;
            for (int d = 0; d < st.entries[i].ndim; d++) k *= (size_t)st.entries[i].shape[d];
            n += k;
        }
        print_info(pos[0], &c, n);
        const char *name = method_of_file(&st);
        snprintf(source, sizeof source, "%s: __metadata__: method_options", pos[0]);
        if (strcmp(name, "none")) rc = print_method(name, st_metadata(&st, "method_options"), source, &c);
    }
    st_close(&st);
    return rc;
}
