/*
 * cross_entropy.c: the softmax cross-entropy loss of a classifier on the
 * CPU, forward and backward (the FD-FMNIST feature network's training loss,
 * model/fmnist_net.h).
 *
 * Per row b of logits[B,K] with label y = labels[b]:
 *   loss_b = logsumexp(logits[b,:]) - logits[b,y]
 *          = log sum_k exp(logits[b,k] - max) + max - logits[b,y]
 * The forward returns the mean over rows, summed in double in row order;
 * the backward adds dloss / B * (softmax(logits[b,:]) - onehot(y)).
 */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_parallel.h"

/* the row's max and log sum_k exp(x[k] - max), in double */
static void row_logsumexp(const float *x, int64_t K, double *max_out, double *lse_out)
{
    double m = x[0];
    for (int64_t k = 1; k < K; k++) if (x[k] > m) m = x[k];
    double s = 0;
    for (int64_t k = 0; k < K; k++) s += exp((double)x[k] - m);
    *max_out = m;
    *lse_out = log(s);
}

float cpu_cross_entropy_forward(Ctx *ctx, Tensor logits, Tensor labels)
{
    (void)ctx;
    int64_t B = logits.shape[0], K = logits.shape[1];
    const float *x = tensor_f32(logits);
    const int64_t *y = (const int64_t *)labels.data;
    double sum = 0;
    for (int64_t b = 0; b < B; b++) {
        double m, lse;
        row_logsumexp(x + b * K, K, &m, &lse);
        sum += lse + m - x[b * K + y[b]];
    }
    return B ? (float)(sum / (double)B) : 0.0f;
}

/* dlogits[b,k] += dloss / B * (softmax_k - [k == y_b]) */
void cpu_cross_entropy_backward(Ctx *ctx, Tensor dlogits, Tensor logits, Tensor labels, float dloss)
{
    int64_t B = logits.shape[0], K = logits.shape[1];
    if (!B) return;
    const float *x = tensor_f32(logits);
    const int64_t *y = (const int64_t *)labels.data;
    float *dx = tensor_f32(dlogits);
    double scale = (double)dloss / (double)B;
    #pragma omp parallel for num_threads(cpu_threads(ctx)) if (B * K > CPU_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        double m, lse;
        row_logsumexp(x + b * K, K, &m, &lse);
        for (int64_t k = 0; k < K; k++) {
            double p = exp((double)x[b * K + k] - m - lse);
            dx[b * K + k] += (float)(scale * (p - (k == y[b] ? 1.0 : 0.0)));
        }
    }
}
