/*
 * train_checkpoint.c: saving and restoring a training run's whole state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/errors.h"
#include "train_checkpoint.h"

/* an optimizer's moments as NAME.m and NAME.v */
static void write_moments(StWriter *w, Ctx *ctx, const Optimizer *o, const char *name)
{
    float *host = xmalloc(o->n * sizeof(float));
    int64_t n = (int64_t)o->n;
    char key[64];
    ctx_download(ctx, host, o->m, o->n * sizeof(float));
    snprintf(key, sizeof key, "%s.m", name);
    st_writer_add(w, key, DT_F32, 1, &n, host);
    ctx_download(ctx, host, o->v, o->n * sizeof(float));
    snprintf(key, sizeof key, "%s.v", name);
    st_writer_add(w, key, DT_F32, 1, &n, host);
    free(host);
}

static int read_moments(const SafeTensors *st, Ctx *ctx, Optimizer *o, const char *name)
{
    float *host = xmalloc(o->n * sizeof(float));
    int64_t n = (int64_t)o->n;
    char key[64];
    snprintf(key, sizeof key, "%s.m", name);
    int rc = st_read_f32(st, key, host, 1, &n);
    if (rc == 0) ctx_upload(ctx, o->m, host, o->n * sizeof(float));
    snprintf(key, sizeof key, "%s.v", name);
    if (rc == 0) rc = st_read_f32(st, key, host, 1, &n);
    if (rc == 0) ctx_upload(ctx, o->v, host, o->n * sizeof(float));
    free(host);
    return rc;
}

int train_checkpoint_save(const char *path, Ctx *ctx, const TrainState *s, const TrainPosition *pos,
                          uint64_t seed, const char *train_json, const char *command)
{
    const UViT *m = s->m;
    StWriter *w = st_writer_new();
    uvit_write_params(m, ctx, w, "model.", m->weights);
    uvit_write_params(m, ctx, w, "ema.", s->o->ema);
    write_moments(w, ctx, s->o, "optim");
    if (s->om) {
        method_write_params(s->me, ctx, w, "model.", s->me->weights);
        method_write_params(s->me, ctx, w, "ema.", s->om->ema);
        write_moments(w, ctx, s->om, "method_optim");
    }
    if (strcmp(s->me->kind->name, "none")) method_write_meta(s->me, w);
    int64_t one = 1, two = 2, cursor[2] = {pos->cursor.epoch, pos->cursor.pos};
    st_writer_add(w, "state.step", DT_I64, 1, &one, &pos->step);
    st_writer_add(w, "state.cursor", DT_I64, 1, &two, cursor);
    char *json = uvit_config_to_json(&m->cfg), num[64];
    st_writer_meta(w, "format", TRAIN_CHECKPOINT_FORMAT);
    st_writer_meta(w, "config", json);
    st_writer_meta(w, "train_config", train_json ? train_json : "{}");
    st_writer_meta(w, "command", command ? command : "");
    snprintf(num, sizeof num, "%llu", (unsigned long long)seed);
    st_writer_meta(w, "seed", num);
    snprintf(num, sizeof num, "%.9g", pos->loss);
    st_writer_meta(w, "loss", num);
    free(json);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    return rc;
}

int train_checkpoint_load(const char *path, Ctx *ctx, const TrainState *s, TrainPosition *pos)
{
    UViT *m = s->m;
    Optimizer *o = s->o;
    SafeTensors st;
    if (st_open(&st, path)) return -1;
    int rc = 0;
    const char *format = st_metadata(&st, "format"), *json = st_metadata(&st, "config");
    UViTConfig cfg;
    char source[1100];
    snprintf(source, sizeof source, "%s: __metadata__: config", path);
    if (!format || strcmp(format, TRAIN_CHECKPOINT_FORMAT))
        rc = err_set("%s: __metadata__: format: not a training checkpoint (expected \"%s\")", path,
                     TRAIN_CHECKPOINT_FORMAT);
    else if (!json)
        rc = err_set("%s: __metadata__: config: missing", path);
    else if (uvit_config_parse(&cfg, json, source))
        rc = -1;
    else if (!uvit_config_equal(&cfg, &m->cfg)) {
        char *want = uvit_config_to_json(&m->cfg);
        rc = err_set("%s: __metadata__: config: a checkpoint of another configuration (%s; this run "
                     "trains %s)", path, json, want);
        free(want);
    }
    const char *method = method_of_file(&st);
    char *want_opts = method_options_json(s->me);
    const char *opts = st_metadata(&st, "method_options");
    if (rc == 0 && strcmp(method, s->me->kind->name))
        rc = err_set("%s: __metadata__: method: a checkpoint of method %s; this run trains %s", path, method,
                     s->me->kind->name);
    else if (rc == 0 && strcmp(method, "none") && (!opts || strcmp(opts, want_opts)))
        rc = err_set("%s: __metadata__: method_options: %s; this run trains %s with %s", path, opts ? opts : "missing",
                     method, want_opts);
    free(want_opts);
    int64_t step = 0, cursor[2] = {0, 0}, one = 1, two = 2;
    if (rc == 0) rc = uvit_read_params(m, ctx, &st, "model.", m->weights);
    if (rc == 0) rc = uvit_read_params(m, ctx, &st, "ema.", o->ema);
    if (rc == 0) rc = read_moments(&st, ctx, o, "optim");
    if (rc == 0 && s->om) {
        rc = method_read_params(s->me, ctx, &st, "model.", s->me->weights);
        if (rc == 0) rc = method_read_params(s->me, ctx, &st, "ema.", s->om->ema);
        if (rc == 0) rc = read_moments(&st, ctx, s->om, "method_optim");
    }
    if (rc == 0) rc = st_read_i64(&st, "state.step", &step, 1, &one);
    if (rc == 0) rc = st_read_i64(&st, "state.cursor", cursor, 1, &two);
    if (rc == 0 && (step < 0 || cursor[0] < 0 || cursor[1] < 0))
        rc = err_set("%s: tensor 'state.step': negative step or cursor", path);
    if (rc == 0) {
        o->step = step;
        if (s->om) s->om->step = step;
        pos->step = step;
        pos->cursor.epoch = cursor[0];
        pos->cursor.pos = cursor[1];
        const char *loss = st_metadata(&st, "loss");
        pos->loss = loss ? atof(loss) : 0;
    }
    st_close(&st);
    return rc;
}
