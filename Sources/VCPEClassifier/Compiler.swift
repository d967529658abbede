import CClassifier
import VCPENet

/// The compiled structure for one address family, in the layout vclass.h describes.
struct CompiledFamily: Sendable {
    let lanes: Int
    /// Per table: min index, slot mask, slot base, and its mask row in `masks`.
    var meta: [(minIndex: UInt32, slotMask: UInt32, slotBase: UInt32)] = []
    var masks: [UInt32] = []
    var slots: [UInt32] = []
    var rules: [UInt32] = []
}

/// A slot's word, laid out as vclass.h says (VC_SLOT_*).
enum SlotWord {
    static let maxCount = Int(VC_SLOT_COUNT_MASK)

    static func make(first: Int, count: Int, tag: UInt32) -> UInt32 {
        UInt32(first) | UInt32(count) << UInt32(VC_SLOT_COUNT_SHIFT) | tag << UInt32(VC_SLOT_TAG_SHIFT)
    }
    static func first(_ w: UInt32) -> Int { Int(w & VC_SLOT_FIRST_MASK) }
    static func count(_ w: UInt32) -> Int { Int((w >> UInt32(VC_SLOT_COUNT_SHIFT)) & VC_SLOT_COUNT_MASK) }
    static func tag(_ w: UInt32) -> UInt32 { w >> UInt32(VC_SLOT_TAG_SHIFT) }
    /// The tag a key of this hash has: never 0, which marks a slot shared by several.
    static func tag(ofHash h: UInt32) -> UInt32 { (h | VC_SLOT_TAG_ONE) >> UInt32(VC_SLOT_TAG_SHIFT) }
}

/// Rules to tables (tuple space search with merged tuples, after TupleMerge): a table
/// hashes a few top bits of some fields, and each rule goes to the first table whose bits
/// it fixes, as long as its slot there holds fewer than `bucketLimit` rules; otherwise a
/// new table with the rule's own (rounded-down) bits is made. Each rule is stored once.
enum Compiler {
    /// Rules per slot before a rule goes to another table.
    static let bucketLimit = 8
    /// Slots per distinct key (rounded up to a power of two): sparse, so a key that is not
    /// there usually finds an empty slot or another key's tag and costs no row check.
    static let slotsPerKey = 4
    /// Address bits a table hashes are rounded down to a multiple of this, to merge tuples.
    static let addressStep = 16

    /// Rules of one family a compiled set may hold (a slot addresses VC_SLOT_FIRST_MASK rows).
    /// The one limit, shared with validate (which refuses a descriptor that would expand past it).
    static let maxRules = PacketMatch.maxEngineRules

    static func compile(_ rules: [PacketRule], family: IPAddress.Family) -> CompiledFamily {
        let lanes = Rows.lanes(family)
        var rows: [[UInt32]] = [], indexes: [Int] = []
        for (i, r) in rules.enumerated() where r.family == nil || r.family == family {
            rows.append(Rows.rule(r, index: i, family: family))
            indexes.append(i)
        }
        var out = CompiledFamily(lanes: lanes)
        guard !rows.isEmpty else { return out }

        let hashLanes = Rows.hashLanes(family)
        // Bits of each hash lane every packet the rule matches shares.
        func fixedBits(_ row: [UInt32]) -> [Int] {
            hashLanes.map { l in min(Rows.fieldBits(family, lane: l), (row[l] ^ row[lanes + l]).leadingZeroBitCount) }
        }
        func relaxed(_ bits: [Int]) -> [Int] {
            zip(hashLanes, bits).map { l, b in
                let width = Rows.fieldBits(family, lane: l)
                return width == 32 && (family == .v4 ? l < 2 : l != 12) ? b - b % addressStep : (b == width && width != 16 ? b : 0)
            }
        }

        final class Table {
            let bits: [Int]
            let mask: [UInt32]
            /// Rules per key hash: its distinct keys, and how full each is.
            var load: [UInt32: Int] = [:]
            /// Rows in rule order, with their key hashes.
            var members: [Int] = [], hashes: [UInt32] = []

            func add(_ r: Int, hash: UInt32) {
                load[hash, default: 0] += 1
                members.append(r)
                hashes.append(hash)
            }
            init(bits: [Int], mask: [UInt32]) { self.bits = bits; self.mask = mask }
        }
        func makeTable(_ bits: [Int]) -> Table {
            var mask = [UInt32](repeating: 0, count: lanes)
            for (l, b) in zip(hashLanes, bits) where b > 0 { mask[l] = UInt32.max << UInt32(32 - b) }
            return Table(bits: bits, mask: mask)
        }
        /// The kernels' hash of the rule's key in a table: rules of one key share it.
        func slotKey(_ row: [UInt32], _ t: Table) -> UInt32 {
            row.withUnsafeBufferPointer { r in t.mask.withUnsafeBufferPointer { vc_hash(r.baseAddress, $0.baseAddress, UInt32(lanes)) } }
        }

        var tables: [Table] = []
        if rows.count <= bucketLimit {
            let t = makeTable(hashLanes.map { _ in 0 })
            for r in rows.indices { t.add(r, hash: slotKey(rows[r], t)) }
            tables = [t]
        } else {
            for (r, row) in rows.enumerated() {
                let fixed = fixedBits(row)
                var placed = false
                for t in tables where zip(t.bits, fixed).allSatisfy({ $0 <= $1 }) {
                    let k = slotKey(row, t)
                    if t.load[k, default: 0] < bucketLimit {
                        t.add(r, hash: k)
                        placed = true
                        break
                    }
                }
                if placed { continue }
                // A new table: the rule's rounded-down tuple (ports not hashed), or when that
                // exists and is full for its key, the rule's exact tuple, ports included.
                let wanted = relaxed(fixed)
                let bits = tables.contains(where: { $0.bits == wanted }) ? fixed : wanted
                let t = makeTable(bits)
                t.add(r, hash: slotKey(row, t))
                tables.append(t)
            }
        }

        // Row 0 and the last row never match: empty slots point at row 0, and the kernels
        // read a slot's second row without checking the slot has one.
        let never = [UInt32](repeating: .max, count: lanes) + [UInt32](repeating: 0, count: lanes)
        out.rules = never
        // Tables by the best rule they hold, so a search can stop early.
        tables.sort { $0.members[0] < $1.members[0] }
        for t in tables {
            var slotCount = 1
            while slotCount < slotsPerKey * t.load.count { slotCount <<= 1 }
            var bySlot: [[Int]] = [], tags: [UInt32] = []
            // A slot holds at most SlotWord.maxCount rules; the load limit counts by hash,
            // so more slots always separate them.
            while true {
                bySlot = [[Int]](repeating: [], count: slotCount)
                tags = [UInt32](repeating: 0, count: slotCount)
                for (m, h) in zip(t.members, t.hashes) {
                    let s = Int(h) & (slotCount - 1), tag = SlotWord.tag(ofHash: h)
                    // Rules of keys with different tags in one slot: tag 0, always looked at.
                    tags[s] = bySlot[s].isEmpty || tags[s] == tag ? tag : 0
                    bySlot[s].append(m)
                }
                if bySlot.allSatisfy({ $0.count <= SlotWord.maxCount }) { break }
                slotCount <<= 1
            }
            out.meta.append((UInt32(indexes[t.members[0]]), UInt32(slotCount - 1), UInt32(out.slots.count)))
            out.masks += t.mask
            for (s, members) in bySlot.enumerated() {
                let first = members.isEmpty ? 0 : out.rules.count / (2 * lanes)
                out.slots.append(SlotWord.make(first: first, count: members.count, tag: tags[s]))
                for m in members { out.rules += rows[m] }  // in rule order, as added
            }
        }
        out.rules += never
        return out
    }
}
