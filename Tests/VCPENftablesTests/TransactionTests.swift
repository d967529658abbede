import Foundation
import Testing
import VCPEDescriptor
import VCPENet
import VCPENftables
import VCPESystem
import VCPETestSupport

@Suite struct TransactionTests {
    @Test func aBatchWithABadLastElementLeavesThePreviousTableExactlyAsItWas() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("a")
        let nft = try NftSocket(namespace: ns)
        try nft.replaceTable(Corpus.filter)
        let before = try nftRuleset(namespace: ns)
        var broken = Corpus.filter
        broken.chains[0].rules.removeFirst(3)
        broken.chains[1].rules.append(NftRule([], [.jump("no-such-chain")], comment: "bad"))
        do {
            try nft.replaceTable(broken)
            Issue.record("a jump to a missing chain was accepted")
        } catch {
            #expect(error.errno == .noSuchFileOrDirectory, "\(error)")
            // The error names the object that failed: the last rule of chain audit.
            #expect(error.description.contains("rule 2 (bad) of chain audit"), "\(error)")
        }
        let after = try nftRuleset(namespace: ns)
        #expect(NSArray(array: before).isEqual(to: after))
    }

    @Test func aConcurrentChangeIsReportedNotOverwritten() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("a")
        let nft = try NftSocket(namespace: ns)
        try nft.replaceTable(Corpus.nat)
        let gen = try nft.generation()
        #expect(try nft.generation() == gen)
        // Someone else commits in between.
        try sh("/usr/sbin/ip", ["netns", "exec", ns, "nft", "add", "table", "inet", "someone-else"])
        #expect(try nft.generation() != gen)
        do {
            try nft.replaceTable(Corpus.filter, expectedGeneration: gen)
            Issue.record("stale generation accepted")
        } catch {
            #expect(error.isConcurrentChange, "\(error)")
        }
        #expect(try nft.tables().map(\.name).sorted() == ["someone-else", "vcpe"])
        #expect(try nft.chains(family: .inet, table: "vcpe").isEmpty)  // filter never landed
        try nft.replaceTable(Corpus.filter, expectedGeneration: try nft.generation())
        #expect(try nft.chains(family: .inet, table: "vcpe").count == 2)
    }

    @Test func readBackGivesHandlesCommentsAndCounters() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("a")
        let nft = try NftSocket(namespace: ns)
        try nft.replaceTable(Corpus.filter)
        let rules = try nft.rules(family: .inet, table: "vcpe")
        #expect(rules.count == Corpus.filter.ruleCount)
        #expect(Set(rules.map(\.handle)).count == rules.count)
        #expect(rules.filter { $0.chain == "forward" }.compactMap(\.comment) == ["established", "web", "ssh-in", "default"])
        #expect(rules.first { $0.comment == "web" }?.counterNames == ["web"])
        #expect(rules.first { $0.comment == "default" }?.counter == CounterValue(packets: 0, bytes: 0))
        let chains = try nft.chains(family: .inet, table: "vcpe")
        #expect(chains.first { $0.name == "forward" }?.policy == .drop)
        #expect(chains.first { $0.name == "forward" }?.hook == 2)
        #expect(chains.first { $0.name == "audit" }?.hook == nil)
        #expect(try nft.counterValues(family: .inet, table: "vcpe").keys.sorted() == ["ssh-in", "web"])
        #expect(try nft.rules(family: .inet, table: "absent").isEmpty)
    }

    @Test func namedCountersKeepTheirValuesAcrossAReplace() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("a")
        let nft = try NftSocket(namespace: ns)
        let t = NftTable(family: .inet, name: "vcpe", counters: ["lo-out"], chains: [
            NftChain(name: "output", base: BaseChain(type: .filter, hook: .output, priority: 0, policy: .accept),
                     rules: [NftRule([.oifname("lo")], [.namedCounter("lo-out")])]),
        ])
        try nft.replaceTable(t)
        try sh("/usr/sbin/ip", ["-n", ns, "link", "set", "lo", "up"])
        try sh("/usr/sbin/ip", ["netns", "exec", ns, "ping", "-c", "3", "-i", "0.01", "-W", "1", "127.0.0.1"])
        let counted = try #require(try nft.counterValues(family: .inet, table: "vcpe")["lo-out"])
        #expect(counted.packets >= 6)  // requests and replies both leave through lo
        var changed = t
        changed.chains[0].rules.append(NftRule([.l4proto(6)], [.accept]))
        try nft.replaceTable(changed)
        #expect(try nft.counterValues(family: .inet, table: "vcpe")["lo-out"] == counted)
        try nft.commit([.replace(changed)], resetCounters: true)
        #expect(try nft.counterValues(family: .inet, table: "vcpe")["lo-out"]?.packets == 0)
    }

    @Test func removingIsIdempotentAndTouchesNothingElse() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("a")
        let nft = try NftSocket(namespace: ns)
        try sh("/usr/sbin/ip", ["netns", "exec", ns, "nft", "add", "table", "ip", "theirs"])
        try nft.commit([.replace(Corpus.filter), .replace(Corpus.nat)])
        try nft.removeTable(family: .inet, name: "vcpe")
        try nft.removeTable(family: .inet, name: "vcpe")
        try nft.removeTable(family: .ip6, name: "never-was")
        #expect(try nft.tables().map { "\($0.family.rawValue) \($0.name)" }.sorted() == ["ip theirs", "ip vcpe"])
    }

    /// Random interval sets with overlapping and adjacent members, larger than one message.
    @Test(arguments: [1, 2, 3])
    func largeRandomIntervalSetsMatchNft(seed: UInt64) throws {
        var rng = SplitMix64(state: seed &* 0x9E37_79B9_7F4A_7C15)
        var prefixes: [SetElement] = []
        for _ in 0..<3000 {
            let len = Int.random(in: 8...32, using: &rng)
            prefixes.append(.prefix(IPPrefix(IPAddress(v4: UInt32.random(in: 0...UInt32.max, using: &rng)), len).canonical))
        }
        var ports: [SetElement] = []
        for _ in 0..<500 {
            let lo = UInt16.random(in: 0...65000, using: &rng)
            ports.append(.ports(PortRange(lo, lo + UInt16.random(in: 0...Bool.random(using: &rng).select(0, 40), using: &rng))))
        }
        let t = NftTable(family: .inet, name: "vcpe", sets: [
            NftSet(name: "nets", keyType: .ipv4Address, interval: true, elements: prefixes),
            NftSet(name: "ports", keyType: .inetService, interval: true, elements: ports),
        ], chains: [NftChain(name: "c", rules: [NftRule([.source(.set("nets", .v4)), .destinationPort(.tcp, .set("ports"))], [.drop])])])
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let mine = try fx.namespace("m"), theirs = try fx.namespace("n")
        try NftSocket(namespace: mine).replaceTable(t)
        try nftLoad(t.nftText.replacing("flags interval", with: "flags interval\n\t\tauto-merge"), namespace: theirs)
        let a = try nftRuleset(namespace: mine), b = try nftRuleset(namespace: theirs)
        // A set that is missing, or has no elements, is a failure, not an empty list.
        func elements(_ r: [[String: Any]], _ name: String) throws -> [Any] {
            let set = try #require(r.compactMap { $0["set"] as? [String: Any] }.first { $0["name"] as? String == name }, "no set \(name)")
            return try #require(set["elem"] as? [Any], "set \(name) has no elements")
        }
        func text(_ v: [Any]) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]), as: UTF8.self) }
        for name in ["nets", "ports"] {
            #expect(try text(elements(a, name)) == text(elements(b, name)), "\(name)")
        }
        #expect(try elements(a, "nets").count > 100 && elements(a, "ports").count > 10)
    }
}

extension Bool {
    func select<T>(_ a: T, _ b: T) -> T { self ? a : b }
}
