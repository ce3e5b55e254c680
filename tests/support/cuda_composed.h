/*
 * cuda_composed.h: the optional op-table entries the CUDA backend leaves to
 * kernels/ops.c's composition, each for a stated reason (kernels/cuda/
 * NOTES.md). One list for the two places that need it: tests/test_cuda_ops.c
 * checks it against the real CUDA table (every other entry the CPU fills,
 * CUDA fills), and the CPU emulation of that backend (tests/cuda_emu/emu.c)
 * empties the same entries, so it composes what the GPU composes.
 */
#ifndef DEEDIFF_TEST_CUDA_COMPOSED_H
#define DEEDIFF_TEST_CUDA_COMPOSED_H

static const char *const cuda_composed[] = {
    "linear_gelu_forward",  /* erf GELU: no cuBLASLt epilogue, the composition is the best form */
    "conv2d_relu_forward",  /* im2col + GEMM, then ReLU: no fused conv yet */
    NULL,
};

#endif
