#!/usr/bin/python3
"""fit_normal_tail.py: the coefficients of cpu_normal_tail_ratio in
kernels/cpu/cpu_gelu.h (run with Debian's /usr/bin/python3, numpy).

The standard normal's lower tail is written Phi(-u) = exp(-u^2/2) S(u), with
S(u) = erfcx(u / sqrt 2) / 2 smooth on [0, inf). S is fitted by a degree-11
polynomial in u on [0, 5.5], minimising the largest absolute error of
Phi(-u) itself (a weighted minimax fit: Lawson's iteration over weighted
least squares in the Chebyshev basis). Prints the fit's error, in float64
and with float32 Horner evaluation, and the coefficients, lowest first.
"""
import math

import numpy as np

U, DEGREE = 5.5, 11

u = np.linspace(0.0, U, 20001)
S = np.array([0.5 * math.exp(x * x / 2) * math.erfc(x / math.sqrt(2)) for x in u])
weight = np.exp(-u * u / 2)  # an error in S is scaled by this in Phi(-u)

V = np.polynomial.chebyshev.chebvander(2 * u / U - 1, DEGREE)
lawson = np.ones_like(u)
for _ in range(200):
    sw = np.sqrt(lawson) * weight
    c, *_ = np.linalg.lstsq(V * sw[:, None], S * sw, rcond=None)
    err = np.abs((V @ c - S) * weight)
    lawson *= err
    lawson /= lawson.sum()

power = np.polynomial.chebyshev.cheb2poly(c)
coef = np.polynomial.Polynomial(power)(np.polynomial.Polynomial([-1.0, 2.0 / U])).coef
acc = np.float32(coef[-1]) * np.ones_like(u, dtype=np.float32)
uf = u.astype(np.float32)
for k in range(len(coef) - 2, -1, -1):
    acc = (acc * uf + np.float32(coef[k])).astype(np.float32)
print("max |error| of Phi(-u): %.2e (float64), %.2e (float32 Horner)"
      % (err.max(), np.max(np.abs((acc - S) * weight))))
for k, a in enumerate(coef):
    print("u^%-2d %.10e" % (k, a))
