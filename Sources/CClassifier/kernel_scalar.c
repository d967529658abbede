// The portable kernel: the same algorithm as the vector ones, one lane at a time.
#include "common.h"

uint32_t vc_hash(const uint32_t *key, const uint32_t *mask, uint32_t lanes) {
    uint32_t h = 0;
    for (uint32_t l = 0; l < lanes; l++) h += vc_fold(key[l] & mask[l]) * vc_hash_mul[l];
    return vc_finish(h);
}

// The slot of key g of the batch.
static inline void hash_group(uint32_t kt[][VC_BATCH], size_t g, const vc_table *tb, uint32_t *slot, uint32_t *hash) {
    uint32_t h = 0;
    for (uint32_t k = 0; k < tb->nlanes; k++) h += vc_fold(kt[tb->lane[k]][g] & tb->lane_mask[k]) * vc_hash_mul[tb->lane[k]];
    *hash = vc_finish(h);
    *slot = (*hash & tb->slot_mask) + tb->slot_base;
}

static inline uint32_t fetch1(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count) {
    return vc_fetch(slots, slot, hash, first, count, 1);
}

static inline int match_n(const uint32_t *k, const uint32_t *r, uint32_t lanes) {
    uint32_t ok = 1;
    for (uint32_t l = 0; l < lanes; l++) ok &= (k[l] >= r[l]) & (k[l] <= r[lanes + l]);
    return (int)ok;
}
static inline int match8(const uint32_t *k, const uint32_t *r) { return match_n(k, r, 8); }
static inline int match16(const uint32_t *k, const uint32_t *r) { return match_n(k, r, 16); }

void vc_classify_scalar(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out) {
    vc_classify_with(e, keys, count, out, 1, vc_transpose, vc_live, hash_group, fetch1, match8, match16);
}
