// SSE4.2 and AVX2 kernels, compiled for those targets function by function so the rest of
// the program runs on any x86-64; vc_kernel_available checks the CPU before use.
#include "common.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define SSE __attribute__((target("sse4.2")))
#define AVX __attribute__((target("avx2")))

// --- SSE4.2: 4 lanes per register ---

SSE static inline __m128i clamp_eq4(__m128i k, const uint32_t *lo, const uint32_t *hi) {
    __m128i c = _mm_min_epu32(_mm_max_epu32(k, _mm_loadu_si128((const __m128i *)lo)), _mm_loadu_si128((const __m128i *)hi));
    return _mm_cmpeq_epi32(c, k);
}

// Slots of 4 keys of the batch at once.
SSE static inline void sse_hash_group(uint32_t kt[][VC_BATCH], size_t g, const vc_table *tb, uint32_t *slot, uint32_t *hash) {
    __m128i h = _mm_setzero_si128();
    for (uint32_t k = 0; k < tb->nlanes; k++) {
        __m128i v = _mm_and_si128(_mm_load_si128((const __m128i *)(kt[tb->lane[k]] + g)), _mm_set1_epi32((int)tb->lane_mask[k]));
        v = _mm_xor_si128(v, _mm_srli_epi32(v, 16));
        v = _mm_xor_si128(v, _mm_srli_epi32(v, 8));
        h = _mm_add_epi32(h, _mm_mullo_epi32(v, _mm_set1_epi32((int)vc_hash_mul[tb->lane[k]])));
    }
    h = _mm_xor_si128(h, _mm_srli_epi32(h, 16));
    h = _mm_mullo_epi32(h, _mm_set1_epi32((int)VC_FINISH_MUL));
    h = _mm_xor_si128(h, _mm_srli_epi32(h, 15));
    _mm_store_si128((__m128i *)hash, h);
    h = _mm_add_epi32(_mm_and_si128(h, _mm_set1_epi32((int)tb->slot_mask)), _mm_set1_epi32((int)tb->slot_base));
    _mm_store_si128((__m128i *)slot, h);
}

SSE static inline int sse_match8(const uint32_t *k, const uint32_t *r) {
    __m128i a = clamp_eq4(_mm_loadu_si128((const __m128i *)k), r, r + 8);
    __m128i b = clamp_eq4(_mm_loadu_si128((const __m128i *)(k + 4)), r + 4, r + 12);
    return _mm_movemask_epi8(_mm_and_si128(a, b)) == 0xFFFF;
}
SSE static inline int sse_match16(const uint32_t *k, const uint32_t *r) {
    __m128i a = clamp_eq4(_mm_loadu_si128((const __m128i *)k), r, r + 16);
    __m128i b = clamp_eq4(_mm_loadu_si128((const __m128i *)(k + 4)), r + 4, r + 20);
    __m128i c = clamp_eq4(_mm_loadu_si128((const __m128i *)(k + 8)), r + 8, r + 24);
    __m128i d = clamp_eq4(_mm_loadu_si128((const __m128i *)(k + 12)), r + 12, r + 28);
    return _mm_movemask_epi8(_mm_and_si128(_mm_and_si128(a, b), _mm_and_si128(c, d))) == 0xFFFF;
}

SSE static inline uint32_t sse_fetch4(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count) {
    return vc_fetch(slots, slot, hash, first, count, 4);
}

SSE void vc_classify_sse42(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out) {
    vc_classify_with(e, keys, count, out, 4, vc_transpose, vc_live, sse_hash_group, sse_fetch4, sse_match8, sse_match16);
}

// --- AVX2: a whole IPv4 row per register ---

AVX static inline __m256i clamp_eq8(__m256i k, const uint32_t *lo, const uint32_t *hi) {
    __m256i c = _mm256_min_epu32(_mm256_max_epu32(k, _mm256_loadu_si256((const __m256i *)lo)), _mm256_loadu_si256((const __m256i *)hi));
    return _mm256_cmpeq_epi32(c, k);
}

// Slots of 8 keys of the batch at once.
AVX static inline void avx_hash_group(uint32_t kt[][VC_BATCH], size_t g, const vc_table *tb, uint32_t *slot, uint32_t *hash) {
    __m256i h = _mm256_setzero_si256();
    for (uint32_t k = 0; k < tb->nlanes; k++) {
        __m256i v = _mm256_and_si256(_mm256_load_si256((const __m256i *)(kt[tb->lane[k]] + g)), _mm256_set1_epi32((int)tb->lane_mask[k]));
        v = _mm256_xor_si256(v, _mm256_srli_epi32(v, 16));
        v = _mm256_xor_si256(v, _mm256_srli_epi32(v, 8));
        h = _mm256_add_epi32(h, _mm256_mullo_epi32(v, _mm256_set1_epi32((int)vc_hash_mul[tb->lane[k]])));
    }
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)VC_FINISH_MUL));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 15));
    _mm256_store_si256((__m256i *)hash, h);
    h = _mm256_add_epi32(_mm256_and_si256(h, _mm256_set1_epi32((int)tb->slot_mask)), _mm256_set1_epi32((int)tb->slot_base));
    _mm256_store_si256((__m256i *)slot, h);
}

AVX static inline int avx_match8(const uint32_t *k, const uint32_t *r) {
    return _mm256_movemask_epi8(clamp_eq8(_mm256_loadu_si256((const __m256i *)k), r, r + 8)) == -1;
}
AVX static inline int avx_match16(const uint32_t *k, const uint32_t *r) {
    __m256i a = clamp_eq8(_mm256_loadu_si256((const __m256i *)k), r, r + 16);
    __m256i b = clamp_eq8(_mm256_loadu_si256((const __m256i *)(k + 8)), r + 8, r + 24);
    return _mm256_movemask_epi8(_mm256_and_si256(a, b)) == -1;
}

// The slots of 8 keys, checked against the keys' hashes at once. Eight scalar loads:
// a gather is slower on the AMD cores this runs on.
AVX static inline uint32_t avx_fetch8(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count) {
    __m256i w = _mm256_setr_epi32((int)slots[slot[0]], (int)slots[slot[1]], (int)slots[slot[2]], (int)slots[slot[3]],
                                  (int)slots[slot[4]], (int)slots[slot[5]], (int)slots[slot[6]], (int)slots[slot[7]]);
    __m256i c = _mm256_and_si256(_mm256_srli_epi32(w, VC_SLOT_COUNT_SHIFT), _mm256_set1_epi32((int)VC_SLOT_COUNT_MASK));
    _mm256_store_si256((__m256i *)first, _mm256_and_si256(w, _mm256_set1_epi32((int)VC_SLOT_FIRST_MASK)));
    _mm256_store_si256((__m256i *)count, c);
    __m256i zero = _mm256_setzero_si256();
    __m256i tag = _mm256_srli_epi32(w, VC_SLOT_TAG_SHIFT);
    __m256i want = _mm256_srli_epi32(_mm256_or_si256(_mm256_load_si256((const __m256i *)hash), _mm256_set1_epi32((int)VC_SLOT_TAG_ONE)), VC_SLOT_TAG_SHIFT);
    __m256i hit = _mm256_andnot_si256(_mm256_cmpeq_epi32(c, zero), _mm256_or_si256(_mm256_cmpeq_epi32(tag, zero), _mm256_cmpeq_epi32(tag, want)));
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(hit));
}

// 8 keys of 8 lanes from rows to columns: the usual unpack/shuffle/permute transpose.
AVX static inline void avx_transpose_8x8(const uint32_t *in, size_t stride, uint32_t *out, size_t out_stride) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps((const float *)(in + i * stride));
    for (int i = 0; i < 8; i += 2) { t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]); t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44); r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44); r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps((float *)(out + i * out_stride), _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps((float *)(out + (i + 4) * out_stride), _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

// Full batches 8 keys by 8 lanes at a time; short ones as vc_transpose does.
AVX static inline void avx_transpose(const uint32_t *keys, size_t n, uint32_t lanes, uint32_t kt[][VC_BATCH]) {
    if (n < VC_BATCH) { vc_transpose(keys, n, lanes, kt); return; }
    for (int b = 0; b < VC_BATCH; b += 8)
        for (uint32_t l = 0; l < lanes; l += 8) avx_transpose_8x8(keys + b * lanes + l, lanes, &kt[l][b], VC_BATCH);
}

// Keys still in play: out > min, 8 at a time (unsigned: max(out, min + 1) == out).
AVX static inline vc_mask avx_live(const uint32_t *out, size_t n, uint32_t min) {
    if (n < VC_BATCH || min == UINT32_MAX) return vc_live(out, n, min);
    __m256i m = _mm256_set1_epi32((int)(min + 1));
    vc_mask live = 0;
    for (int g = 0; g < VC_BATCH; g += 8) {
        __m256i o = _mm256_loadu_si256((const __m256i *)(out + g));
        live |= (vc_mask)(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_max_epu32(o, m), o))) << g;
    }
    return live;
}

AVX void vc_classify_avx2(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out) {
    vc_classify_with(e, keys, count, out, 8, avx_transpose, avx_live, avx_hash_group, avx_fetch8, avx_match8, avx_match16);
}
#endif
