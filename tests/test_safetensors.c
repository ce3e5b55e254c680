/*
 * test_safetensors.c: safetensors reading and writing: round trips, the
 * exact byte layout we write, F16/BF16 conversion, atomic saves, and one
 * check per kind of bad input (each must fail with a message that starts
 * with the file name and names the tensor or field).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/errors.h"
#include "model/safetensors.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/deediff-st-XXXXXX");
    cr_assert(mkdtemp(tmpdir), "mkdtemp failed");
}

/* removes tmpdir and what is in it (files, and empty folders one level down) */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(safetensors, .init = make_tmpdir, .fini = remove_tmpdir);

static char *tmp_path(const char *name)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* number of entries in tmpdir (without . and ..) */
static int tmpdir_entries(void)
{
    DIR *d = opendir(tmpdir);
    cr_assert(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* malloc'd file bytes: u64 length of header, header, data_len bytes 0,1,2,... */
static uint8_t *raw_file(const char *header, size_t header_len, size_t data_len, size_t *size)
{
    *size = 8 + header_len + data_len;
    uint8_t *b = malloc(*size);
    uint64_t n = header_len;
    memcpy(b, &n, 8);
    memcpy(b + 8, header, header_len);
    for (size_t i = 0; i < data_len; i++) b[8 + header_len + i] = (uint8_t)i;
    return b;
}

static int parse_header_text(SafeTensors *st, const char *header, size_t data_len)
{
    size_t size;
    uint8_t *b = raw_file(header, strlen(header), data_len, &size);
    return st_parse(st, "bad.safetensors", b, size, 1);
}

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*size + 1);
    cr_assert_eq(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- round trips and layout --------------------------------------------------------- */

Test(safetensors, round_trip_f32_i64_metadata)
{
    float w[6] = {1.5f, -2.25f, 3e-38f, 1e38f, -0.0f, 0.1f};
    int64_t steps[4] = {0, -1, INT64_MAX, INT64_MIN};
    int32_t labels[3] = {7, -7, INT32_MAX};
    float scalar = 42.0f;
    int64_t s_w[2] = {2, 3}, s_steps[1] = {4}, s_labels[1] = {3}, s_empty[2] = {0, 5};

    StWriter *wr = st_writer_new();
    st_writer_add(wr, "w", DT_F32, 2, s_w, w);
    st_writer_add(wr, "steps", DT_I64, 1, s_steps, steps);
    st_writer_add(wr, "labels", DT_I32, 1, s_labels, labels);
    st_writer_add(wr, "scalar", DT_F32, 0, NULL, &scalar);
    st_writer_add(wr, "empty", DT_F32, 2, s_empty, NULL);
    st_writer_meta(wr, "config", "{\"depth\": 12}");
    st_writer_meta(wr, "note", "line1\nline2 \"quoted\" \\ tab\t\x01 ünïcode");
    st_writer_meta(wr, "note2", "first");
    st_writer_meta(wr, "note2", "second");
    w[0] = 99.0f;   /* the writer took a copy */
    cr_assert_eq(st_writer_save(wr, tmp_path("m.safetensors")), 0, "%s", err_msg());
    st_writer_free(wr);

    SafeTensors st;
    cr_assert_eq(st_open(&st, tmp_path("m.safetensors")), 0, "%s", err_msg());
    cr_assert_eq(st.count, 5);
    cr_assert_str_eq(st_metadata(&st, "config"), "{\"depth\": 12}");
    cr_assert_str_eq(st_metadata(&st, "note"), "line1\nline2 \"quoted\" \\ tab\t\x01 ünïcode");
    cr_assert_str_eq(st_metadata(&st, "note2"), "second");
    cr_assert_null(st_metadata(&st, "absent"));

    float got[6];
    cr_assert_eq(st_read_f32(&st, "w", got, 2, s_w), 0, "%s", err_msg());
    cr_assert_eq(f32_bits(got[0]), f32_bits(1.5f));
    for (int i = 1; i < 6; i++) cr_assert_eq(f32_bits(got[i]), f32_bits(w[i]), "w[%d]", i);
    int64_t gi[4];
    cr_assert_eq(st_read_i64(&st, "steps", gi, 1, s_steps), 0, "%s", err_msg());
    for (int i = 0; i < 4; i++) cr_assert_eq(gi[i], steps[i]);
    cr_assert_eq(st_read_i64(&st, "labels", gi, -1, NULL), 0, "%s", err_msg());
    for (int i = 0; i < 3; i++) cr_assert_eq(gi[i], labels[i]);
    float s;
    cr_assert_eq(st_read_f32(&st, "scalar", &s, 0, NULL), 0, "%s", err_msg());
    cr_assert_eq(s, 42.0f);
    cr_assert_eq(st_read_f32(&st, "empty", NULL, 2, s_empty), 0, "%s", err_msg());

    const StEntry *e = st_find(&st, "w");
    cr_assert(e);
    cr_assert_eq(e->dtype, DT_F32);
    cr_assert_eq(e->ndim, 2);
    cr_assert_eq(e->shape[1], 3);
    cr_assert_eq(e->end - e->begin, 24);
    cr_assert_null(st_find(&st, "nope"));
    st_close(&st);
    st_close(&st);   /* harmless twice */
}

Test(safetensors, exact_layout_sorted_names_padded_header)
{
    float b = 1.5f;
    int64_t a = 7, one[1] = {1};
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "b", DT_F32, 1, one, &b);
    st_writer_add(wr, "a", DT_I64, 1, one, &a);
    st_writer_meta(wr, "k", "v");
    st_writer_meta(wr, "config", "{\"x\":1}");
    cr_assert_eq(st_writer_save(wr, tmp_path("m.safetensors")), 0, "%s", err_msg());
    st_writer_free(wr);

    const char *json = "{\"__metadata__\":{\"config\":\"{\\\"x\\\":1}\",\"k\":\"v\"},"
                       "\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    size_t size;
    uint8_t *bytes = read_whole(tmp_path("m.safetensors"), &size);
    uint64_t n;
    memcpy(&n, bytes, 8);
    cr_assert_eq(n % 8, 0, "header length %llu", (unsigned long long)n);
    cr_assert_eq(size, 8 + n + 12);
    cr_assert(n >= strlen(json) && n < strlen(json) + 8);
    cr_assert_eq(memcmp(bytes + 8, json, strlen(json)), 0, "header: %.*s", (int)n, bytes + 8);
    for (size_t i = 8 + strlen(json); i < 8 + n; i++) cr_assert_eq(bytes[i], ' ');
    cr_assert_eq(memcmp(bytes + 8 + n, &a, 8), 0);
    cr_assert_eq(memcmp(bytes + 8 + n + 8, &b, 4), 0);
    free(bytes);
}

Test(safetensors, many_names_sorted_contiguous)
{
    const char *names[] = {"out_blocks.1.mlp", "in_blocks.10.x", "in_blocks.2.x", "a", "Z", "pos_embed"};
    int64_t shape[1] = {3};
    float v[3] = {1, 2, 3};
    StWriter *wr = st_writer_new();
    for (int i = 0; i < 6; i++) st_writer_add(wr, names[i], DT_F32, 1, shape, v);
    cr_assert_eq(st_writer_save(wr, tmp_path("m.safetensors")), 0, "%s", err_msg());
    st_writer_free(wr);

    size_t size;
    uint8_t *bytes = read_whole(tmp_path("m.safetensors"), &size);
    bytes[size] = 0;
    const char *sorted[] = {"Z", "a", "in_blocks.10.x", "in_blocks.2.x", "out_blocks.1.mlp", "pos_embed"};
    const char *prev = (const char *)bytes + 8;
    for (int i = 0; i < 6; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[%d,%d]}",
                 sorted[i], 12 * i, 12 * i + 12);
        const char *at = strstr((const char *)bytes + 8, key);
        cr_assert(at && at >= prev, "'%s' out of order", sorted[i]);
        prev = at;
    }
    free(bytes);
}

Test(safetensors, empty_file_and_zero_size_tensors)
{
    SafeTensors st;
    cr_assert_eq(parse_header_text(&st, "{}", 0), 0, "%s", err_msg());
    cr_assert_eq(st.count, 0);
    cr_assert_null(st_find(&st, "x"));
    st_close(&st);

    /* zero-size tensors sit between others (not inside one), even sharing an offset */
    cr_assert_eq(parse_header_text(&st,
        "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"e2\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[8,8]},"
        "\"e3\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]}}", 8), 0, "%s", err_msg());
    cr_assert_eq(st.count, 4);
    st_close(&st);
}

Test(safetensors, unaligned_data_reads)
{
    /* a header of odd length puts the data at an odd offset */
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}}   ";
    size_t size;
    uint8_t *b = raw_file(h, strlen(h), 16, &size);
    cr_assert_eq((8 + strlen(h)) % 2, 1);
    float w[2] = {3.0f, -0.5f};
    int64_t i = -123456789012345;
    memcpy(b + 8 + strlen(h), w, 8);
    memcpy(b + 8 + strlen(h) + 8, &i, 8);
    SafeTensors st;
    cr_assert_eq(st_parse(&st, "odd.safetensors", b, size, 0), 0, "%s", err_msg());
    float got[2];
    int64_t gi;
    cr_assert_eq(st_read_f32(&st, "w", got, -1, NULL), 0);
    cr_assert_eq(got[0], 3.0f);
    cr_assert_eq(got[1], -0.5f);
    cr_assert_eq(st_read_i64(&st, "i", &gi, -1, NULL), 0);
    cr_assert_eq(gi, i);
    st_close(&st);
    free(b);   /* not owned by st */
}

/* ---- F16 / BF16 -------------------------------------------------------------------- */

Test(safetensors, f16_bf16_to_f32_exact)
{
    static const struct { uint16_t h; uint32_t f; } f16[] = {
        {0x0000, 0x00000000}, {0x8000, 0x80000000},             /* +0, -0 */
        {0x3c00, 0x3f800000}, {0xc000, 0xc0000000},             /* 1, -2 */
        {0x3555, 0x3eaaa000},                                   /* 0.333251953125 */
        {0x7bff, 0x477fe000},                                   /* 65504, largest */
        {0x0400, 0x38800000},                                   /* 2^-14, smallest normal */
        {0x0001, 0x33800000}, {0x8001, 0xb3800000},             /* +-2^-24, smallest subnormal */
        {0x03ff, 0x387fc000},                                   /* largest subnormal */
        {0x0200, 0x38000000},                                   /* 2^-15 */
        {0x7c00, 0x7f800000}, {0xfc00, 0xff800000},             /* +-inf */
        {0x7e00, 0x7fc00000}, {0xfe01, 0xffc02000},             /* quiet NaNs, payload kept */
        {0x7c01, 0x7f802000},                                   /* signalling NaN payload */
    };
    static const struct { uint16_t h; uint32_t f; } bf16[] = {
        {0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x3f80, 0x3f800000},
        {0xc040, 0xc0400000}, {0x4049, 0x40490000},             /* -3, 3.140625 */
        {0x0001, 0x00010000}, {0x807f, 0x807f0000},             /* subnormals */
        {0x7f7f, 0x7f7f0000},                                   /* largest finite */
        {0x7f80, 0x7f800000}, {0xff80, 0xff800000}, {0x7fc1, 0x7fc10000},
    };
    enum { NF = sizeof f16 / sizeof f16[0], NB = sizeof bf16 / sizeof bf16[0] };
    uint16_t hf[NF], hb[NB];
    for (int i = 0; i < NF; i++) hf[i] = f16[i].h;
    for (int i = 0; i < NB; i++) hb[i] = bf16[i].h;
    int64_t sf[1] = {NF}, sb[1] = {NB};
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "half", DT_F16, 1, sf, hf);
    st_writer_add(wr, "brain", DT_BF16, 1, sb, hb);
    cr_assert_eq(st_writer_save(wr, tmp_path("h.safetensors")), 0, "%s", err_msg());
    st_writer_free(wr);

    SafeTensors st;
    cr_assert_eq(st_open(&st, tmp_path("h.safetensors")), 0, "%s", err_msg());
    float got[NF > NB ? NF : NB];
    cr_assert_eq(st_read_f32(&st, "half", got, 1, sf), 0, "%s", err_msg());
    for (int i = 0; i < NF; i++)
        cr_expect_eq(f32_bits(got[i]), f16[i].f, "F16 0x%04x -> 0x%08x, expected 0x%08x",
                     f16[i].h, f32_bits(got[i]), f16[i].f);
    cr_assert_eq(st_read_f32(&st, "brain", got, 1, sb), 0, "%s", err_msg());
    for (int i = 0; i < NB; i++)
        cr_expect_eq(f32_bits(got[i]), bf16[i].f, "BF16 0x%04x -> 0x%08x, expected 0x%08x",
                     bf16[i].h, f32_bits(got[i]), bf16[i].f);
    cr_assert_eq(st_read_i64(&st, "half", NULL, -1, NULL), -1);
    st_close(&st);
}

Test(safetensors, f16_every_finite_value_matches_arithmetic)
{
    /* all 63488 finite halves against sign * man * 2^(exp-25) computed in double */
    enum { N = 65536 };
    uint16_t *h = malloc(N * sizeof *h);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    int64_t shape[1] = {N};
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "h", DT_F16, 1, shape, h);
    cr_assert_eq(st_writer_save(wr, tmp_path("all.safetensors")), 0, "%s", err_msg());
    st_writer_free(wr);
    SafeTensors st;
    cr_assert_eq(st_open(&st, tmp_path("all.safetensors")), 0, "%s", err_msg());
    float *got = malloc(N * sizeof *got);
    cr_assert_eq(st_read_f32(&st, "h", got, 1, shape), 0);
    for (int i = 0; i < N; i++) {
        int exp = (i >> 10) & 31, man = i & 1023;
        double v;
        if (exp == 31) {
            cr_assert(man ? isnan(got[i]) : isinf(got[i]), "0x%04x", i);
            continue;
        }
        v = exp ? ldexp(1024 + man, exp - 25) : ldexp(man, -24);
        if (i & 0x8000) v = -v;
        cr_assert_eq((double)got[i], v, "0x%04x", i);
        cr_assert_eq(!!signbit(got[i]), !!(i & 0x8000), "sign of 0x%04x", i);
    }
    st_close(&st);
    free(got);
    free(h);
}

/* ---- reading errors --------------------------------------------------------------- */

Test(safetensors, read_errors_name_file_tensor_and_problem)
{
    int64_t s3[3] = {1, 65, 128}, want[3] = {1, 66, 128}, s1[1] = {2};
    float *pos = calloc(65 * 128, sizeof(float));
    int64_t ints[2] = {1, 2};
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "pos_embed", DT_F32, 3, s3, pos);
    st_writer_add(wr, "labels", DT_I64, 1, s1, ints);
    cr_assert_eq(st_writer_save(wr, tmp_path("m.safetensors")), 0, "%s", err_msg());
    st_writer_free(wr);

    const char *path = tmp_path("m.safetensors");
    char expect[512];
    SafeTensors st;
    cr_assert_eq(st_open(&st, path), 0, "%s", err_msg());
    float *dst = calloc(66 * 128, sizeof(float));

    cr_assert_eq(st_read_f32(&st, "pos_embed", dst, 3, want), -1);
    snprintf(expect, sizeof expect, "%s: tensor 'pos_embed': shape [1,65,128], expected [1,66,128]", path);
    cr_assert_str_eq(err_msg(), expect);

    cr_assert_eq(st_read_f32(&st, "pos_embed", dst, 2, want), -1);
    cr_assert(strstr(err_msg(), "shape [1,65,128], expected [1,66]"), "%s", err_msg());

    cr_assert_eq(st_read_f32(&st, "norm.weight", dst, -1, NULL), -1);
    snprintf(expect, sizeof expect, "%s: missing tensor 'norm.weight'", path);
    cr_assert_str_eq(err_msg(), expect);

    cr_assert_eq(st_read_f32(&st, "labels", dst, 1, s1), -1);
    snprintf(expect, sizeof expect, "%s: tensor 'labels': dtype I64, expected a float dtype", path);
    cr_assert(strncmp(err_msg(), expect, strlen(expect)) == 0, "%s", err_msg());

    int64_t idst[2];
    cr_assert_eq(st_read_i64(&st, "pos_embed", idst, -1, NULL), -1);
    snprintf(expect, sizeof expect, "%s: tensor 'pos_embed': dtype F32, expected an integer dtype", path);
    cr_assert(strncmp(err_msg(), expect, strlen(expect)) == 0, "%s", err_msg());

    cr_assert_eq(st_read_i64(&st, "labels", idst, 1, s1), 0, "%s", err_msg());
    cr_assert_eq(idst[1], 2);
    cr_assert_eq(st_read_f32(&st, "pos_embed", dst, 3, s3), 0, "%s", err_msg());
    st_close(&st);
    free(dst);
    free(pos);
}

Test(safetensors, open_errors)
{
    SafeTensors st;
    const char *missing = tmp_path("missing.safetensors");
    cr_assert_eq(st_open(&st, missing), -1);
    cr_assert(strncmp(err_msg(), missing, strlen(missing)) == 0, "%s", err_msg());
    cr_assert(strstr(err_msg(), "cannot open"), "%s", err_msg());
    st_close(&st);

    cr_assert_eq(st_open(&st, tmpdir), -1);
    cr_assert(strstr(err_msg(), "not a regular file"), "%s", err_msg());

    const char *tiny = tmp_path("tiny.safetensors");
    FILE *f = fopen(tiny, "wb");
    fwrite("\x02\0\0\0\0", 1, 5, f);
    fclose(f);
    char expect[300];
    snprintf(expect, sizeof expect, "%s: header: file is 5 bytes", tiny);
    cr_assert_eq(st_open(&st, tiny), -1);
    cr_assert(strncmp(err_msg(), expect, strlen(expect)) == 0, "%s", err_msg());

    f = fopen(tiny, "wb");
    fclose(f);
    cr_assert_eq(st_open(&st, tiny), -1);
    cr_assert(strstr(err_msg(), "header: file is 0 bytes"), "%s", err_msg());
}

/* ---- bad headers ------------------------------------------------------------------ */

#define W_OK_ENTRY "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static const struct {
    const char *header;
    size_t data_len;
    const char *expect;   /* follows "bad.safetensors: " */
} bad_headers[] = {
    {"{\"w\":{" W_OK_ENTRY "}", 8, "header: not valid JSON"},
    {"", 0, "header: not valid JSON"},
    {"[1,2]", 0, "header: not a JSON object"},
    {"\"w\"", 0, "header: not a JSON object"},
    {"{} x", 0, "header: text after the JSON object"},
    {"{}{}", 0, "header: text after the JSON object"},
    {"{\"w\x01\":{" W_OK_ENTRY "}}", 8, "header: control byte 0x01"},
    {"{\"w\":3}", 0, "tensor 'w': entry is not a JSON object"},
    {"{\"w\":[1]}", 0, "tensor 'w': entry is not a JSON object"},
    {"{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w': missing dtype"},
    {"{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w': dtype is not a string"},
    {"{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
     "tensor 'w': unsupported dtype 'F8_E4M3'"},
    {"{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "tensor 'w': unsupported dtype 'F64'"},
    {"{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w': unsupported dtype 'f32'"},
    {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 'w': missing shape"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "tensor 'w': shape is not an array"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "tensor 'w': shape[0] is negative"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,12]}}", 12,
     "tensor 'w': shape[1] is not an integer"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "tensor 'w': shape[0] is not a number"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}}", 8, "tensor 'w': shape[0] is not a number"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, "tensor 'w': shape[0] is too large"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape has 7 dimensions, at most 6"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape [4294967296,4294967296,4294967296] has too many elements"},
    {"{\"w\":{\"dtype\":\"I64\",\"shape\":[4503599627370496,4096],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': shape [4503599627370496,4096] has too many elements"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'w': missing data_offsets"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":8}}", 8,
     "tensor 'w': data_offsets is not an array of two integers"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
     "tensor 'w': data_offsets is not an array of two integers"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8,
     "tensor 'w': data_offsets is not an array of two integers"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8,
     "tensor 'w': data_offsets[1] is not a number"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", 8,
     "tensor 'w': data_offsets[0] is not an integer"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
     "tensor 'w': data_offsets[0] is negative"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
     "tensor 'w': data_offsets [8,0] begin after end"},
    {"{\"w\":{" W_OK_ENTRY "}}", 4, "tensor 'w': data_offsets [0,8] run past the end of the data section (4 bytes)"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
     "tensor 'w': data_offsets [0,8] hold 8 bytes, F32 shape [3] needs 12"},
    {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
     "tensor 'w': data_offsets [0,16] hold 16 bytes, BF16 shape [2,2] needs 8"},
    {"{\"w\":{" W_OK_ENTRY ",\"foo\":1}}", 8, "tensor 'w': unknown field 'foo'"},
    {"{\"w\":{" W_OK_ENTRY ",\"dtype\":\"F32\"}}", 8, "tensor 'w': field 'dtype' appears twice"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     "tensor 'b': data_offsets [4,12] overlap tensor 'a' [0,8]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'b': data_offsets [0,8] overlap tensor 'a' [0,8]"},
    {"{\"w\":{" W_OK_ENTRY "},\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8,
     "tensor 'e': data_offsets [4,4] overlap tensor 'w' [0,8]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
     "tensor 'b': data_offsets [8,12] leave a gap of 4 bytes after offset 4"},
    {"{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
     "tensor 'b': data_offsets [4,8] leave a gap of 4 bytes after offset 0"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
     "header: tensors cover 4 of the 8 data bytes"},
    {"{}", 3, "header: tensors cover 0 of the 3 data bytes"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'w': name appears twice"},
    {"{\"__metadata__\":3}", 0, "__metadata__: not a JSON object"},
    {"{\"__metadata__\":[\"a\"]}", 0, "__metadata__: not a JSON object"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__: value of 'k' is not a string"},
    {"{\"__metadata__\":{\"k\":null}}", 0, "__metadata__: value of 'k' is not a string"},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "__metadata__: key 'k' appears twice"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__: appears twice"},
};

Test(safetensors, every_bad_header_names_file_and_field)
{
    int n = sizeof bad_headers / sizeof bad_headers[0];
    for (int i = 0; i < n; i++) {
        SafeTensors st;
        err_clear();
        int rc = parse_header_text(&st, bad_headers[i].header, bad_headers[i].data_len);
        cr_expect_eq(rc, -1, "case %d accepted: %s", i, bad_headers[i].header);
        char expect[512];
        snprintf(expect, sizeof expect, "bad.safetensors: %s", bad_headers[i].expect);
        cr_expect(strncmp(err_msg(), expect, strlen(expect)) == 0,
                  "case %d (%s):\n  got      %s\n  expected %s...", i, bad_headers[i].header,
                  err_msg(), expect);
        cr_expect_null(strchr(err_msg(), '\n'), "case %d: message is not one line", i);
        cr_expect_eq(st.count, 0, "case %d: failed parse left entries", i);
        st_close(&st);
    }
}

Test(safetensors, bad_header_length_and_bytes)
{
    SafeTensors st;
    size_t size;
    uint8_t *b;

    b = malloc(3);
    memcpy(b, "abc", 3);
    cr_assert_eq(st_parse(&st, "bad.safetensors", b, 3, 1), -1);
    cr_assert(strstr(err_msg(), "bad.safetensors: header: file is 3 bytes, too short") == err_msg(),
              "%s", err_msg());

    b = raw_file("{}      ", 8, 2, &size);
    uint64_t n = 100;
    memcpy(b, &n, 8);
    cr_assert_eq(st_parse(&st, "bad.safetensors", b, size, 1), -1);
    cr_assert_str_eq(err_msg(), "bad.safetensors: header: length 100 runs past the end of the file (18 bytes)");

    const uint64_t absurd[] = {200u * 1024 * 1024, UINT64_MAX, (uint64_t)1 << 63};
    for (int i = 0; i < 3; i++) {
        b = raw_file("{}      ", 8, 0, &size);
        memcpy(b, &absurd[i], 8);
        cr_assert_eq(st_parse(&st, "bad.safetensors", b, size, 1), -1);
        cr_assert(strstr(err_msg(), "bad.safetensors: header: length ") == err_msg(), "%s", err_msg());
        cr_assert(strstr(err_msg(), "is absurd"), "%s", err_msg());
    }

    /* a NUL inside the header (cJSON would stop at it) */
    const char h[] = "{\"w\":{" W_OK_ENTRY "}}\0  ";
    b = raw_file(h, sizeof h - 1, 8, &size);
    cr_assert_eq(st_parse(&st, "bad.safetensors", b, size, 1), -1);
    cr_assert(strstr(err_msg(), "bad.safetensors: header: control byte 0x00") == err_msg(), "%s", err_msg());

    /* the same with spaces parses: trailing whitespace is the usual padding */
    b = raw_file("{\"w\":{" W_OK_ENTRY "}} \n\t ", strlen("{\"w\":{" W_OK_ENTRY "}} \n\t "), 8, &size);
    cr_assert_eq(st_parse(&st, "ok.safetensors", b, size, 1), 0, "%s", err_msg());
    st_close(&st);
}

/* ---- atomic save ------------------------------------------------------------------ */

Test(safetensors, save_leaves_no_temporary_and_replaces_atomically)
{
    float v1 = 1.0f, v2 = 2.0f;
    int64_t one[1] = {1};
    const char *path = tmp_path("m.safetensors");
    for (int round = 0; round < 2; round++) {
        StWriter *wr = st_writer_new();
        st_writer_add(wr, "v", DT_F32, 1, one, round ? &v2 : &v1);
        cr_assert_eq(st_writer_save(wr, path), 0, "%s", err_msg());
        st_writer_free(wr);
        cr_assert_eq(tmpdir_entries(), 1, "a temporary file was left behind");
        SafeTensors st;
        float got;
        cr_assert_eq(st_open(&st, path), 0, "%s", err_msg());
        cr_assert_eq(st_read_f32(&st, "v", &got, 1, one), 0);
        cr_assert_eq(got, round ? 2.0f : 1.0f);
        st_close(&st);
    }
}

Test(safetensors, failed_save_names_path_and_touches_nothing)
{
    float v = 1.0f;
    int64_t one[1] = {1};
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "v", DT_F32, 1, one, &v);

    /* a folder that does not exist */
    char path[256];
    snprintf(path, sizeof path, "%s/no-such-dir/m.safetensors", tmpdir);
    cr_assert_eq(st_writer_save(wr, path), -1);
    cr_assert(strncmp(err_msg(), path, strlen(path)) == 0, "%s", err_msg());
    cr_assert_eq(tmpdir_entries(), 0);

    /* the destination is a folder: rename fails, the folder stays, no temp left */
    const char *dest = tmp_path("m.safetensors");
    cr_assert_eq(mkdir(dest, 0755), 0);
    cr_assert_eq(st_writer_save(wr, dest), -1);
    cr_assert(strncmp(err_msg(), dest, strlen(dest)) == 0, "%s", err_msg());
    struct stat sb;
    cr_assert_eq(stat(dest, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    cr_assert_eq(tmpdir_entries(), 1, "a temporary file was left behind");
    rmdir(dest);

    /* the writer is still usable after a failure */
    cr_assert_eq(st_writer_save(wr, dest), 0, "%s", err_msg());
    st_writer_free(wr);
}
