// The portable kernel: the same algorithm as the vector ones, one lane at a time.
#include "common.h"

uint32_t vc_hash(const uint32_t *key, const uint32_t *mask, uint32_t lanes) {
    uint32_t h = 0;
    for (uint32_t l = 0; l < lanes; l++) h += vc_fold(key[l] & mask[l]) * vc_hash_mul[l];
    return vc_finish(h);
}

#define HASH_GROUP_SCALAR(LANES)                                                                   \
static inline void hash_group##LANES(uint32_t kt[LANES][VC_BATCH], size_t g, const vc_table *tb, uint32_t *slot, uint32_t *hash) { \
    uint32_t h = 0;                                                                                 \
    for (uint32_t k = 0; k < tb->nlanes; k++) h += vc_fold(kt[tb->lane[k]][g] & tb->lane_mask[k]) * vc_hash_mul[tb->lane[k]]; \
    *hash = vc_finish(h);                                                                           \
    *slot = (*hash & tb->slot_mask) + tb->slot_base;                                                \
}
HASH_GROUP_SCALAR(8)
HASH_GROUP_SCALAR(16)

static inline int match_n(const uint32_t *k, const uint32_t *r, uint32_t lanes) {
    uint32_t ok = 1;
    for (uint32_t l = 0; l < lanes; l++) ok &= (k[l] >= r[l]) & (k[l] <= r[lanes + l]);
    return (int)ok;
}
static inline int match8(const uint32_t *k, const uint32_t *r) { return match_n(k, r, 8); }
static inline int match16(const uint32_t *k, const uint32_t *r) { return match_n(k, r, 16); }

VC_DEFINE_FETCH(, fetch1, 1)
VC_DEFINE_BATCH(, batch8, 8, 1, vc_transpose8, vc_live, hash_group8, fetch1, match8)
VC_DEFINE_BATCH(, batch16, 16, 1, vc_transpose16, vc_live, hash_group16, fetch1, match16)
VC_DEFINE_CLASSIFY(, vc_classify_scalar, batch8, batch16)
