/*
 * cmd_train.c: `deediff train --config C.json [section.key=value ...]`, and
 * a method's training from a pretrained backbone:
 * `deediff train --method deediff --backbone B.safetensors [--config C.json]
 *  [method.key=value ...]` (--method and --backbone are method.name and
 * output.init; without --config the model is the backbone's).
 * `--resume auto` continues from output.dir/checkpoint.safetensors when that
 * file exists and was written by exactly this configuration (its metadata's
 * train_config), and starts afresh otherwise: what an experiment's "before"
 * step passes, so a killed training resumes instead of starting over.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../kernels/errors.h"
#include "../cli/cli.h"
#include "../cli/text_file.h"
#include "../../model/safetensors.h"
#include "train.h"

#define MAX_OVERRIDES 64

/* --resume auto: the run's own checkpoint into path when it exists and holds
   this configuration, else "" (a fresh start, said on stderr) */
static int auto_resume(const TrainConfig *tc, char *path, size_t size)
{
    snprintf(path, size, "%s/checkpoint.safetensors", tc->out_dir);
    if (access(path, F_OK) != 0) {
        path[0] = 0;
        return 0;
    }
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    const char *json = st_metadata(&st, "train_config");
    int same = json && !strcmp(json, tc->json);
    st_close(&st);
    if (same) {
        fprintf(stderr, "train: --resume auto: continuing from %s\n", path);
    } else {
        fprintf(stderr, "train: --resume auto: %s was written by another configuration; starting afresh\n", path);
        path[0] = 0;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    const char *config = NULL, *resume = NULL, *method = NULL, *backbone = NULL;
    RunOptions ro = run_options_default();
    CliOpt opts[] = {
        {"--config", "C.json", "training configuration (format: harness/train/train_config.h)", &config, NULL, 0},
        {"--method", "NAME", "train a method's parameters too (deediff methods lists them): method.name", &method, NULL, 0},
        {"--backbone", "B.safetensors", "start from this pretrained U-ViT: output.init", &backbone, NULL, 0},
        {"--resume", "CKPT|auto", "continue a run from its checkpoint, bit for bit (auto: from output.dir's, when it holds this configuration)",
         &resume, NULL, 0},
        RUN_OPTIONS(ro),
        PROFILE_OPTION(ro),
    };
    const char *overrides[MAX_OVERRIDES + 2];
    int n = 0;
    int rc = cli_parse("train", "--config C.json | --method M --backbone B [--resume CKPT] [section.key=value ...]",
                       "Trains a U-ViT by VPSDE noise prediction with AdamW and EMA as U-ViT does, and a "
                       "method's\nparameters with it (method.KEY=VALUE: deediff methods lists each method's options; "
                       "train.freeze_backbone=true\ntrains them alone). "
                       "Overrides such as train.steps=200 optim.lr=1e-4 replace keys of the file. "
                       "Progress goes to stderr, the log to SQLite (output.db), the checkpoint to "
                       "output.dir/checkpoint.safetensors.",
                       argc, argv, opts, sizeof opts / sizeof opts[0], overrides, MAX_OVERRIDES, &n);
    if (rc) return rc > 0 ? 0 : -1;
    if (!config && !backbone) return err_set("train: give --config C.json, or --backbone B.safetensors");
    char method_ov[128], backbone_ov[4200];
    if (method) {
        snprintf(method_ov, sizeof method_ov, "method.name=%s", method);
        overrides[n++] = method_ov;
    }
    if (backbone) {
        snprintf(backbone_ov, sizeof backbone_ov, "output.init=%s", backbone);
        overrides[n++] = backbone_ov;
    }
    TrainConfig tc;
    if (train_config_load(&tc, config, n, overrides)) return -1;
    char auto_path[1100];
    if (resume && !strcmp(resume, "auto")) {
        if (auto_resume(&tc, auto_path, sizeof auto_path)) {
            train_config_free(&tc);
            return -1;
        }
        resume = auto_path[0] ? auto_path : NULL;
    }
    /* the exact command, for the checkpoint's and the exported model's metadata */
    TextBuf cmd;
    text_init(&cmd);
    text_printf(&cmd, "deediff");
    for (int i = 0; i < argc; i++) text_printf(&cmd, " %s", argv[i]);
    RunContext run;
    rc = run_context_open(&run, &ro);
    if (rc == 0) {
        rc = train_run(&run, &tc, resume, cmd.data);
        run_context_close(&run);
    }
    text_free(&cmd);
    train_config_free(&tc);
    return rc;
}
