// The NEON kernel (arm64): 4 lanes per register; a rule row is checked with a horizontal
// minimum, slots are hashed for 4 keys at once.
#include "common.h"
#if defined(__aarch64__)
#include <arm_neon.h>

static inline uint32x4_t clamp_eq4(uint32x4_t k, const uint32_t *lo, const uint32_t *hi) {
    return vceqq_u32(vminq_u32(vmaxq_u32(k, vld1q_u32(lo)), vld1q_u32(hi)), k);
}

// Slots of 4 keys of the batch at once.
static inline void neon_hash_group(uint32_t kt[][VC_BATCH], size_t g, const vc_table *tb, uint32_t *slot, uint32_t *hash) {
    uint32x4_t h = vdupq_n_u32(0);
    for (uint32_t k = 0; k < tb->nlanes; k++) {
        uint32x4_t v = vandq_u32(vld1q_u32(kt[tb->lane[k]] + g), vdupq_n_u32(tb->lane_mask[k]));
        v = veorq_u32(v, vshrq_n_u32(v, 16));
        v = veorq_u32(v, vshrq_n_u32(v, 8));
        h = vmlaq_n_u32(h, v, vc_hash_mul[tb->lane[k]]);
    }
    h = veorq_u32(h, vshrq_n_u32(h, 16));
    h = vmulq_n_u32(h, VC_FINISH_MUL);
    h = veorq_u32(h, vshrq_n_u32(h, 15));
    vst1q_u32(hash, h);
    vst1q_u32(slot, vaddq_u32(vandq_u32(h, vdupq_n_u32(tb->slot_mask)), vdupq_n_u32(tb->slot_base)));
}

static inline uint32_t neon_fetch4(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count) {
    return vc_fetch(slots, slot, hash, first, count, 4);
}

static inline int neon_match8(const uint32_t *k, const uint32_t *r) {
    uint32x4_t a = clamp_eq4(vld1q_u32(k), r, r + 8), b = clamp_eq4(vld1q_u32(k + 4), r + 4, r + 12);
    return vminvq_u32(vandq_u32(a, b)) == 0xFFFFFFFFu;
}
static inline int neon_match16(const uint32_t *k, const uint32_t *r) {
    uint32x4_t a = clamp_eq4(vld1q_u32(k), r, r + 16), b = clamp_eq4(vld1q_u32(k + 4), r + 4, r + 20);
    uint32x4_t c = clamp_eq4(vld1q_u32(k + 8), r + 8, r + 24), d = clamp_eq4(vld1q_u32(k + 12), r + 12, r + 28);
    return vminvq_u32(vandq_u32(vandq_u32(a, b), vandq_u32(c, d))) == 0xFFFFFFFFu;
}

void vc_classify_neon(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out) {
    vc_classify_with(e, keys, count, out, 4, vc_transpose, vc_live, neon_hash_group, neon_fetch4, neon_match8, neon_match16);
}
#endif
