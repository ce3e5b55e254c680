/*
 * early_exit.c: the block-by-block predictor of early_exit.h: per-image
 * exits, compaction of the rows that go on, and the accounting of what each
 * image evaluation spent.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/errors.h"
#include "../kernels/phase.h"
#include "denoiser.h"
#include "early_exit.h"
#include "row_list.h"

typedef struct {
    NoisePredictor base;
    const UViT *m;
    UViTActs *acts;             /* inference arena of max_batch rows */
    ScheduleKind schedule;
    double threshold;
    EarlyExitRule *rule;
    SampleAccount *account;
    double macs_exit[UVIT_MAX_BLOCKS];  /* an image evaluation leaving after block i (the
                                           last: the full network), scores included */
    float *t_dev;               /* backend [max_batch] the network's time input */
    float *t_host;              /* host [max_batch] */
    float *out_rows;            /* backend [max_batch, C, H, W] predictions of leaving or last rows */
    int *pos;                   /* host [max_batch] row -> image index in the call */
    int *keep, *leave;          /* host [max_batch] */
    RowList places;             /* the images rows of out_rows go to, on the backend */
    float *score;               /* host [max_batch] */
    unsigned char *ready;       /* host [max_batch] image index in the call -> its rule said leave */
    int pieces;                 /* the most pieces the blocks, and a rule's score_rows, run as */
} EarlyExitPredictor;

static void account(EarlyExitPredictor *p, const int64_t *ids, int eval, const double *t, int image,
                    int exit_block, double macs, float score)
{
    sample_account_add(p->account, ids[image], eval, t[image], exit_block, macs, score);
}

/* out_rows' first n rows, the predictions of rows[n] -> their images'
   places in eps_out */
static void scatter(Ctx *ctx, EarlyExitPredictor *p, Tensor eps_out, const int *rows, int n)
{
    // eps_out is (B, C, H, W), out_rows (n, C, H, W)
    Tensor from = tensor4(p->out_rows, DT_F32, n, eps_out.shape[1], eps_out.shape[2], eps_out.shape[3]);
    op_rows_copy(ctx, eps_out, row_list_set(&p->places, ctx, rows, p->pos, n), from, tensor_none());
}

/* cond.exit_partner must pair the call's images two by two */
static void check_partners(const int *partner, int B)
{
    for (int i = 0; i < B; i++)
        CHECK(partner[i] >= 0 && partner[i] < B && partner[i] != i && partner[partner[i]] == i,
              "early exit: exit_partner[%d] = %d does not pair the %d images", i, partner[i], B);
}

/* the rule's scores of the n rows after block `block`: as pieces of rows
   at once, as the blocks run (uvit_block_pieces), when the rule can */
typedef struct {
    EarlyExitPredictor *p;
    int block, n, pieces;
} ScorePieces;

static void score_piece(Ctx *worker, int piece, void *user)
{
    const ScorePieces *job = user;
    int r0 = ctx_piece_start(job->n, piece, job->pieces), r1 = ctx_piece_start(job->n, piece + 1, job->pieces);
    EarlyExitRule *rule = job->p->rule;
    rule->score_rows(rule, worker, job->p->acts, job->block, r0, r1 - r0, job->p->score + r0);
}

static void score_rows(EarlyExitPredictor *p, Ctx *ctx, int block, int n)
{
    int pieces = ctx_split_pieces(ctx, p->pieces, n);
    if (p->rule->score_rows && pieces > 1)
        ctx_split_run(ctx, pieces, score_piece, &(ScorePieces){p, block, n, pieces});
    else
        p->rule->score(p->rule, ctx, p->acts, block, n, p->score);
}

static int early_exit_predict(NoisePredictor *self, Ctx *ctx, Tensor x, const double *t, Conditioning cond,
                              const int64_t *ids, int eval, Tensor eps_out)
{
    EarlyExitPredictor *p = self->state;
    const UViTConfig *c = &p->m->cfg;
    int B = (int)x.shape[0], L = c->num_blocks;
    if (uvit_predict_check(c, x, cond, self->max_batch, "early exit")) return -1;
    const int *partner = cond.exit_partner;
    if (partner) check_partners(partner, B);
    Tensor net_t = uvit_network_times(ctx, p->schedule, t, B, p->t_host, p->t_dev);
    // x, eps_out are (B, C, H, W)
    uvit_embed(ctx, p->m, p->acts, x, net_t, cond);
    int scoring = p->threshold > 0;
    if (scoring) p->rule->begin(p->rule, ctx, B, t, net_t);
    int n = B, exited = 0;
    for (int i = 0; i < B; i++) {
        p->pos[i] = i;
        p->ready[i] = 0;
    }
    int64_t C = c->in_chans, H = c->img_size;
    for (int blk = 0; blk < L; blk++) {
        uvit_block(ctx, p->m, p->acts, blk);
        if (blk == L - 1 || !scoring) continue;
        phase_begin(ctx, PHASE_EXIT_RULE, blk);
        score_rows(p, ctx, blk, n);
        phase_end(ctx, PHASE_EXIT_RULE);
        /* a row's decision is its first score below the threshold; it leaves
           then, or under paired exits once its partner has decided too */
        for (int r = 0; r < n; r++)
            if (p->threshold >= 1 || p->score[r] < p->threshold) p->ready[p->pos[r]] = 1;
        int nl = 0, nk = 0;
        for (int r = 0; r < n; r++) {
            int i = p->pos[r];
            if (p->ready[i] && (!partner || p->ready[partner[i]])) p->leave[nl++] = r;
            else p->keep[nk++] = r;
        }
        if (!nl) continue;
        phase_begin(ctx, PHASE_HEAD, blk);
        p->rule->head(p->rule, ctx, p->acts, blk, p->leave, nl, tensor4(p->out_rows, DT_F32, nl, C, H, H));
        phase_end(ctx, PHASE_HEAD);
        scatter(ctx, p, eps_out, p->leave, nl);
        for (int k = 0; k < nl; k++)
            account(p, ids, eval, t, p->pos[p->leave[k]], blk, p->macs_exit[blk], p->score[p->leave[k]]);
        exited += nl;
        if (!nk) return 0;
        uvit_keep_rows(ctx, p->m, p->acts, blk, p->keep, nk);
        p->rule->keep(p->rule, ctx, p->keep, nk);
        for (int k = 0; k < nk; k++) {
            p->pos[k] = p->pos[p->keep[k]];
            p->score[k] = p->score[p->keep[k]];
        }
        n = nk;
    }
    // the rows that ran every block take the backbone's tail
    if (!exited) {
        uvit_decode(ctx, p->m, p->acts, eps_out);
    } else {
        uvit_decode(ctx, p->m, p->acts, tensor4(p->out_rows, DT_F32, n, C, H, H));
        for (int k = 0; k < n; k++) p->keep[k] = k;
        scatter(ctx, p, eps_out, p->keep, n);
    }
    for (int k = 0; k < n; k++)
        account(p, ids, eval, t, p->pos[k], L - 1, p->macs_exit[L - 1], scoring ? p->score[k] : NAN);
    return 0;
}

NoisePredictor *early_exit_predictor_new(Ctx *ctx, const UViT *m, int max_batch,
                                         ScheduleKind schedule, double threshold, EarlyExitRule *rule,
                                         SampleAccount *account)
{
    CHECK(max_batch >= 1, "early_exit_predictor_new: max_batch %d", max_batch);
    const UViTConfig *c = &m->cfg;
    EarlyExitPredictor *p = xcalloc(1, sizeof *p);
    p->base.predict = early_exit_predict;
    p->base.state = p;
    p->base.max_batch = max_batch;
    p->m = m;
    p->schedule = schedule;
    p->threshold = threshold;
    p->rule = rule;
    p->account = account;
    p->acts = uvit_acts_create(ctx, m, max_batch, 0);
    p->pieces = uvit_block_pieces(ctx, c);
    for (int i = 0; i < c->num_blocks; i++) {
        int scored = threshold > 0 ? (i < c->num_blocks - 1 ? i + 1 : i) : 0;
        p->macs_exit[i] = exit_path_macs(c, i, scored, rule->macs_score, rule->macs_head);
    }
    size_t img = (size_t)c->in_chans * c->img_size * c->img_size;
    p->t_dev = ctx_alloc(ctx, (size_t)max_batch * sizeof(float));
    p->out_rows = ctx_alloc(ctx, (size_t)max_batch * img * sizeof(float));
    p->t_host = xmalloc((size_t)max_batch * sizeof(float));
    p->pos = xmalloc((size_t)max_batch * sizeof(int));
    p->keep = xmalloc((size_t)max_batch * sizeof(int));
    p->leave = xmalloc((size_t)max_batch * sizeof(int));
    p->score = xmalloc((size_t)max_batch * sizeof(float));
    p->ready = xmalloc((size_t)max_batch);
    row_list_create(&p->places, ctx, max_batch);
    return &p->base;
}

void early_exit_predictor_free(Ctx *ctx, NoisePredictor *base)
{
    EarlyExitPredictor *p = base->state;
    uvit_acts_destroy(ctx, p->acts);
    ctx_free(ctx, p->t_dev);
    ctx_free(ctx, p->out_rows);
    free(p->t_host);
    free(p->pos);
    free(p->keep);
    free(p->leave);
    free(p->score);
    free(p->ready);
    row_list_destroy(&p->places, ctx);
    free(p);
}

EarlyExitRule *early_exit_rule(NoisePredictor *p) { return ((EarlyExitPredictor *)p->state)->rule; }

void early_exit_rule_probe(EarlyExitRule *r, Ctx *ctx, UViTActs *a, int block, const double *t, Tensor net_t,
                           Tensor g, Tensor u)
{
    int B = uvit_batch(a);
    int64_t per = tensor_numel(u) / B;
    float *score = xmalloc((size_t)B * sizeof(float)), *map = xmalloc((size_t)tensor_numel(u) * sizeof(float));
    int *rows = xmalloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) rows[b] = b;
    r->begin(r, ctx, B, t, net_t);
    r->score(r, ctx, a, block, B, score);
    r->head(r, ctx, a, block, rows, B, g);
    for (int b = 0; b < B; b++)   // u is (B, C, H, W)
        for (int64_t j = 0; j < per; j++) map[b * per + j] = score[b];
    ctx_upload(ctx, u.data, map, (size_t)tensor_numel(u) * sizeof(float));
    free(score);
    free(map);
    free(rows);
}
