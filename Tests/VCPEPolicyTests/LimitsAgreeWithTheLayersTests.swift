import Testing
import VCPETestSupport
import VCPEClassifier
@testable import VCPEDescriptor
import VCPENet

/// The descriptor's classifier limits are the layers' own: the count without expanding is
/// the expansion's length, and the expanded limit is the compiler's.
@Suite struct LimitsAgreeWithTheLayersTests {
    @Test func engineRuleCountIsTheExpansionsLength() {
        var rng = SplitMix64(state: 7)
        let v4 = ["10.0.0.0/8", "192.0.2.0/24", "0.0.0.0/0"].map { IPPrefix($0)! }
        let v6 = ["2001:db8::/32", "::/0"].map { IPPrefix($0)! }
        for _ in 0..<500 {
            var m = ClassifierRule.Match()
            m.src = (0..<Int.random(in: 0...4, using: &rng)).map { _ in (v4 + v6).randomElement(using: &rng)! }
            m.dst = (0..<Int.random(in: 0...4, using: &rng)).map { _ in (v4 + v6).randomElement(using: &rng)! }
            m.sport = (0..<Int.random(in: 0...3, using: &rng)).map { PortRange(UInt16($0)) }
            m.dport = (0..<Int.random(in: 0...3, using: &rng)).map { PortRange(UInt16($0)) }
            let rule = ClassifierRule(name: "r", priority: 1, match: m, target: .drop)
            #expect(Limits.engineRules(of: m) == rule.match.packetRules.count, "\(m)")
        }
    }

    @Test func expandedClassifierLimitIsTheCompilers() {
        let rules = [PacketRule](repeating: PacketRule(), count: Limits.classifierEngineRules + 1)
        do {
            _ = try CompiledClassifier(rules)
            Issue.record("the compiler took \(rules.count) rules; Limits.classifierEngineRules is too low")
        } catch {
            #expect(error.description.contains("at most \(Limits.classifierEngineRules)"), "\(error)")
        }
    }
}
