/*
 * cmd_train_autoencoder.c: `deediff train-autoencoder --config C.json
 * [section.key=value ...]`: a KL autoencoder of our own (train_autoencoder.h),
 * configured as `deediff train` is (train_config.h) with the autoencoder's
 * configuration as "model".
 */
#include <stdio.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../cli/text_file.h"
#include "train_autoencoder.h"

#define MAX_OVERRIDES 64

int cmd_train_autoencoder(int argc, char **argv)
{
    const char *config = NULL;
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--config", "C.json", "training configuration: model = the autoencoder's (model/autoencoder_config.h)",
         &config, NULL, 1},
        RUN_OPTIONS(ro),
    };
    const char *overrides[MAX_OVERRIDES];
    int n = 0;
    int rc = cli_parse("train-autoencoder", "--config C.json [section.key=value ...]",
                       "Trains a KL autoencoder (reconstruction + kl_weight x KL, AdamW) on a pixel dataset, "
                       "measures\nits scale factor (1 / std of the latents) and its test reconstruction error, "
                       "and writes it\nto output.export with the configuration in its metadata.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], overrides, MAX_OVERRIDES, &n);
    if (rc) return rc > 0 ? 0 : -1;
    TrainConfig tc;
    if (train_config_load_kind(&tc, TRAIN_MODEL_AUTOENCODER, config, n, overrides)) return -1;
    TextBuf cmd;
    text_init(&cmd);
    text_printf(&cmd, "deediff");
    for (int i = 0; i < argc; i++) text_printf(&cmd, " %s", argv[i]);
    RunContext run;
    rc = run_options_cpu_only(&ro, "the autoencoder has not run on a GPU yet (its CUDA kernels await make gpu-check): CPU only");
    if (rc == 0) rc = run_context_open(&run, &ro);
    if (rc == 0) {
        rc = train_autoencoder_run(&run, &tc, cmd.data);
        run_context_close(&run);
    }
    text_free(&cmd);
    train_config_free(&tc);
    return rc;
}
