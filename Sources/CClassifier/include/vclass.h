#ifndef VCPE_VCLASS_H
#define VCPE_VCLASS_H
#include <stddef.h>
#include <stdint.h>

// The compiled classifier, laid out by the Swift compiler (VCPEClassifier/Compiler.swift)
// and only read here. A packet key and every rule are rows of `lanes` 32-bit values
// (8 for IPv4, 16 for IPv6), each field left-aligned so a prefix is counted from the top
// bit. A rule matches when lo[l] <= key[l] <= hi[l] in every lane; the last lane carries
// the rule's index in lo (hi is all ones, and keys set that lane to all ones).
//
// Rules sit in tables (tuple-space search with merged tuples): a table hashes the key
// masked by its mask (lane_mask on the lanes in `lane`, zero elsewhere) and scans the
// rules of that slot, which are sorted by index.
// Tables are sorted by the smallest rule index they hold, so a search stops at the first
// table that cannot hold a better rule than the one found.

#define VC_NO_MATCH 0xFFFFFFFFu

// A slot is one word: first rule row in the low 18 bits, rule count in the next 6, and a
// tag in the top 8: bits 24-31 of the key's hash, or 0 when keys of different hashes
// share the slot (a key's tag is never 0: bit 24 of its hash is set first).
#define VC_SLOT_FIRST_MASK 0x0003FFFFu
#define VC_SLOT_COUNT_SHIFT 18
#define VC_SLOT_COUNT_MASK 0x3Fu
#define VC_SLOT_TAG_SHIFT 24
#define VC_SLOT_TAG_ONE 0x01000000u

typedef struct {
    uint32_t min_index;   // smallest rule index in the table
    uint32_t slot_mask;   // slots - 1 (a power of two)
    uint32_t slot_base;   // first slot of this table in vc_engine.slots
    uint32_t nlanes;      // lanes the table hashes on (its mask is non-zero there)
    uint8_t lane[16];
    uint32_t lane_mask[16];
} vc_table;

typedef struct {
    uint32_t lanes;        // 8 or 16
    uint32_t table_count;
    const vc_table *tables;
    const uint32_t *slots; // one word per slot, see VC_SLOT_*
    const uint32_t *rules; // per rule: lo[lanes] then hi[lanes]
} vc_engine;

typedef enum { VC_SCALAR = 0, VC_SSE42 = 1, VC_AVX2 = 2, VC_NEON = 3 } vc_kernel;

// 1 if this CPU can run the kernel and it was compiled in, else 0.
int vc_kernel_available(vc_kernel k);

// Classifies `count` keys (rows of e->lanes values, contiguous) into out[i]: the index of
// the first matching rule, or VC_NO_MATCH. Any count; batches of 16-64 amortise best.
void vc_classify(const vc_engine *e, vc_kernel k, const uint32_t *keys, size_t count, uint32_t *out);

// The slot hash of a key under a full mask row, for the compiler to place rules where
// the kernels look: finish(sum over lanes of fold(key & mask) * multiplier[lane]).
uint32_t vc_hash(const uint32_t *key, const uint32_t *mask, uint32_t lanes);
#endif
