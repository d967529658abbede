// Shared by the kernels: the hash (every kernel must agree with vc_hash) and the batch
// driver. A kernel supplies HASH_GROUP, which computes the hashes and slots of GROUP keys
// of the batch at once from the batch transposed to lane-major order (vector hashing
// across packets), FETCH_GROUP, which loads their slots and says which may hold rules for
// them, MATCH, which checks one key against one rule row, and LIVE and TRANSPOSE
// (vc_live, vc_transposeN, or faster ones).
#ifndef VCPE_VCLASS_COMMON_H
#define VCPE_VCLASS_COMMON_H
#include "vclass.h"

#define VC_BATCH 64
typedef uint64_t vc_mask; // one bit per key of a batch

static const uint32_t vc_hash_mul[16] = {
    0x9E3779B1u, 0x85EBCA77u, 0xC2B2AE3Du, 0x27D4EB2Fu, 0x165667B1u, 0xD3A2646Cu, 0xFD7046C5u, 0xB55A4F09u,
    0x7FEB352Du, 0x846CA68Bu, 0x2C1B3C6Du, 0x297A2D39u, 0x85157AF5u, 0x61C88647u, 0x5BD1E995u, 0x1B873593u,
};
#define VC_FINISH_MUL 0x7FEB352Du

// Fields are left-aligned and masked to their top bits, so a lane's low bits are mostly
// zero: folding the high half down first lets the multiply see all of them.
static inline uint32_t vc_fold(uint32_t x) {
    x ^= x >> 16;
    return x ^ (x >> 8);
}

static inline uint32_t vc_finish(uint32_t h) {
    h ^= h >> 16;
    h *= VC_FINISH_MUL;
    h ^= h >> 15;
    return h;
}

// One batch, table by table: the slots of all keys still in play are hashed group by
// group one table ahead and prefetched, then fetched, and the rows of those that may hold
// the key's rules prefetched, then checked. A key leaves once its match beats every rule
// of the tables left (they are sorted by their best rule). The first two rows
// of a slot are checked without branches (an empty slot points at a row that never
// matches; the rules array ends with one too), as slots rarely hold more: a mispredicted
// branch per probe would cost more than the check.
#define VC_DEFINE_BATCH(ATTR, NAME, LANES, GROUP, TRANSPOSE, LIVE, HASH_GROUP, FETCH_GROUP, MATCH) \
ATTR static void NAME(const vc_engine *e, const uint32_t *keys, size_t n, uint32_t *out) {          \
    uint32_t kt[LANES][VC_BATCH] __attribute__((aligned(32)));                                      \
    uint32_t slot[2][VC_BATCH] __attribute__((aligned(32))), hash[2][VC_BATCH] __attribute__((aligned(32))); \
    uint32_t first[VC_BATCH] __attribute__((aligned(32))), count[VC_BATCH] __attribute__((aligned(32))); \
    TRANSPOSE(keys, n, kt);                                                                         \
    for (size_t i = 0; i < n; i++) out[i] = VC_NO_MATCH;                                            \
    if (e->table_count == 0) return;                                                                \
    /* The slots of table t+1 are hashed and prefetched while table t is searched. */               \
    vc_mask live = n == VC_BATCH ? ~(vc_mask)0 : (((vc_mask)1 << n) - 1);                          \
    VC_STAGE(HASH_GROUP, GROUP, kt, e->slots, &e->tables[0], live, slot[0], hash[0]);                             \
    for (uint32_t t = 0, cur = 0; t < e->table_count; t++, cur ^= 1) {                              \
        const vc_table *tb = &e->tables[t];                                                         \
        live = LIVE(out, n, tb->min_index);                                                         \
        if (!live) break;                                                                           \
        if (t + 1 < e->table_count) VC_STAGE(HASH_GROUP, GROUP, kt, e->slots, &e->tables[t + 1], live, slot[cur ^ 1], hash[cur ^ 1]); \
        vc_mask work = 0;                                                                           \
        for (size_t g = 0; g < VC_BATCH; g += GROUP)                                                \
            if ((live >> g) & ((1ull << GROUP) - 1))                                                \
                work |= (vc_mask)FETCH_GROUP(e->slots, slot[cur] + g, hash[cur] + g, first + g, count + g) << g; \
        work &= live;                                                                               \
        for (vc_mask m = work; m; m &= m - 1)                                                       \
            __builtin_prefetch(e->rules + (size_t)first[__builtin_ctzll(m)] * 2 * LANES);           \
        for (vc_mask m = work; m; m &= m - 1) {                                                     \
            uint32_t i = (uint32_t)__builtin_ctzll(m);                                              \
            const uint32_t *key = keys + i * LANES;                                                 \
            const uint32_t *r = e->rules + (size_t)first[i] * 2 * LANES;                            \
            uint32_t a = r[LANES - 1], b = r[3 * LANES - 1];                                        \
            uint32_t best = out[i];                                                                 \
            uint32_t hitb = (uint32_t)MATCH(key, r + 2 * LANES) & (count[i] > 1) & (b < best);      \
            best = hitb ? b : best;                                                                 \
            uint32_t hita = (uint32_t)MATCH(key, r) & (a < best);                                   \
            best = hita ? a : best;                                                                 \
            out[i] = best;                                                                          \
            if (__builtin_expect(count[i] > 2 && !(hita | hitb), 0)) {                              \
                r += 4 * LANES;                                                                     \
                for (uint32_t c = count[i] - 2; c > 0; c--, r += 2 * LANES) {                       \
                    if (r[LANES - 1] >= out[i]) break; /* sorted: the rest are worse */             \
                    if (MATCH(key, r)) { out[i] = r[LANES - 1]; break; }                            \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
}

// Hashes the keys in play for table TB into SLOT/HASH, group by group, and prefetches
// their slots.
#define VC_STAGE(HASH_GROUP, GROUP, KT, SLOTS, TB, LIVE_MASK, SLOT, HASH)                          \
    for (size_t g = 0; g < VC_BATCH; g += GROUP)                                                    \
        if (((LIVE_MASK) >> g) & ((1ull << GROUP) - 1)) {                                           \
            HASH_GROUP(KT, g, (TB), (SLOT) + g, (HASH) + g);                                        \
            for (size_t j = 0; j < GROUP; j++) __builtin_prefetch((SLOTS) + (SLOT)[g + j]);         \
        }

// Loads GROUP slots; returns which may hold the key's rules, one bit each: non-empty, and
// tagged with the key's hash or with 0.
#define VC_DEFINE_FETCH(ATTR, NAME, GROUP)                                                         \
ATTR static inline uint32_t NAME(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count) { \
    uint32_t hit = 0;                                                                               \
    for (uint32_t j = 0; j < GROUP; j++) {                                                          \
        uint32_t w = slots[slot[j]], tag = w >> VC_SLOT_TAG_SHIFT;                                       \
        first[j] = w & VC_SLOT_FIRST_MASK; count[j] = (w >> VC_SLOT_COUNT_SHIFT) & VC_SLOT_COUNT_MASK;             \
        hit |= (uint32_t)(count[j] != 0 && (tag == 0 || tag == (hash[j] | VC_SLOT_TAG_ONE) >> VC_SLOT_TAG_SHIFT)) << j; \
    }                                                                                               \
    return hit;                                                                                     \
}

// The batch in lane-major order, short batches padded with the first key.
#define VC_DEFINE_TRANSPOSE(LANES)                                                                 \
static inline void vc_transpose##LANES(const uint32_t *keys, size_t n, uint32_t kt[LANES][VC_BATCH]) { \
    for (size_t i = 0; i < VC_BATCH; i++) {                                                         \
        const uint32_t *k = keys + (i < n ? i : 0) * LANES;                                         \
        for (size_t l = 0; l < LANES; l++) kt[l][i] = k[l];                                         \
    }                                                                                               \
}
VC_DEFINE_TRANSPOSE(8)
VC_DEFINE_TRANSPOSE(16)

// Which keys of the batch have no match better than `min` yet, one bit each.
static inline vc_mask vc_live(const uint32_t *out, size_t n, uint32_t min) {
    vc_mask live = 0;
    for (size_t i = 0; i < n; i++) live |= (vc_mask)(out[i] > min) << i;
    return live;
}

// The kernel's entry: batches of VC_BATCH keys through the batch function for its width.
#define VC_DEFINE_CLASSIFY(ATTR, NAME, BATCH8, BATCH16)                                            \
ATTR void NAME(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out) {             \
    for (size_t at = 0; at < count; at += VC_BATCH) {                                               \
        size_t n = count - at < VC_BATCH ? count - at : VC_BATCH;                                   \
        if (e->lanes == 8) BATCH8(e, keys + at * 8, n, out + at);                                   \
        else BATCH16(e, keys + at * 16, n, out + at);                                               \
    }                                                                                               \
}

void vc_classify_scalar(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
void vc_classify_sse42(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
void vc_classify_avx2(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
void vc_classify_neon(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
#endif
