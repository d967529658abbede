import Testing
import VCPEClassifier
import VCPEDatapath
import VCPENet

/// The forwarder's decision for a packet is the first descriptor rule (by priority) that
/// matches it, read straight off the descriptor's semantics: lists are "any of", empty
/// lists are "any". Random rule sets and packets, against that oracle.
@Suite struct SteeringTableTests {
    struct Rng {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
    }

    static let paths = ["a", "b", "c"]

    static func config(_ rules: [SteeringRule]) -> SteeringConfig {
        SteeringConfig(customer: "t", namespace: "vcpe-t.classifier",
                       lan: .init(interface: "lan", gateway: IPAddress("10.0.0.1")!, subnet: IPPrefix("10.0.0.0/24")!),
                       paths: paths.enumerated().map { i, p in
                           .init(name: p, interface: "\(p)-out", address: IPAddress(v4: 0xA9FE_0000 + UInt32(2 * i)), peer: IPAddress(v4: 0xA9FE_0001 + UInt32(2 * i)))
                       },
                       defaultPath: "b", rules: rules)
    }

    static func randomRule(_ r: inout Rng, _ i: Int) -> SteeringRule {
        var m = PacketMatch()
        func prefix() -> IPPrefix {
            let len = [16, 24, 28, 32][r.next(4)]
            return IPPrefix(IPAddress(v4: 0x0A00_0000 | UInt32(r.next(4)) << 16 | UInt32(r.next(8)) << 8 | UInt32(r.next(8))), len).canonical
        }
        func ports() -> PortRange {
            let lo = UInt16(r.next(40)), span = UInt16(r.next(3) == 0 ? 0 : r.next(20))
            return PortRange(lo, lo + span)
        }
        m.src = (0..<r.next(3)).map { _ in prefix() }
        // At least one address list: a catch-all rule early on would leave one decision.
        m.dst = (0..<(m.src.isEmpty ? 1 + r.next(2) : r.next(3))).map { _ in prefix() }
        m.proto = [.any, .tcp, .udp, .icmp][r.next(4)]
        if m.proto.hasPorts {
            m.sport = (0..<r.next(2)).map { _ in ports() }
            m.dport = (0..<r.next(3)).map { _ in ports() }
        }
        if r.next(6) == 0 { m.dscp = UInt8(r.next(4)) }
        let target: SteeringRule.Target = r.next(5) == 0 ? .drop : .path(paths[r.next(3)])
        return SteeringRule(name: "r\(i)", priority: i, match: m, target: target)
    }

    static func oracle(_ rules: [SteeringRule], _ k: FlowKey) -> Int32 {
        for rule in rules {
            let m = rule.match
            func any<T>(_ list: [T], _ f: (T) -> Bool) -> Bool { list.isEmpty || list.contains(where: f) }
            guard any(m.src, { $0.contains(k.src) }), any(m.dst, { $0.contains(k.dst) }) else { continue }
            if let p = m.proto.number, p != k.proto { continue }
            if let d = m.dscp, d != k.dscp { continue }
            guard any(m.sport, { $0.contains(k.sport) }), any(m.dport, { $0.contains(k.dport) }) else { continue }
            switch rule.target {
            case .drop: return SteeringTable.drop
            case .path(let p): return Int32(paths.firstIndex(of: p)!)
            }
        }
        return 1  // the default path, "b"
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func decisionsAreTheFirstMatchingDescriptorRule(seed: Int) throws {
        var r = Rng(state: UInt64(seed))
        let rules = (0..<(20 + r.next(200))).map { Self.randomRule(&r, $0) }
        let table = try SteeringTable(Self.config(rules))
        let keys = (0..<4000).map { _ in
            FlowKey(src: IPAddress(v4: 0x0A00_0000 | UInt32(r.next(4)) << 16 | UInt32(r.next(8)) << 8 | UInt32(r.next(8))),
                    dst: IPAddress(v4: 0x0A00_0000 | UInt32(r.next(4)) << 16 | UInt32(r.next(8)) << 8 | UInt32(r.next(8))),
                    proto: [1, 6, 17][r.next(3)], sport: UInt16(r.next(64)), dport: UInt16(r.next(64)), dscp: UInt8(r.next(4)))
        }
        let got = table.decisions(keys)
        var mismatches = 0
        for (k, d) in zip(keys, got) where d != Self.oracle(rules, k) { mismatches += 1 }
        #expect(mismatches == 0, "seed \(seed): \(mismatches) of \(keys.count) packets steered otherwise than the descriptor says")
        #expect(Set(got).count >= 3, "the packets met several decisions")
    }

    @Test func aRuleNamingAPathWithoutALinkIsRefused() {
        var rule = SteeringRule(name: "x", priority: 1, match: .init(), target: .path("nowhere"))
        #expect(throws: SteeringTable.UnknownPath.self) { try SteeringTable(Self.config([rule])) }
        rule.target = .drop
        #expect(throws: Never.self) { try SteeringTable(Self.config([rule])) }
    }
}
