// Shared by the kernels: the hash (every kernel must agree with vc_hash) and the batch
// driver, vc_batch. A kernel calls it with its own helpers: a hash_group that computes
// the hashes and slots of `group` keys of the batch at once from the batch transposed to
// lane-major order (vector hashing across packets), a fetch that loads their slots and
// says which may hold rules for them, a match that checks one key against one rule row,
// and a live and a transpose (vc_live, vc_transpose, or faster ones). The driver is
// always inlined, so each kernel's helpers are called directly and inlined as before.
#ifndef VCPE_VCLASS_COMMON_H
#define VCPE_VCLASS_COMMON_H
#include "vclass.h"

#define VC_BATCH 64
#define VC_MAX_LANES 16
#define VC_INLINE static inline __attribute__((always_inline))
typedef uint64_t vc_mask; // one bit per key of a batch

// The helpers a kernel hands the driver; kt is the batch in lane-major order.
typedef void vc_transpose_fn(const uint32_t *keys, size_t n, uint32_t lanes, uint32_t kt[][VC_BATCH]);
typedef vc_mask vc_live_fn(const uint32_t *out, size_t n, uint32_t min);
typedef void vc_hash_group_fn(uint32_t kt[][VC_BATCH], size_t g, const vc_table *tb, uint32_t *slot, uint32_t *hash);
typedef uint32_t vc_fetch_fn(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count);
typedef int vc_match_fn(const uint32_t *k, const uint32_t *r);

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

// The batch in lane-major order, short batches padded with the first key.
static inline void vc_transpose(const uint32_t *keys, size_t n, uint32_t lanes, uint32_t kt[][VC_BATCH]) {
    for (size_t i = 0; i < VC_BATCH; i++) {
        const uint32_t *k = keys + (i < n ? i : 0) * lanes;
        for (size_t l = 0; l < lanes; l++) kt[l][i] = k[l];
    }
}

// Which keys of the batch have no match better than `min` yet, one bit each.
static inline vc_mask vc_live(const uint32_t *out, size_t n, uint32_t min) {
    vc_mask live = 0;
    for (size_t i = 0; i < n; i++) live |= (vc_mask)(out[i] > min) << i;
    return live;
}

// Loads `group` slots; returns which may hold the key's rules, one bit each: non-empty,
// and tagged with the key's hash or with 0.
VC_INLINE uint32_t vc_fetch(const uint32_t *slots, const uint32_t *slot, const uint32_t *hash, uint32_t *first,
                            uint32_t *count, uint32_t group) {
    uint32_t hit = 0;
    for (uint32_t j = 0; j < group; j++) {
        uint32_t w = slots[slot[j]], tag = w >> VC_SLOT_TAG_SHIFT;
        first[j] = w & VC_SLOT_FIRST_MASK;
        count[j] = (w >> VC_SLOT_COUNT_SHIFT) & VC_SLOT_COUNT_MASK;
        hit |= (uint32_t)(count[j] != 0 && (tag == 0 || tag == (hash[j] | VC_SLOT_TAG_ONE) >> VC_SLOT_TAG_SHIFT)) << j;
    }
    return hit;
}

// Hashes the keys in play for table `tb` into slot/hash, group by group, and prefetches
// their slots.
VC_INLINE void vc_stage(vc_hash_group_fn *hash_group, uint32_t group, uint32_t kt[][VC_BATCH], const uint32_t *slots,
                        const vc_table *tb, vc_mask live, uint32_t *slot, uint32_t *hash) {
    for (size_t g = 0; g < VC_BATCH; g += group)
        if ((live >> g) & ((1ull << group) - 1)) {
            hash_group(kt, g, tb, slot + g, hash + g);
            for (size_t j = 0; j < group; j++) __builtin_prefetch(slots + slot[g + j]);
        }
}

// Fetches the staged slots of the keys in play; returns the keys whose slot may hold
// their rules.
VC_INLINE vc_mask vc_fetch_slots(vc_fetch_fn *fetch, uint32_t group, const uint32_t *slots, vc_mask live,
                                 const uint32_t *slot, const uint32_t *hash, uint32_t *first, uint32_t *count) {
    vc_mask work = 0;
    for (size_t g = 0; g < VC_BATCH; g += group)
        if ((live >> g) & ((1ull << group) - 1))
            work |= (vc_mask)fetch(slots, slot + g, hash + g, first + g, count + g) << g;
    return work & live;
}

// Checks each key of `work` against the rows of its slot, keeping the best match in out.
// The first two rows of a slot are checked without branches (an empty slot points at a
// row that never matches; the rules array ends with one too), as slots rarely hold more:
// a mispredicted branch per probe would cost more than the check.
VC_INLINE void vc_check(const uint32_t *rules, const uint32_t *keys, uint32_t lanes, vc_match_fn *match, vc_mask work,
                        const uint32_t *first, const uint32_t *count, uint32_t *out) {
    for (vc_mask m = work; m; m &= m - 1)
        __builtin_prefetch(rules + (size_t)first[__builtin_ctzll(m)] * 2 * lanes);
    for (vc_mask m = work; m; m &= m - 1) {
        uint32_t i = (uint32_t)__builtin_ctzll(m);
        const uint32_t *key = keys + i * lanes;
        const uint32_t *r = rules + (size_t)first[i] * 2 * lanes;
        uint32_t a = r[lanes - 1], b = r[3 * lanes - 1];
        uint32_t best = out[i];
        uint32_t hitb = (uint32_t)match(key, r + 2 * lanes) & (count[i] > 1) & (b < best);
        best = hitb ? b : best;
        uint32_t hita = (uint32_t)match(key, r) & (a < best);
        best = hita ? a : best;
        out[i] = best;
        if (__builtin_expect(count[i] > 2 && !(hita | hitb), 0)) {
            r += 4 * lanes;
            for (uint32_t c = count[i] - 2; c > 0; c--, r += 2 * lanes) {
                if (r[lanes - 1] >= out[i]) break; // sorted: the rest are worse
                if (match(key, r)) { out[i] = r[lanes - 1]; break; }
            }
        }
    }
}

// One batch of n <= VC_BATCH keys, table by table: the slots of all keys still in play
// are hashed one table ahead and prefetched, then fetched, and the rows of those that
// may hold the key's rules prefetched, then checked. A key leaves once its match beats
// every rule of the tables left (they are sorted by their best rule).
VC_INLINE void vc_batch(const vc_engine *e, const uint32_t *keys, size_t n, uint32_t *out, uint32_t lanes, uint32_t group,
                        vc_transpose_fn *transpose, vc_live_fn *live_of, vc_hash_group_fn *hash_group,
                        vc_fetch_fn *fetch, vc_match_fn *match) {
    uint32_t kt[VC_MAX_LANES][VC_BATCH] __attribute__((aligned(32)));
    uint32_t slot[2][VC_BATCH] __attribute__((aligned(32))), hash[2][VC_BATCH] __attribute__((aligned(32)));
    uint32_t first[VC_BATCH] __attribute__((aligned(32))), count[VC_BATCH] __attribute__((aligned(32)));
    transpose(keys, n, lanes, kt);
    for (size_t i = 0; i < n; i++) out[i] = VC_NO_MATCH;
    if (e->table_count == 0) return;
    // The slots of table t+1 are hashed and prefetched while table t is searched.
    vc_mask live = n == VC_BATCH ? ~(vc_mask)0 : (((vc_mask)1 << n) - 1);
    vc_stage(hash_group, group, kt, e->slots, &e->tables[0], live, slot[0], hash[0]);
    for (uint32_t t = 0, cur = 0; t < e->table_count; t++, cur ^= 1) {
        const vc_table *tb = &e->tables[t];
        live = live_of(out, n, tb->min_index);
        if (!live) break;
        if (t + 1 < e->table_count)
            vc_stage(hash_group, group, kt, e->slots, &e->tables[t + 1], live, slot[cur ^ 1], hash[cur ^ 1]);
        vc_mask work = vc_fetch_slots(fetch, group, e->slots, live, slot[cur], hash[cur], first, count);
        vc_check(e->rules, keys, lanes, match, work, first, count, out);
    }
}

// A kernel's entry: batches of VC_BATCH keys through vc_batch with its helpers, the match
// for the engine's width.
VC_INLINE void vc_classify_with(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out, uint32_t group,
                                vc_transpose_fn *transpose, vc_live_fn *live_of, vc_hash_group_fn *hash_group,
                                vc_fetch_fn *fetch, vc_match_fn *match8, vc_match_fn *match16) {
    for (size_t at = 0; at < count; at += VC_BATCH) {
        size_t n = count - at < VC_BATCH ? count - at : VC_BATCH;
        if (e->lanes == 8) vc_batch(e, keys + at * 8, n, out + at, 8, group, transpose, live_of, hash_group, fetch, match8);
        else vc_batch(e, keys + at * 16, n, out + at, 16, group, transpose, live_of, hash_group, fetch, match16);
    }
}

void vc_classify_scalar(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
void vc_classify_sse42(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
void vc_classify_avx2(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
void vc_classify_neon(const vc_engine *e, const uint32_t *keys, size_t count, uint32_t *out);
#endif
