/*
 * test_npy.c: .npy and .npz reading and writing (suite "npy").
 *
 * NumPy-written fixtures come from tests/reference/make_npz_fixtures.py:
 * tests/fixtures/npz/{stored,deflated}.npz hold the same arrays, stored and
 * deflated; the corrupt_* archives and fortran.npy must be refused.
 * Run from the repository root (fixture paths are relative).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../kernels/errors.h"
#include "../model/fid_stats.h"
#include "../model/npy.h"

#define FIX "tests/fixtures/npz/"

/* a fresh temporary folder per test, removed by the caller */
static char tmpdir[64];
static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/deediff-npy-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}
static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static void expect_error(int rc, const char *needle1, const char *needle2)
{
    cr_assert_eq(rc, -1, "expected an error containing '%s'", needle1);
    cr_assert(strstr(err_msg(), needle1), "error '%s' lacks '%s'", err_msg(), needle1);
    if (needle2) cr_assert(strstr(err_msg(), needle2), "error '%s' lacks '%s'", err_msg(), needle2);
    cr_assert_null(strchr(err_msg(), '\n'));
}

/* ---- round trips through our own writer ---------------------------------------- */

static void roundtrip(char kind, int itemsize, int ndim, const int64_t *shape, const void *data)
{
    NpyArray a = npy_view(kind, itemsize, ndim, shape, data), b;
    size_t size;
    uint8_t *img = npy_encode(&a, &size);
    cr_assert_eq(size % 64, a.nbytes % 64, "header padded to 64 bytes");
    cr_assert_eq(npy_parse("mem.npy", img, size, &b), 0, "%s", err_msg());
    cr_assert_eq(b.kind, kind);
    cr_assert_eq(b.itemsize, itemsize);
    cr_assert_eq(b.ndim, ndim);
    for (int i = 0; i < ndim; i++) cr_assert_eq(b.shape[i], shape[i]);
    cr_assert_eq(b.nbytes, a.nbytes);
    cr_assert(!a.nbytes || !memcmp(b.data, data, a.nbytes));
    npy_free(&b);
    free(img);
}

Test(npy, roundtrip_dtypes)
{
    float f4[6] = {0, -1.5f, 2.25f, 1e-30f, -3e38f, 7};
    double f8[3] = {1.0 / 3, -1e300, 0};
    int64_t i8[4] = {-1, INT64_MAX, INT64_MIN, 5};
    int32_t i4[2] = {-7, 123456};
    uint8_t u1[5] = {0, 1, 2, 254, 255};
    uint16_t f2[2] = {0x3c00, 0xc000};   /* 1.0, -2.0 */
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s4[1] = {4}, s22[2] = {2, 2}, s2[1] = {2}, s5[1] = {5};
    roundtrip('f', 4, 2, s23, f4);
    roundtrip('f', 8, 1, s3, f8);
    roundtrip('i', 8, 2, s22, i8);
    roundtrip('i', 4, 1, s2, i4);
    roundtrip('u', 1, 1, s5, u1);
    roundtrip('f', 2, 1, s2, f2);
    roundtrip('f', 8, 0, NULL, f8);                   /* a 0-d scalar */
    int64_t s0[3] = {0, 4, 1};
    roundtrip('f', 4, 3, s0, NULL);                   /* empty */
    (void)s4;
}

Test(npy, write_and_read_file)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/a.npy", tmpdir);
    double v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {3, 2};
    NpyArray a = npy_view('f', 8, 2, shape, v), b;
    cr_assert_eq(npy_write_file(path, &a), 0, "%s", err_msg());
    cr_assert_eq(npy_read_file(path, &b), 0, "%s", err_msg());
    cr_assert_eq(b.ndim, 2);
    cr_assert_eq(b.shape[0], 3);
    cr_assert(!memcmp(b.data, v, sizeof v));
    npy_free(&b);
    /* no temporary left behind */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0);
    /* an unwritable destination fails cleanly */
    snprintf(path, sizeof path, "%s/missing-dir/a.npy", tmpdir);
    expect_error(npy_write_file(path, &a), "missing-dir", NULL);
    remove_tmpdir();
}

/* every member npz_name lists is found by that name, even one whose own
   name ends in ".npy" (the fuzzer's "s.npy.npy", listed as "s.npy") */
Test(npy, npz_members_are_found_by_their_listed_names)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/names.npz", tmpdir);
    double mu[2] = {1, 2}, s[3] = {3, 4, 5};
    int64_t n2 = 2, n3 = 3;
    NpyArray arrays[2] = {npy_view('f', 8, 1, &n2, mu), npy_view('f', 8, 1, &n3, s)};
    const char *names[2] = {"mu", "s.npy"};
    cr_assert_eq(npz_write(path, 2, names, arrays), 0, "%s", err_msg());
    Npz *z;
    cr_assert_eq(npz_open(path, &z), 0, "%s", err_msg());
    cr_assert_eq(npz_count(z), 2);
    for (int i = 0; i < 2; i++) {
        NpyArray a;
        cr_assert(npz_has(z, npz_name(z, i)), "member %d '%s' not found by its own name", i, npz_name(z, i));
        cr_assert_eq(npz_read(z, npz_name(z, i), &a), 0, "%s", err_msg());
        cr_expect_eq(a.shape[0], i ? 3 : 2);
        npy_free(&a);
    }
    cr_expect(npz_has(z, "mu.npy") && npz_has(z, "s.npy.npy"), "the stored names find their members too");
    npz_close(z);
    remove_tmpdir();
}

Test(npy, conversion)
{
    uint16_t h[5] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x0000};   /* 1, -2, 65504, 2^-24, 0 */
    int64_t s[1] = {5};
    NpyArray a = npy_view('f', 2, 1, s, h);
    double d[5];
    npy_to_f64(&a, d);
    cr_assert_eq(d[0], 1.0);
    cr_assert_eq(d[1], -2.0);
    cr_assert_eq(d[2], 65504.0);
    cr_assert_eq(d[3], ldexp(1, -24));
    cr_assert_eq(d[4], 0.0);
    int8_t i1[3] = {-128, 0, 127};
    int64_t s3[1] = {3};
    a = npy_view('i', 1, 1, s3, i1);
    float f[3];
    npy_to_f32(&a, f);
    cr_assert_eq(f[0], -128.0f);
    cr_assert_eq(f[2], 127.0f);
}

/* ---- NumPy-written archives -------------------------------------------------------- */

static void check_numpy_arrays(const char *path)
{
    Npz *z;
    cr_assert_eq(npz_open(path, &z), 0, "%s", err_msg());
    cr_assert_eq(npz_count(z), 9);
    NpyArray a;

    cr_assert_eq(npz_read(z, "f4", &a), 0, "%s", err_msg());
    cr_assert(a.kind == 'f' && a.itemsize == 4 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    for (int i = 0; i < 6; i++) cr_assert_eq(((float *)a.data)[i], i / 4.0f - 0.5f);
    npy_free(&a);

    cr_assert_eq(npz_read(z, "f8.npy", &a), 0, "%s", err_msg());   /* with the suffix */
    double f8[4] = {1.5, -2.25, 1e300, -0.0};
    cr_assert(!memcmp(a.data, f8, sizeof f8));
    npy_free(&a);

    cr_assert_eq(npz_read(z, "f2", &a), 0, "%s", err_msg());
    double d[4];
    npy_to_f64(&a, d);
    cr_assert(d[0] == 1.0 && d[1] == -0.5 && d[2] == 65504.0);
    cr_assert(fabs(d[3] - 6e-8) < 1e-8);   /* a float16 subnormal */
    npy_free(&a);

    cr_assert_eq(npz_read(z, "i8", &a), 0, "%s", err_msg());
    int64_t i8[4] = {-(1LL << 40), 7, 0, 1LL << 53};
    cr_assert(a.kind == 'i' && a.itemsize == 8 && !memcmp(a.data, i8, sizeof i8));
    npy_free(&a);

    cr_assert_eq(npz_read(z, "i4", &a), 0, "%s", err_msg());
    cr_assert(a.kind == 'i' && a.itemsize == 4 && ((int32_t *)a.data)[1] == INT32_MAX);
    npy_free(&a);

    cr_assert_eq(npz_read(z, "u1", &a), 0, "%s", err_msg());
    cr_assert(a.kind == 'u' && a.itemsize == 1 && ((uint8_t *)a.data)[2] == 255);
    npy_free(&a);

    cr_assert_eq(npz_read(z, "b1", &a), 0, "%s", err_msg());
    cr_assert(a.kind == 'b' && ((uint8_t *)a.data)[0] == 1 && ((uint8_t *)a.data)[1] == 0);
    npy_free(&a);

    cr_assert_eq(npz_read(z, "scalar", &a), 0, "%s", err_msg());
    cr_assert(a.ndim == 0 && npy_numel(&a) == 1 && ((double *)a.data)[0] == 3.25);
    npy_free(&a);

    cr_assert_eq(npz_read(z, "empty", &a), 0, "%s", err_msg());
    cr_assert(a.ndim == 2 && a.shape[0] == 0 && a.shape[1] == 5 && a.nbytes == 0);
    npy_free(&a);

    expect_error(npz_read(z, "sigma", &a), "member 'sigma'", "'f4'");
    npz_close(z);
}

Test(npy, npz_stored) { check_numpy_arrays(FIX "stored.npz"); }
Test(npy, npz_deflated) { check_numpy_arrays(FIX "deflated.npz"); }

Test(npy, npy_versions)
{
    for (int v = 2; v <= 3; v++) {
        char path[64];
        snprintf(path, sizeof path, FIX "v%d.npy", v);
        NpyArray a;
        cr_assert_eq(npy_read_file(path, &a), 0, "%s", err_msg());
        cr_assert(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 2 && ((double *)a.data)[5] == 5.0);
        npy_free(&a);
    }
}

/* ---- malformations: one line naming the file and the field ---------------------------- */

Test(npy, fortran_order_refused)
{
    NpyArray a;
    expect_error(npy_read_file(FIX "fortran.npy", &a), "fortran.npy", "'fortran_order'");
}

Test(npy, corrupt_npz)
{
    NpyArray a;
    expect_error(npz_read_array(FIX "corrupt_crc.npz", "f4", &a), "corrupt_crc.npz: member 'f4'", "CRC");
    expect_error(npz_read_array(FIX "corrupt_deflate.npz", "f4", &a), "corrupt_deflate.npz: member 'f4'", NULL);
    cr_assert_eq(npz_read_array(FIX "corrupt_crc.npz", "f8", &a), 0, "other members still read");
    npy_free(&a);
    int rc = npz_read_array(FIX "corrupt_trunc.npz", "f4", &a);
    expect_error(rc, "corrupt_trunc.npz", NULL);
    expect_error(npz_read_array(FIX "fortran.npy", "f4", &a), "fortran.npy: zip", NULL);
    expect_error(npz_read_array(FIX "no-such.npz", "f4", &a), "no-such.npz: cannot open", NULL);
}

/* a valid image of a (2, 3) f4 array to break in various ways */
static uint8_t *good_image(size_t *size)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    NpyArray a = npy_view('f', 4, 2, shape, v);
    return npy_encode(&a, size);
}

/* an image with a hand-written header dict (version 1.0) and `data` bytes of zeros */
static uint8_t *custom_image(const char *dict, size_t data, size_t *size)
{
    size_t hlen = strlen(dict);
    *size = 10 + hlen + data;
    uint8_t *b = calloc(1, *size);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, dict, hlen);
    return b;
}

static void expect_header_error(const char *dict, size_t data, const char *needle)
{
    size_t size;
    uint8_t *b = custom_image(dict, data, &size);
    NpyArray a;
    expect_error(npy_parse("x.npy", b, size, &a), "x.npy: ", needle);
    free(b);
}

Test(npy, truncated)
{
    size_t size;
    uint8_t *b = good_image(&size);
    NpyArray a;
    size_t cuts[] = {0, 5, 9, 40, size - 24, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        expect_error(npy_parse("x.npy", b, cuts[i], &a), "x.npy: ", "truncated");
    free(b);
}

Test(npy, bad_magic_and_version)
{
    size_t size;
    uint8_t *b = good_image(&size);
    NpyArray a;
    b[1] = 'n';
    expect_error(npy_parse("x.npy", b, size, &a), "x.npy: magic", NULL);
    b[1] = 'N';
    b[6] = 4;
    expect_error(npy_parse("x.npy", b, size, &a), "x.npy: version", "4.0");
    free(b);
}

Test(npy, header_malformations)
{
    expect_header_error("['descr', '<f4']\n", 0, "not a Python dict");
    expect_header_error("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n", 16, "'descr'");
    expect_header_error("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", 4, "big-endian");
    expect_header_error("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", 4, "structured");
    expect_header_error("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", 4, "'fortran_order'");
    expect_header_error("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }\n", 4, "True or False");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, }\n", 4, "'shape' missing");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1), }\n", 4, "not a tuple");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", 4, "'shape'");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", 4, "unexpected key");
    expect_header_error("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n", 4, "twice");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", 4, "after the dict");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 20, "needs 24 bytes");
    expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 28, "needs 24 bytes");
    expect_header_error("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", 8,
                        "overflows");
    /* Python 2 longs and no trailing comma are fine */
    size_t size;
    uint8_t *b = custom_image("{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 1L)}\n", 8, &size);
    NpyArray a;
    cr_assert_eq(npy_parse("x.npy", b, size, &a), 0, "%s", err_msg());
    cr_assert(a.shape[0] == 2 && a.shape[1] == 1);
    npy_free(&a);
    free(b);
}

/* ---- a zip entry that lies about its size ------------------------------------------- */

static uint8_t *put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* writes a one-member zip by hand: `name` holds `data` (comp bytes, stored or
   raw-deflated by the caller) and its entry claims `claimed` uncompressed
   bytes, through zip64 extra fields in both headers */
static void write_lying_zip(const char *path, const char *name, int method, const uint8_t *data,
                            size_t comp, uint32_t crc, uint64_t claimed)
{
    size_t nlen = strlen(name);
    uint8_t *buf = calloc(1, 2 * (46 + nlen + 20) + comp + 22), *p = buf;
    /* local header: both sizes in the zip64 extra field */
    p = put_le(p, 0x04034b50, 4); p = put_le(p, 45, 2); p = put_le(p, 0, 2); p = put_le(p, (uint64_t)method, 2);
    p = put_le(p, 0, 4); p = put_le(p, crc, 4); p = put_le(p, 0xffffffffu, 4); p = put_le(p, 0xffffffffu, 4);
    p = put_le(p, nlen, 2); p = put_le(p, 20, 2);
    memcpy(p, name, nlen); p += nlen;
    p = put_le(p, 1, 2); p = put_le(p, 16, 2); p = put_le(p, claimed, 8); p = put_le(p, comp, 8);
    memcpy(p, data, comp); p += comp;
    /* central directory: the uncompressed size in the zip64 extra field */
    size_t cd = (size_t)(p - buf);
    p = put_le(p, 0x02014b50, 4); p = put_le(p, 45, 2); p = put_le(p, 45, 2); p = put_le(p, 0, 2);
    p = put_le(p, (uint64_t)method, 2); p = put_le(p, 0, 4); p = put_le(p, crc, 4); p = put_le(p, comp, 4);
    p = put_le(p, 0xffffffffu, 4); p = put_le(p, nlen, 2); p = put_le(p, 12, 2); p = put_le(p, 0, 2);
    p = put_le(p, 0, 2); p = put_le(p, 0, 2); p = put_le(p, 0, 4); p = put_le(p, 0, 4);
    memcpy(p, name, nlen); p += nlen;
    p = put_le(p, 1, 2); p = put_le(p, 8, 2); p = put_le(p, claimed, 8);
    size_t cd_size = (size_t)(p - buf) - cd;
    p = put_le(p, 0x06054b50, 4); p = put_le(p, 0, 4); p = put_le(p, 1, 2); p = put_le(p, 1, 2);
    p = put_le(p, cd_size, 4); p = put_le(p, cd, 4); p = put_le(p, 0, 2);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, (size_t)(p - buf), f), (size_t)(p - buf));
    cr_assert_eq(fclose(f), 0);
    free(buf);
}

Test(npy, npz_member_claiming_more_than_it_holds, .timeout = 5)
{
    /* a (2^30,) f8 header matches a claim of 2^33 bytes plus the header's own */
    make_tmpdir();
    size_t hsize;
    uint8_t *header = custom_image("{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824,), }\n", 0, &hsize);
    const uint64_t claimed = ((uint64_t)1 << 33) + hsize;
    uint8_t deflated[256];
    z_stream zs = {0};
    cr_assert_eq(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = header; zs.avail_in = (uInt)hsize;
    zs.next_out = deflated; zs.avail_out = sizeof deflated;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t comp = zs.total_out;
    deflateEnd(&zs);
    uint32_t crc = (uint32_t)crc32(0, header, (uInt)hsize);
    char path[128], msg[256];
    snprintf(path, sizeof path, "%s/lying.npz", tmpdir);

    write_lying_zip(path, "mu.npy", 8, deflated, comp, crc, claimed);
    NpyArray a;
    snprintf(msg, sizeof msg, "lying.npz: member 'mu': claims %llu bytes, more than its %zu compressed bytes can hold",
             (unsigned long long)claimed, comp);
    expect_error(npz_read_array(path, "mu", &a), msg, NULL);
    cr_assert_null(a.data);

    write_lying_zip(path, "mu.npy", 0, header, hsize, crc, claimed);   /* stored */
    expect_error(npz_read_array(path, "mu", &a), "lying.npz: member 'mu': claims", "more than its");
    write_lying_zip(path, "mu.npy", 12, header, hsize, crc, claimed);  /* bzip2 */
    expect_error(npz_read_array(path, "mu", &a), "lying.npz: member 'mu'", "compression method 12");
    free(header);
    remove_tmpdir();
}

/* ---- writing .npz ------------------------------------------------------------------ */

Test(npy, npz_write_roundtrip)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/stats.npz", tmpdir);
    double mu[3] = {1, 2, 3}, sigma[9] = {2, 1, 0, 1, 2, 0, 0, 0, 5};
    int64_t shape[2] = {3, 3};
    NpyArray arrays[2] = {npy_view('f', 8, 1, shape, mu), npy_view('f', 8, 2, shape, sigma)};
    const char *names[2] = {"mu", "sigma"};
    cr_assert_eq(npz_write(path, 2, names, arrays), 0, "%s", err_msg());
    Npz *z;
    cr_assert_eq(npz_open(path, &z), 0, "%s", err_msg());
    cr_assert_eq(npz_count(z), 2);
    cr_assert_str_eq(npz_name(z, 0), "mu");
    cr_assert(npz_has(z, "sigma.npy"));
    NpyArray a;
    cr_assert_eq(npz_read(z, "sigma", &a), 0, "%s", err_msg());
    cr_assert(a.ndim == 2 && !memcmp(a.data, sigma, sizeof sigma));
    npy_free(&a);
    npz_close(z);

    /* the same through fid_stats, with n */
    FidStats s = {3, 1000, mu, sigma}, t;
    cr_assert_eq(fid_stats_save(path, &s), 0, "%s", err_msg());
    cr_assert_eq(fid_stats_load(path, &t), 0, "%s", err_msg());
    cr_assert(t.dim == 3 && t.n == 1000 && !memcmp(t.mu, mu, sizeof mu) && !memcmp(t.sigma, sigma, sizeof sigma));
    fid_stats_free(&t);
    remove_tmpdir();
}

Test(npy, fid_stats_bad_files)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/bad.npz", tmpdir);
    double mu[2] = {0, 0}, sigma[4] = {1, 0.5, 0.4, 1}, neg[4] = {-1, 0, 0, 1};
    float mu4[3] = {0, 0, 0};
    int64_t s2[2] = {2, 2}, s3[1] = {3};
    const char *names[2] = {"mu", "sigma"};
    FidStats t;

    NpyArray asym[2] = {npy_view('f', 8, 1, s2, mu), npy_view('f', 8, 2, s2, sigma)};
    cr_assert_eq(npz_write(path, 2, names, asym), 0);
    expect_error(fid_stats_load(path, &t), "bad.npz: member 'sigma'", "not symmetric");

    NpyArray negvar[2] = {npy_view('f', 8, 1, s2, mu), npy_view('f', 8, 2, s2, neg)};
    cr_assert_eq(npz_write(path, 2, names, negvar), 0);
    expect_error(fid_stats_load(path, &t), "member 'sigma'", "variance");

    NpyArray wrong[2] = {npy_view('f', 4, 1, s3, mu4), npy_view('f', 8, 2, s2, sigma)};
    cr_assert_eq(npz_write(path, 2, names, wrong), 0);
    expect_error(fid_stats_load(path, &t), "member 'sigma'", "shape [2, 2]");

    cr_assert_eq(npz_write(path, 1, names, wrong), 0);
    expect_error(fid_stats_load(path, &t), "member 'sigma': missing", NULL);
    remove_tmpdir();
}

Test(npy, fid_stats_reads_f4_files)
{
    /* pytorch-fid statistics are sometimes saved as float32 */
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/f4.npz", tmpdir);
    float mu[2] = {0.5f, -1}, sigma[4] = {2, 0.25f, 0.25f, 1};
    int64_t s2[2] = {2, 2};
    NpyArray arrays[2] = {npy_view('f', 4, 1, s2, mu), npy_view('f', 4, 2, s2, sigma)};
    const char *names[2] = {"mu", "sigma"};
    cr_assert_eq(npz_write(path, 2, names, arrays), 0);
    FidStats t;
    cr_assert_eq(fid_stats_load(path, &t), 0, "%s", err_msg());
    cr_assert(t.dim == 2 && t.n == 0 && t.mu[1] == -1.0 && t.sigma[1] == 0.25 && t.sigma[2] == 0.25);
    fid_stats_free(&t);
    remove_tmpdir();
}
