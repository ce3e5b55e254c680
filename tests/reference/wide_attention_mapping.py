"""
wide_attention_mapping.py: checks the index mapping of the cuBLAS calls in
kernels/cuda/cuda_attention_wide.cu (heads wider than 128) without a GPU.

Each call is replayed here with the same arguments (transposes, m, n, k,
offsets, leading dimensions, batch strides) by a column-major GEMM on flat
NumPy buffers, and the results are compared with attention written directly
in NumPy: the forward's P and out, and the backward's dqkv accumulated into
a prefilled buffer. Run: /usr/bin/python3 tests/reference/wide_attention_mapping.py
(prints the largest differences, about 1e-16, and exits 1 if one exceeds 1e-12).
"""
import sys
import numpy as np
rng = np.random.default_rng(0)
B, T, H, hd = 2, 7, 2, 5
A = H * hd; ld = 3 * A; scale = 1 / np.sqrt(hd)
qkv = rng.standard_normal((B, T, 3 * A)); dout = rng.standard_normal((B, T, A))

def gemm(ta, tb, m, n, k, Abuf, offa, lda, sa, Bbuf, offb, ldb, sb, Cbuf, offc, ldc, sc, alpha, beta):
    for b in range(B):
        def mat(buf, off, ldx, rows, cols):  # column-major rows x cols at off with leading dim ldx
            M = np.empty((rows, cols))
            for c in range(cols):
                M[:, c] = buf[off + c * ldx: off + c * ldx + rows]
            return M
        Am = mat(Abuf, offa + b * sa, lda, *( (k, m) if ta == 'T' else (m, k) ))
        Bm = mat(Bbuf, offb + b * sb, ldb, *( (n, k) if tb == 'T' else (k, n) ))
        opA = Am.T if ta == 'T' else Am
        opB = Bm.T if tb == 'T' else Bm
        Cm = mat(Cbuf, offc + b * sc, ldc, m, n)
        R = alpha * opA @ opB + beta * Cm
        for c in range(n):
            Cbuf[offc + b * sc + c * ldc: offc + b * sc + c * ldc + m] = R[:, c]

x = qkv.ravel().copy(); go = dout.ravel().copy()
P = np.zeros(B * H * T * T); out = np.zeros(B * T * A)
tts = H * T * T
for h in range(H):
    gemm('T', 'N', T, T, hd, x, A + h * hd, ld, T * ld, x, h * hd, ld, T * ld, P, h * T * T, T, tts, scale, 0)
P4 = P.reshape(B * H * T, T); P4 = np.exp(P4 - P4.max(1, keepdims=True)); P4 /= P4.sum(1, keepdims=True); P = P4.ravel()
for h in range(H):
    gemm('N', 'N', hd, T, T, x, 2 * A + h * hd, ld, T * ld, P, h * T * T, T, tts, out, h * hd, A, T * A, 1, 0)
# reference
q = qkv[:, :, :A].reshape(B, T, H, hd).transpose(0, 2, 1, 3); k = qkv[:, :, A:2*A].reshape(B, T, H, hd).transpose(0, 2, 1, 3)
v = qkv[:, :, 2*A:].reshape(B, T, H, hd).transpose(0, 2, 1, 3)
S = q @ k.transpose(0, 1, 3, 2) * scale; Pr = np.exp(S - S.max(-1, keepdims=True)); Pr /= Pr.sum(-1, keepdims=True)
O = (Pr @ v).transpose(0, 2, 1, 3).reshape(B, T, A)
print("P", np.abs(P.reshape(B, H, T, T) - Pr).max(), "out", np.abs(out.reshape(B, T, A) - O).max())
# backward, accumulate into a prefilled dqkv
dq0 = rng.standard_normal(B * T * 3 * A); dx = dq0.copy(); dP = np.zeros(B * H * T * T)
for h in range(H):
    gemm('N', 'T', hd, T, T, go, h * hd, A, T * A, P, h * T * T, T, tts, dx, 2 * A + h * hd, ld, T * ld, 1, 1)
    gemm('T', 'N', T, T, hd, x, 2 * A + h * hd, ld, T * ld, go, h * hd, A, T * A, dP, h * T * T, T, tts, 1, 0)
dP4 = dP.reshape(-1, T); P4 = P.reshape(-1, T); dS = (P4 * (dP4 - (P4 * dP4).sum(1, keepdims=True))).ravel()
for h in range(H):
    gemm('N', 'N', hd, T, T, x, A + h * hd, ld, T * ld, dS, h * T * T, T, tts, dx, h * hd, ld, T * ld, scale, 1)
    gemm('N', 'T', hd, T, T, x, h * hd, ld, T * ld, dS, h * T * T, T, tts, dx, A + h * hd, ld, T * ld, scale, 1)
dO = dout.reshape(B, T, H, hd).transpose(0, 2, 1, 3)
dV = Pr.transpose(0, 1, 3, 2) @ dO; dPr = dO @ v.transpose(0, 1, 3, 2)
dSr = Pr * (dPr - (Pr * dPr).sum(-1, keepdims=True))
dQ = dSr @ k * scale; dK = dSr.transpose(0, 1, 3, 2) @ q * scale
want = dq0.reshape(B, T, 3 * A).copy()
want[:, :, :A] += dQ.transpose(0, 2, 1, 3).reshape(B, T, A)
want[:, :, A:2*A] += dK.transpose(0, 2, 1, 3).reshape(B, T, A)
want[:, :, 2*A:] += dV.transpose(0, 2, 1, 3).reshape(B, T, A)
err_p = np.abs(P.reshape(B, H, T, T) - Pr).max()
err_o = np.abs(out.reshape(B, T, A) - O).max()
err_d = np.abs(dx.reshape(B, T, 3 * A) - want).max()
print("dqkv", err_d)
sys.exit(0 if max(err_p, err_o, err_d) < 1e-12 else 1)
