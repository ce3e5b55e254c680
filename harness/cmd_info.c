/*
 * cmd_info.c: `deediff info`: a model's configuration, parameter count and
 * multiply-adds per image per forward, per block and in total.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../model/uvit.h"
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
}

int cmd_info(int argc, char **argv)
{
    const char *config = NULL;
    CliOpt opts[] = {
        {"--config", "JSON", "describe a configuration instead of a file", &config, NULL, 0},
    };
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse("info", "M.safetensors | --config JSON",
                       "Shows a model's configuration, its parameter count and its multiply-adds "
                       "per image per forward pass, per block and in total.",
                       argc, argv, opts, 1, pos, 1, &npos);
    if (rc) return rc > 0 ? 0 : -1;
    UViTConfig c;
    if (config) {
        if (npos) return err_set("info: give a model file or --config, not both");
        if (uvit_config_parse(&c, config, "--config")) return -1;
        print_info("(--config)", &c, 0);
        return 0;
    }
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
    }
    st_close(&st);
    return rc;
}
