import Foundation
import Testing
import VCPEClassifier
import VCPENet

/// Every kernel this machine runs agrees with the linear oracle, packet by packet.
@Suite struct EquivalenceTests {
    static let kernels = ClassifierKernel.allCases.filter(\.isAvailable)
    static let seed = ProcessInfo.processInfo.environment["VCPE_FUZZ_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)

    /// Classifies with every kernel and compares with the oracle; returns classifications done.
    static func check(_ rules: [PacketRule], _ keys: [FlowKey], _ what: String) throws -> Int {
        let oracle = LinearClassifier(rules: rules)
        let expected = keys.map(oracle.classify)
        let compiled = try CompiledClassifier(rules)
        var done = 0
        for k in kernels {
            let got = compiled.classify(keys, kernel: k)
            done += keys.count
            if let i = keys.indices.first(where: { got[$0] != expected[$0] }) {
                Issue.record("\(what), kernel \(k), seed \(seed): packet \(keys[i]) got \(got[i].map(String.init) ?? "none"), oracle says \(expected[i].map(String.init) ?? "none") (\(expected[i].map { "\(rules[$0])" } ?? ""))")
                return done
            }
        }
        return done
    }

    @Test func randomOverlappingRuleSets() throws {
        print("classifier equivalence seed \(Self.seed) (VCPE_FUZZ_SEED replays it)")
        #expect(Self.kernels.contains(.scalar) && Self.kernels.count >= 2, "kernels here: \(Self.kernels)")
        var r = RandomRules(seed: Self.seed)
        var done = 0
        for size in [0, 1, 2, 3, 7, 8, 9, 16, 17, 33, 100, 250, 600] {
            for round in 0..<(size < 100 ? 6 : 3) {
                let rules = (0..<size).map { _ in r.rule() }
                let keys = (0..<6000).map { _ in r.key() }
                done += try Self.check(rules, keys, "\(size) random rules, round \(round)")
            }
        }
        print("random sets: \(done) classifications")
        #expect(done >= 600_000)
    }

    @Test(arguments: RuleSetGenerator.Kind.allCases)
    func classBenchLikeSets(_ kind: RuleSetGenerator.Kind) throws {
        var done = 0
        for (n, packets) in [(500, 40_000), (3000, 20_000)] {
            let rules = RuleSetGenerator.rules(kind, count: n, seed: Self.seed &+ UInt64(n))
            done += try Self.check(rules, RuleSetGenerator.trace(for: rules, count: packets, seed: Self.seed), "\(kind) \(n) rules")
        }
        #expect(done >= 120_000)
    }

    @Test func wildcardOnlyAndExtremes() throws {
        let v4 = IPAddress(v4: 0x0A00_0001), v6 = IPAddress("2001:db8::1")!
        let rules = [
            PacketRule(src: IPPrefix(v4, 32), dst: IPPrefix(IPAddress(v4: 0), 0), sport: PortRange(0), dport: PortRange(65535)),
            PacketRule(dst: IPPrefix(v6, 128), proto: 6),
            PacketRule(dst: IPPrefix(v6, 0), dscp: 46),
            PacketRule(ingress: 7),
            PacketRule(),
        ]
        let keys = [
            FlowKey(src: v4, dst: IPAddress(v4: 5), proto: 6, sport: 0, dport: 65535),
            FlowKey(src: v4, dst: IPAddress(v4: 5), proto: 6, sport: 1, dport: 65535),
            FlowKey(src: v6, dst: v6, proto: 6),
            FlowKey(src: v6, dst: v6, proto: 17, dscp: 46),
            FlowKey(src: v6, dst: v6, proto: 17, ingress: 7),
            FlowKey(src: IPAddress(v4: .max), dst: IPAddress(v4: .max), proto: 255, sport: 65535, dport: 65535, dscp: 63, ingress: .max),
        ]
        #expect(try Self.check(rules, keys, "extremes") == keys.count * Self.kernels.count)
        #expect(try CompiledClassifier(rules).classify(keys) == [0, 4, 1, 2, 3, 4])
        #expect(try CompiledClassifier([]).classify(keys) == Array(repeating: nil, count: keys.count))
    }
}

/// The counted search cost replays the kernels' search: it must find what they find.
@Suite struct SearchCostTests {
    @Test func theReplayFindsTheOraclesAnswers() throws {
        var r = RandomRules(seed: EquivalenceTests.seed ^ 0x5EA)
        for size in [0, 1, 9, 200] {
            let rules = (0..<size).map { _ in r.rule() }
            let keys = (0..<2000).map { _ in r.key() }
            let cost = try CompiledClassifier(rules).searchCost(keys)
            #expect(cost.matches == keys.map(LinearClassifier(rules: rules).classify), "\(size) rules, seed \(EquivalenceTests.seed)")
            #expect(size == 0 ? cost.tablesProbed == 0 : cost.tablesProbed > 0)
        }
        let acl = RuleSetGenerator.rules(.acl, count: 2000, seed: 3)
        let cost = try CompiledClassifier(acl).searchCost(RuleSetGenerator.trace(for: acl, count: 2000, seed: 3))
        #expect(cost.rowsCompared > 0 && cost.tablesProbed > 1)
    }
}
