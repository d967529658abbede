import CClassifier
import VCPENet

/// Which C kernel classifies.
public enum ClassifierKernel: String, Sendable, CaseIterable {
    case scalar, sse42, avx2, neon

    var c: vc_kernel {
        switch self {
        case .scalar: VC_SCALAR
        case .sse42: VC_SSE42
        case .avx2: VC_AVX2
        case .neon: VC_NEON
        }
    }

    /// Compiled in for this architecture and supported by this CPU.
    public var isAvailable: Bool { vc_kernel_available(c) != 0 }

    /// The fastest available one.
    public static var best: ClassifierKernel { [.avx2, .neon, .sse42].first { $0.isAvailable } ?? .scalar }
}

/// A rule set compiled for the kernels: immutable, so any number of threads may classify
/// with it at once. Build a new one to change the rules (see LiveClassifier).
public final class CompiledClassifier: @unchecked Sendable {
    public let ruleCount: Int
    let v4: EngineStorage
    let v6: EngineStorage

    public struct TooManyRules: Error, CustomStringConvertible {
        public let count: Int
        public var description: String { "\(count) rules: a compiled set holds at most \(Compiler.maxRules)" }
    }

    public init(_ rules: [PacketRule]) throws(TooManyRules) {
        guard rules.count <= Compiler.maxRules else { throw TooManyRules(count: rules.count) }
        ruleCount = rules.count
        v4 = EngineStorage(Compiler.compile(rules, family: .v4))
        v6 = EngineStorage(Compiler.compile(rules, family: .v6))
    }

    /// Bytes of the compiled structures.
    public var memoryBytes: Int { v4.bytes + v6.bytes }
    public var tableCount: Int { Int(v4.engine.table_count + v6.engine.table_count) }

    /// Classifies rows made by `encode` (all of one family) into rule indexes, UInt32.max
    /// for no match. The data path's call: no allocation.
    public func classify(rows: UnsafePointer<UInt32>, count: Int, family: IPAddress.Family, kernel: ClassifierKernel,
                         into out: UnsafeMutablePointer<UInt32>) {
        let s = family == .v4 ? v4 : v6
        withUnsafePointer(to: s.engine) { vc_classify($0, kernel.c, rows, count, out) }
    }

    /// Convenience for tests and tools: any mix of families.
    public func classify(_ keys: [FlowKey], kernel: ClassifierKernel = .best) -> [Int?] {
        var result = [Int?](repeating: nil, count: keys.count)
        for family in [IPAddress.Family.v4, .v6] {
            let picked = keys.indices.filter { keys[$0].src.family == family }
            guard !picked.isEmpty else { continue }
            let rows = Self.encode(picked.map { keys[$0] }, family: family)
            var out = [UInt32](repeating: 0, count: picked.count)
            classify(rows: rows, count: picked.count, family: family, kernel: kernel, into: &out)
            for (j, i) in picked.enumerated() where out[j] != VC_NO_MATCH { result[i] = Int(out[j]) }
        }
        return result
    }

    /// 32-bit lanes per IPv4 key row.
    public static let v4Lanes = 8

    /// Writes one IPv4 key row for `classify(rows:)` at `row` (`v4Lanes` lanes), allocating nothing.
    @inline(__always)
    public static func encodeV4(src: UInt32, dst: UInt32, proto: UInt8, sport: UInt16, dport: UInt16, dscp: UInt8,
                                ingress: UInt32 = 0, into row: UnsafeMutablePointer<UInt32>) {
        Rows.keyV4(src: src, dst: dst, proto: proto, sport: sport, dport: dport, dscp: dscp, ingress: ingress, into: row)
    }

    /// Key rows for `classify(rows:)`; every key must be of `family`.
    public static func encode(_ keys: [FlowKey], family: IPAddress.Family) -> [UInt32] {
        let lanes = Rows.lanes(family)
        var rows = [UInt32](repeating: 0, count: keys.count * lanes)
        rows.withUnsafeMutableBufferPointer { b in
            for (i, k) in keys.enumerated() {
                precondition(k.src.family == family && k.dst.family == family)
                Rows.key(k, into: b.baseAddress! + i * lanes)
            }
        }
        return rows
    }
}

/// Owns the arrays a vc_engine points into.
final class EngineStorage: @unchecked Sendable {
    let tables: UnsafeMutableBufferPointer<vc_table>
    let slots: UnsafeMutableBufferPointer<UInt32>
    let rules: UnsafeMutableBufferPointer<UInt32>
    let engine: vc_engine
    let slotCount: Int, ruleWords: Int

    var bytes: Int { Int(engine.table_count) * MemoryLayout<vc_table>.stride + (slotCount + ruleWords) * 4 }

    init(_ c: CompiledFamily) {
        func copy(_ a: [UInt32]) -> UnsafeMutableBufferPointer<UInt32> {
            let b = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(a.count, 1))
            _ = b.initialize(from: a)
            return b
        }
        slots = copy(c.slots)
        rules = copy(c.rules)
        tables = .allocate(capacity: max(c.meta.count, 1))
        for (t, m) in c.meta.enumerated() {
            var table = vc_table()
            table.min_index = m.minIndex
            table.slot_mask = m.slotMask
            table.slot_base = m.slotBase
            let mask = c.masks[t * c.lanes..<(t + 1) * c.lanes]
            let hashed = mask.indices.filter { mask[$0] != 0 }
            table.nlanes = UInt32(hashed.count)
            withUnsafeMutableBytes(of: &table.lane) { b in for (k, l) in hashed.enumerated() { b[k] = UInt8(l - mask.startIndex) } }
            withUnsafeMutableBytes(of: &table.lane_mask) { b in
                for (k, l) in hashed.enumerated() { b.storeBytes(of: mask[l], toByteOffset: 4 * k, as: UInt32.self) }
            }
            (tables.baseAddress! + t).initialize(to: table)
        }
        engine = vc_engine(lanes: UInt32(c.lanes), table_count: UInt32(c.meta.count), tables: UnsafePointer(tables.baseAddress!),
                           slots: UnsafePointer(slots.baseAddress!), rules: UnsafePointer(rules.baseAddress!))
        slotCount = c.slots.count
        ruleWords = c.rules.count
    }

    /// Each table's mask as a full row, as vc_hash takes it.
    func maskRows() -> [[UInt32]] {
        UnsafeBufferPointer(start: tables.baseAddress, count: Int(engine.table_count)).map { t in
            var mask = [UInt32](repeating: 0, count: Int(engine.lanes))
            withUnsafeBytes(of: t.lane) { l in withUnsafeBytes(of: t.lane_mask) { m in
                for j in 0..<Int(t.nlanes) { mask[Int(l[j])] = m.load(fromByteOffset: 4 * j, as: UInt32.self) }
            } }
            return mask
        }
    }

    deinit {
        tables.deallocate()
        slots.deallocate()
        rules.deallocate()
    }
}

extension CompiledClassifier {
    /// The compiled structures and keys with their expected results, as the NEON test
    /// driver (Tests/tools/neon/driver.c) reads them: u32 words, host byte order.
    func dump(keys: [FlowKey], expected: [Int?]) -> [UInt32] {
        var out: [UInt32] = [2]
        for (family, s) in [(IPAddress.Family.v4, v4), (.v6, v6)] {
            let picked = keys.indices.filter { keys[$0].src.family == family }
            out += [s.engine.lanes, s.engine.table_count]
            for t in UnsafeBufferPointer(start: s.tables.baseAddress, count: Int(s.engine.table_count)) {
                out += [t.min_index, t.slot_mask, t.slot_base, t.nlanes]
                withUnsafeBytes(of: t.lane) { b in out += b.map { UInt32($0) } }
                withUnsafeBytes(of: t.lane_mask) { b in out += b.bindMemory(to: UInt32.self) }
            }
            out += [UInt32(s.slotCount)] + UnsafeBufferPointer(start: s.slots.baseAddress, count: s.slotCount)
            out += [UInt32(s.ruleWords)] + UnsafeBufferPointer(start: s.rules.baseAddress, count: s.ruleWords)
            out += [UInt32(picked.count)] + Self.encode(picked.map { keys[$0] }, family: family)
            out += picked.map { expected[$0].map(UInt32.init) ?? VC_NO_MATCH }
        }
        return out
    }
}

extension CompiledClassifier {
    /// What a search costs, counted rather than timed (timings on a shared machine vary
    /// more than most changes to the structure do): tables probed and rule rows compared
    /// per packet, replaying the kernels' search in Swift on the compiled structure.
    public struct SearchCost: Sendable {
        public var tablesProbed: Double
        public var rowsCompared: Double
        /// The replay's answers, which must be the oracle's.
        public var matches: [Int?]
    }

    public func searchCost(_ keys: [FlowKey]) -> SearchCost {
        var probes = 0, rows = 0
        var matches: [Int?] = []
        matches.reserveCapacity(keys.count)
        let masks = (v4: v4.maskRows(), v6: v6.maskRows())
        for k in keys {
            let (s, tableMasks) = k.src.family == .v4 ? (v4, masks.v4) : (v6, masks.v6)
            let lanes = Int(s.engine.lanes)
            let key = Self.encode([k], family: k.src.family)
            var best = VC_NO_MATCH
            for (tb, mask) in zip(UnsafeBufferPointer(start: s.tables.baseAddress, count: Int(s.engine.table_count)), tableMasks) {
                if best <= tb.min_index { break }
                probes += 1
                let h = vc_hash(key, mask, UInt32(lanes))
                let w = s.slots[Int(tb.slot_base) + Int(h & tb.slot_mask)]
                guard SlotWord.count(w) > 0, SlotWord.tag(w) == 0 || SlotWord.tag(w) == SlotWord.tag(ofHash: h) else { continue }
                // The kernels compare the slot's first two rows without branches, then go on one by one.
                rows += 2
                let first = SlotWord.first(w)
                for r in first..<first + SlotWord.count(w) {
                    let row = s.rules.baseAddress! + r * 2 * lanes
                    if row[lanes - 1] >= best { break }
                    if r >= first + 2 { rows += 1 }
                    if (0..<lanes).allSatisfy({ row[$0] <= key[$0] && key[$0] <= row[lanes + $0] }) {
                        best = row[lanes - 1]
                        break
                    }
                }
            }
            matches.append(best == VC_NO_MATCH ? nil : Int(best))
        }
        let n = Double(max(keys.count, 1))
        return SearchCost(tablesProbed: Double(probes) / n, rowsCompared: Double(rows) / n, matches: matches)
    }
}
