import CClassifier
import VCPEDescriptor

/// The compiled structure for one address family, in the layout vclass.h describes.
struct CompiledFamily: Sendable {
    let lanes: Int
    /// Per table: min index, slot mask, slot base, and its mask row in `masks`.
    var meta: [(minIndex: UInt32, slotMask: UInt32, slotBase: UInt32)] = []
    var masks: [UInt32] = []
    var slots: [UInt32] = []
    var rules: [UInt32] = []

    var bytes: Int { meta.count * MemoryLayout<vc_table>.stride + (slots.count + rules.count) * 4 }
}

/// Rules to tables (tuple space search with merged tuples, after TupleMerge): a table
/// hashes a few top bits of some fields, and each rule goes to the first table whose bits
/// it fixes, as long as its slot there holds fewer than `bucketLimit` rules; otherwise a
/// new table with the rule's own (rounded-down) bits is made. Each rule is stored once.
enum Compiler {
    /// Rules per slot before a rule goes to another table.
    static let bucketLimit = 8
    /// Address bits a table hashes are rounded down to a multiple of this, to merge tuples.
    static let addressStep = 16

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
                return width == 32 && (family == .v4 ? l < 2 : l != 12) ? b - b % addressStep : (b == width ? b : 0)
            }
        }

        final class Table {
            let bits: [Int]
            let mask: [UInt32]
            var load: [UInt64: Int] = [:]
            var members: [Int] = []
            init(bits: [Int], mask: [UInt32]) { self.bits = bits; self.mask = mask }
        }
        func makeTable(_ bits: [Int]) -> Table {
            var mask = [UInt32](repeating: 0, count: lanes)
            for (l, b) in zip(hashLanes, bits) where b > 0 { mask[l] = UInt32.max << UInt32(32 - b) }
            return Table(bits: bits, mask: mask)
        }
        func slotKey(_ row: [UInt32], _ t: Table) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for l in hashLanes { h = (h ^ UInt64(row[l] & t.mask[l])) &* 0x100_0000_01b3 }
            return h
        }

        var tables: [Table] = []
        if rows.count <= bucketLimit {
            let t = makeTable(hashLanes.map { _ in 0 })
            t.members = Array(rows.indices)
            tables = [t]
        } else {
            for (r, row) in rows.enumerated() {
                let fixed = fixedBits(row)
                var placed = false
                for t in tables where zip(t.bits, fixed).allSatisfy({ $0 <= $1 }) {
                    let k = slotKey(row, t)
                    if t.load[k, default: 0] < bucketLimit {
                        t.load[k, default: 0] += 1
                        t.members.append(r)
                        placed = true
                        break
                    }
                }
                if placed { continue }
                // Its rounded-down tuple is full here: then its exact tuple, then another table.
                let wanted = relaxed(fixed)
                let bits = tables.contains(where: { $0.bits == wanted }) && !tables.contains(where: { $0.bits == fixed }) ? fixed : wanted
                let t = makeTable(bits)
                t.load[slotKey(row, t)] = 1
                t.members = [r]
                tables.append(t)
            }
        }

        // Row 0 and the last row never match: empty slots point at row 0, and the kernels
        // read a slot's second row without checking the slot has one.
        let never = [UInt32](repeating: .max, count: lanes) + [UInt32](repeating: 0, count: lanes)
        out.rules = never
        // Tables by the best rule they hold, so a search can stop early.
        tables.sort { $0.members.min()! < $1.members.min()! }
        for t in tables {
            var distinct = Set<UInt64>()
            for m in t.members { distinct.insert(slotKey(rows[m], t)) }
            var slotCount = 1
            while slotCount < 2 * distinct.count { slotCount <<= 1 }
            var bySlot = [[Int]](repeating: [], count: slotCount)
            for m in t.members {
                let h = rows[m].withUnsafeBufferPointer { r in t.mask.withUnsafeBufferPointer { vc_hash(r.baseAddress, $0.baseAddress, UInt32(lanes)) } }
                bySlot[Int(h) & (slotCount - 1)].append(m)
            }
            out.meta.append((UInt32(indexes[t.members.min()!]), UInt32(slotCount - 1), UInt32(out.slots.count / 2)))
            out.masks += t.mask
            for members in bySlot {
                out.slots += [members.isEmpty ? 0 : UInt32(out.rules.count / (2 * lanes)), UInt32(members.count)]
                for m in members.sorted() { out.rules += rows[m] }
            }
        }
        out.rules += never
        return out
    }
}
