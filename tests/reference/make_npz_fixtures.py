"""make_npz_fixtures.py: the NumPy-written fixtures of the npy and frechet suites.

Run with Debian's numpy (no scipy, no torch):
    /usr/bin/python3 tests/reference/make_npz_fixtures.py tests/fixtures/npz

Writes (all tiny, deterministic):
  stored.npz         np.savez: arrays of several dtypes (members stored)
  deflated.npz       np.savez_compressed: the same arrays (members deflated)
  corrupt_crc.npz    stored.npz with a data byte of member 'f4' flipped (bad CRC)
  corrupt_deflate.npz  deflated.npz with a byte of member 'f4' flipped
  corrupt_trunc.npz  the first half of deflated.npz
  fortran.npy        np.save of a Fortran-ordered array (must be refused)
  v2.npy, v3.npy     format versions 2.0 and 3.0 of the same array
  frechet_ref.npz    two Gaussians' mu/sigma and their Fréchet distance computed
                     by an independent route: the eigenvalues of the
                     NON-symmetric product S1 S2 (numpy.linalg.eigvals), whose
                     square roots sum to tr sqrt(S1 S2); and a rank-deficient
                     case (N < dim) with pytorch-fid's 1e-6 offset.
"""
import os
import sys

import numpy as np


def arrays():
    return {
        "f4": np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5,
        "f8": np.array([1.5, -2.25, 1e300, -0.0], dtype=np.float64),
        "f2": np.array([1.0, -0.5, 65504.0, 6e-8], dtype=np.float16),
        "i8": np.array([[-(2 ** 40), 7], [0, 2 ** 53]], dtype=np.int64),
        "i4": np.array([-3, 2 ** 31 - 1], dtype=np.int32),
        "u1": np.array([0, 1, 255], dtype=np.uint8),
        "b1": np.array([True, False, True]),
        "scalar": np.array(3.25),
        "empty": np.zeros((0, 5), dtype=np.float32),
    }


def trace_sqrt_product(s1, s2):
    """tr sqrt(S1 S2) from the eigenvalues of the general product, as scipy's
    sqrtm would see them (real, non-negative up to rounding)."""
    ev = np.linalg.eigvals(s1 @ s2)
    return float(np.sum(np.sqrt(ev.astype(np.complex128))).real)


def frechet(mu1, s1, mu2, s2, offset=0.0):
    # pytorch-fid's formula: the offset enters the square root, the traces stay plain
    d = mu1 - mu2
    eye = np.eye(len(mu1)) * offset
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1 + eye, s2 + eye))


def gaussian_stats(rng, n, dim, scale):
    mix = rng.standard_normal((dim, dim)) * scale
    x = rng.standard_normal((n, dim)) @ mix + rng.standard_normal(dim)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def main(out):
    os.makedirs(out, exist_ok=True)
    a = arrays()
    np.savez(os.path.join(out, "stored.npz"), **a)
    np.savez_compressed(os.path.join(out, "deflated.npz"), **a)

    def flip_in_first_member(src, dst, where):
        # the first local file header is 30 bytes + name + extra, then the
        # member's (stored or compressed) bytes; flip one at fraction `where`
        data = bytearray(open(os.path.join(out, src), "rb").read())
        name_len = int.from_bytes(data[26:28], "little")
        extra_len = int.from_bytes(data[28:30], "little")
        comp_size = int.from_bytes(data[18:22], "little")
        data[30 + name_len + extra_len + int(comp_size * where)] ^= 0x5A
        open(os.path.join(out, dst), "wb").write(data)

    flip_in_first_member("stored.npz", "corrupt_crc.npz", 0.99)        # data byte: CRC mismatch
    flip_in_first_member("deflated.npz", "corrupt_deflate.npz", 0.5)   # broken deflate stream
    data = open(os.path.join(out, "deflated.npz"), "rb").read()
    open(os.path.join(out, "corrupt_trunc.npz"), "wb").write(data[: len(data) // 2])

    np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    for major in (2, 3):
        with open(os.path.join(out, "v%d.npy" % major), "wb") as f:
            np.lib.format.write_array(f, np.arange(6, dtype=np.float64).reshape(3, 2), version=(major, 0))

    rng = np.random.default_rng(20261127)
    dim = 24
    mu1, s1 = gaussian_stats(rng, 400, dim, 0.3)
    mu2, s2 = gaussian_stats(rng, 300, dim, 0.5)
    # rank-deficient: 10 samples in 24 dimensions (rank 9)
    mu3, s3 = gaussian_stats(rng, 10, dim, 0.4)
    np.savez(os.path.join(out, "frechet_ref.npz"),
             mu1=mu1, sigma1=s1, mu2=mu2, sigma2=s2,
             d12=np.array(frechet(mu1, s1, mu2, s2)),
             mu3=mu3, sigma3=s3,
             d13_offset=np.array(frechet(mu1, s1, mu3, s3, offset=1e-6)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/npz")
