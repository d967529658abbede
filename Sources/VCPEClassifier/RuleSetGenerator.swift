import VCPENet

/// Rule sets and traces shaped like ClassBench's: acl (specific destinations, exact
/// service ports), fw (many wildcards and port ranges), ipc (a mix). Addresses grow out of
/// a few dozen base networks, so prefixes nest and overlap as in real sets. Seeded.
public enum RuleSetGenerator {
    public enum Kind: String, Sendable, CaseIterable { case acl, fw, ipc }

    public static func rules(_ kind: Kind, count: Int, seed: UInt64) -> [PacketRule] {
        var g = SplitMix64(state: seed)
        let bases = (0..<48).map { _ in IPPrefix(IPAddress(v4: UInt32.random(in: 0...UInt32.max, using: &g)), Int.random(in: 8...16, using: &g)).canonical }
        func address(_ lengths: [(Int, ClosedRange<Int>)]) -> IPPrefix? {
            let length = pick(lengths, &g)
            guard length > 0 else { return nil }
            // Low-numbered bases are used more, as a few networks dominate real sets.
            let base = bases[min(Int.random(in: 0..<bases.count, using: &g), Int.random(in: 0..<bases.count, using: &g))]
            let bits = UInt32.random(in: 0...UInt32.max, using: &g)
            let keep = base.length >= length ? UInt32(0) : (UInt32.max >> UInt32(base.length))
            let a = (base.network.v4Value & ~keep) | (bits & keep)
            return IPPrefix(IPAddress(v4: a), length).canonical
        }
        let services: [UInt16] = [20, 21, 22, 23, 25, 53, 80, 110, 123, 135, 139, 143, 161, 389, 443, 445, 514, 993, 995, 1433, 1521, 3306, 3389, 5060, 8080]
        func port(_ shape: [(Int, ClosedRange<Int>)]) -> PortRange {
            switch pick(shape, &g) {
            case 1: return PortRange(Bool.random(using: &g) ? services.randomElement(using: &g)! : UInt16.random(in: 1...65535, using: &g))
            case 2: return PortRange(1024, 65535)
            case 3:
                let a = UInt16.random(in: 0...65535, using: &g), b = UInt16.random(in: 0...65535, using: &g)
                return PortRange(min(a, b), max(a, b))
            default: return .all
            }
        }
        // Weights, then what: a prefix length (range), or a port shape 0 any, 1 exact, 2 high, 3 range.
        let (src, dst, protos, sport, dport): ([(Int, ClosedRange<Int>)], [(Int, ClosedRange<Int>)], [(Int, UInt8?)], [(Int, ClosedRange<Int>)], [(Int, ClosedRange<Int>)])
        switch kind {
        case .acl:
            src = [(25, 0...0), (45, 32...32), (20, 24...31), (10, 8...23)]
            dst = [(5, 0...0), (55, 32...32), (30, 24...31), (10, 8...23)]
            protos = [(65, 6), (20, 17), (5, 1), (10, nil)]
            sport = [(95, 0...0), (5, 1...1)]
            dport = [(20, 0...0), (55, 1...1), (15, 2...2), (10, 3...3)]
        case .fw:
            src = [(40, 0...0), (20, 32...32), (20, 16...31), (20, 8...15)]
            dst = [(30, 0...0), (30, 32...32), (25, 16...31), (15, 8...15)]
            protos = [(40, 6), (20, 17), (10, 1), (30, nil)]
            sport = [(70, 0...0), (15, 1...1), (15, 3...3)]
            dport = [(30, 0...0), (35, 1...1), (20, 2...2), (15, 3...3)]
        case .ipc:
            src = [(15, 0...0), (40, 32...32), (30, 16...31), (15, 8...15)]
            dst = [(10, 0...0), (45, 32...32), (30, 16...31), (15, 8...15)]
            protos = [(50, 6), (30, 17), (20, nil)]
            sport = [(80, 0...0), (20, 1...1)]
            dport = [(30, 0...0), (40, 1...1), (10, 2...2), (20, 3...3)]
        }
        return (0..<count).map { _ in
            let proto = pick(protos.map { ($0.0, $0.1.map { Int($0) } ?? -1) }, &g)
            let ported = proto == 6 || proto == 17
            return PacketRule(src: address(src), dst: address(dst), proto: proto < 0 ? nil : UInt8(proto),
                              sport: ported ? port(sport) : .all, dport: ported ? port(dport) : .all)
        }
    }

    /// Packets that mostly fall inside some rule (each field a random point of it), a few at random.
    public static func trace(for rules: [PacketRule], count: Int, seed: UInt64) -> [FlowKey] {
        var g = SplitMix64(state: seed ^ 0x7472_6163_65)
        func point(_ p: IPPrefix?) -> IPAddress {
            let r = UInt32.random(in: 0...UInt32.max, using: &g)
            guard let p else { return IPAddress(v4: r) }
            let host = p.length == 32 ? UInt32(0) : UInt32.max >> UInt32(p.length)
            return IPAddress(v4: p.network.v4Value | (r & host))
        }
        return (0..<count).map { _ in
            guard !rules.isEmpty, Int.random(in: 0..<20, using: &g) != 0 else {
                return FlowKey(src: point(nil), dst: point(nil), proto: [6, 17, 1, 47].randomElement(using: &g)!,
                               sport: .random(in: 0...65535, using: &g), dport: .random(in: 0...65535, using: &g))
            }
            let r = rules.randomElement(using: &g)!
            return FlowKey(src: point(r.src), dst: point(r.dst), proto: r.proto ?? [6, 17].randomElement(using: &g)!,
                           sport: .random(in: r.sport.lo...r.sport.hi, using: &g), dport: .random(in: r.dport.lo...r.dport.hi, using: &g))
        }
    }

    private static func pick<T>(_ weighted: [(Int, T)], _ g: inout SplitMix64) -> T {
        var x = Int.random(in: 0..<weighted.reduce(0) { $0 + $1.0 }, using: &g)
        for (w, v) in weighted { if x < w { return v }; x -= w }
        return weighted.last!.1
    }

    private static func pick(_ weighted: [(Int, ClosedRange<Int>)], _ g: inout SplitMix64) -> Int {
        let r: ClosedRange<Int> = pick(weighted, &g)
        return Int.random(in: r, using: &g)
    }
}
