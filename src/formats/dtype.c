/* Element type traits and 16-bit float conversions. */
#include "formats/dtype.h"

#include <string.h>

#define Q(nm, b, s) {.name = nm, .blck = b, .type_size = s, .quantized = true}
#define P(nm, st, s) {.name = nm, .st_name = st, .blck = 1, .type_size = s}

static const cke_dtype_traits traits[CKE_DTYPE_COUNT] = {
    [CKE_DT_F32] = P("f32", "F32", 4),     [CKE_DT_F16] = P("f16", "F16", 2),
    [CKE_DT_BF16] = P("bf16", "BF16", 2),  [CKE_DT_F64] = P("f64", "F64", 8),
    [CKE_DT_I8] = P("i8", "I8", 1),        [CKE_DT_I16] = P("i16", "I16", 2),
    [CKE_DT_I32] = P("i32", "I32", 4),     [CKE_DT_I64] = P("i64", "I64", 8),
    [CKE_DT_Q4_0] = Q("q4_0", 32, 18),     [CKE_DT_Q4_1] = Q("q4_1", 32, 20),
    [CKE_DT_Q5_0] = Q("q5_0", 32, 22),     [CKE_DT_Q5_1] = Q("q5_1", 32, 24),
    [CKE_DT_Q8_0] = Q("q8_0", 32, 34),     [CKE_DT_Q8_1] = Q("q8_1", 32, 36),
    [CKE_DT_Q2_K] = Q("q2_K", 256, 84),    [CKE_DT_Q3_K] = Q("q3_K", 256, 110),
    [CKE_DT_Q4_K] = Q("q4_K", 256, 144),   [CKE_DT_Q5_K] = Q("q5_K", 256, 176),
    [CKE_DT_Q6_K] = Q("q6_K", 256, 210),   [CKE_DT_Q8_K] = Q("q8_K", 256, 292),
    [CKE_DT_IQ2_XXS] = Q("iq2_xxs", 256, 66), [CKE_DT_IQ2_XS] = Q("iq2_xs", 256, 74),
    [CKE_DT_IQ3_XXS] = Q("iq3_xxs", 256, 98), [CKE_DT_IQ1_S] = Q("iq1_s", 256, 50),
    [CKE_DT_IQ4_NL] = Q("iq4_nl", 32, 18), [CKE_DT_IQ3_S] = Q("iq3_s", 256, 110),
    [CKE_DT_IQ2_S] = Q("iq2_s", 256, 82),  [CKE_DT_IQ4_XS] = Q("iq4_xs", 256, 136),
    [CKE_DT_IQ1_M] = Q("iq1_m", 256, 56),  [CKE_DT_TQ1_0] = Q("tq1_0", 256, 54),
    [CKE_DT_TQ2_0] = Q("tq2_0", 256, 66),  [CKE_DT_MXFP4] = Q("mxfp4", 32, 17),
    [CKE_DT_U8] = P("u8", "U8", 1),        [CKE_DT_BOOL] = P("bool", "BOOL", 1),
    [CKE_DT_U16] = P("u16", "U16", 2),     [CKE_DT_U32] = P("u32", "U32", 4),
    [CKE_DT_U64] = P("u64", "U64", 8),
    [CKE_DT_F8_E4M3] = P("f8_e4m3", "F8_E4M3", 1), [CKE_DT_F8_E5M2] = P("f8_e5m2", "F8_E5M2", 1),
};

const cke_dtype_traits *cke_dtype_traits_of(int dtype) {
    if (dtype < 0 || dtype >= CKE_DTYPE_COUNT || !traits[dtype].name) return NULL;
    return &traits[dtype];
}

bool cke_dtype_valid(int dtype) { return cke_dtype_traits_of(dtype) != NULL; }

const char *cke_dtype_name(int dtype) {
    const cke_dtype_traits *t = cke_dtype_traits_of(dtype);
    return t ? t->name : "?";
}

int cke_dtype_from_st_name(const char *s) {
    for (int i = 0; i < CKE_DTYPE_COUNT; i++)
        if (traits[i].st_name && !strcmp(traits[i].st_name, s)) return i;
    return -1;
}

cke_status cke_dtype_nbytes(int dtype, int ndim, const int64_t *ne, int64_t *nbytes, cke_err *err) {
    const cke_dtype_traits *t = cke_dtype_traits_of(dtype);
    if (!t) return cke_fail(err, CKE_ERR_UNSUPPORTED, "unknown tensor type %d", dtype);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (ne[i] < 0) return cke_fail(err, CKE_ERR_FORMAT, "negative dimension %d", i);
        if (i == 0 && ne[0] % t->blck != 0)
            return cke_fail(err, CKE_ERR_FORMAT, "row length %lld is not a multiple of %s's block size %lld",
                            (long long)ne[0], t->name, (long long)t->blck);
        int64_t d = i == 0 ? ne[0] / t->blck : ne[i];
        if (__builtin_mul_overflow(n, d, &n))
            return cke_fail(err, CKE_ERR_FORMAT, "tensor size overflows");
    }
    if (ndim <= 0 && t->blck != 1) return cke_fail(err, CKE_ERR_FORMAT, "scalar of a block type");
    if (__builtin_mul_overflow(n, t->type_size, &n))
        return cke_fail(err, CKE_ERR_FORMAT, "tensor size overflows");
    *nbytes = n;
    return CKE_OK;
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float cke_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        float v = (float)man * u2f(0x33800000u);
        return u2f(sign | f2u(v));
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t cke_f32_to_f16(float f) {
    uint32_t u = f2u(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {
        /* subnormal half (or zero): round a * 2^24 to an integer, nearest even */
        float v = u2f(a) * u2f(0x4b800000u); /* * 2^24 */
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m); /* m == 0x400 becomes the smallest normal: correct */
    }
    uint32_t e = ((a >> 23) - 112) << 10, m = (a >> 13) & 0x3ff, rest = a & 0x1fff;
    uint32_t h = e | m;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carry into exponent is correct */
    return (uint16_t)(sign | h);
}

float cke_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t cke_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void cke_f16_to_f32_row(float *dst, const void *src, int64_t n) {
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = cke_f16_to_f32(h);
    }
}

void cke_bf16_to_f32_row(float *dst, const void *src, int64_t n) {
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = cke_bf16_to_f32(h);
    }
}

void cke_f32_to_f16_row(void *dst, const float *src, int64_t n) {
    unsigned char *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = cke_f32_to_f16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

cke_status cke_dtype_to_f32(float *dst, int dtype, const void *src, int64_t n, cke_err *err) {
    switch (dtype) {
    case CKE_DT_F32: memcpy(dst, src, (size_t)n * 4); return CKE_OK;
    case CKE_DT_F16: cke_f16_to_f32_row(dst, src, n); return CKE_OK;
    case CKE_DT_BF16: cke_bf16_to_f32_row(dst, src, n); return CKE_OK;
    case CKE_DT_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, (const unsigned char *)src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return CKE_OK;
    default:
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "no conversion from %s to f32", cke_dtype_name(dtype));
    }
}

int64_t cke_dtype_find_nonfinite(int dtype, const void *src, int64_t n) {
    const uint8_t *p = src;
    /* the exponent field is all ones for Inf and NaN: test the bits, whatever the FPU mode */
    switch (dtype) {
    case CKE_DT_F32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, p + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) return i;
        }
        return -1;
    case CKE_DT_F16:
    case CKE_DT_BF16: {
        const uint16_t e = dtype == CKE_DT_F16 ? 0x7c00 : 0x7f80;
        for (int64_t i = 0; i < n; i++) {
            uint16_t u;
            memcpy(&u, p + 2 * i, 2);
            if ((u & e) == e) return i;
        }
        return -1;
    }
    case CKE_DT_F64:
        for (int64_t i = 0; i < n; i++) {
            uint64_t u;
            memcpy(&u, p + 8 * i, 8);
            if ((u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull) return i;
        }
        return -1;
    default: return -1;
    }
}
