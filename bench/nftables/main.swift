// nftables layer benchmark, against `nft -f` of the same ruleset text in the same run:
// a 10,000-rule table, a table with a 10,000-element interval set, and 100 replaces of a
// 100-rule customer table. Runs inside namespaces this program makes.
import Foundation
import VCPEBenchSupport
import VCPEDescriptor
import VCPENet
import VCPENftables
import VCPESystem

let env = ProcessInfo.processInfo.environment
let ruleCount = Int(env["BENCH_RULES"] ?? "") ?? 10_000
let rounds = Int(env["BENCH_ROUNDS"] ?? "") ?? 3
let replaces = Int(env["BENCH_REPLACES"] ?? "") ?? 100
let tag = "nb\(String(getpid() % 46656, radix: 36))"
let nsMine = "vcpebench-\(tag)-mine", nsNft = "vcpebench-\(tag)-nft"



func manyRules(_ n: Int) -> NftTable {
    let rules = (0..<n).map { (i: Int) -> NftRule in
        let source = IPPrefix(IPAddress(v4: 0x0A00_0000 | UInt32(i) << 8), 24)
        let port = PortRange(UInt16(1024 + i % 60000))
        let proto: TransportProtocol = i % 3 == 0 ? .udp : .tcp
        let verdict: Statement = i % 5 == 0 ? .drop : .accept
        let matches: [Match] = [.iifname(i % 2 == 0 ? "lan" : "wan"), .source(.prefix(source)), .destinationPort(proto, .range(port))]
        return NftRule(matches, [.counter, verdict], comment: "r\(i)")
    }
    return NftTable(family: .inet, name: "bench", chains: [
        NftChain(name: "forward", base: BaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop), rules: rules),
    ])
}

func bigSet(_ n: Int) -> NftTable {
    // Disjoint /28s spread over 10/8: n elements exactly, no merging.
    let elements = (0..<n).map { i in SetElement.prefix(IPPrefix(IPAddress(v4: 0x0A00_0000 | UInt32(i) << 5), 28)) }
    return NftTable(family: .inet, name: "bench", sets: [NftSet(name: "nets", keyType: .ipv4Address, interval: true, elements: elements)],
                    chains: [NftChain(name: "forward", base: BaseChain(type: .filter, hook: .forward, priority: 0, policy: .accept),
                                      rules: [NftRule([.source(.set("nets", .v4))], [.drop])])])
}

func nftFile(_ text: String) throws -> Double {
    try timeProcess(["/usr/sbin/ip", "netns", "exec", nsNft, "nft", "-f"], input: text, suffix: ".nft")
}

/// `ip netns exec` itself costs a few ms: measured and reported, so the ratio can be read both ways.
func nftTrivial() throws -> Double { try nftFile("list tables\n") }

func compare(_ table: NftTable, mine: NftSocket) throws -> (mine: [Double], nft: [Double]) {
    let text = table.nftText
    var a: [Double] = [], b: [Double] = []
    for _ in 0..<rounds {
        try mine.removeTable(family: table.family, name: table.name)
        let t0 = now()
        try mine.replaceTable(table)
        a.append(now() - t0)
        // The same replace nft would do: ensure, delete and re-add the table in one file (one transaction).
        b.append(try nftFile("table inet bench\ndelete table inet bench\n" + text))
    }
    return (a, b)
}

func cleanup() {
    try? NetworkNamespace.remove(nsMine)
    try? NetworkNamespace.remove(nsNft)
}

var out: [String: Any] = ["benchmark": "nftables", "rules": ruleCount, "rounds": rounds]
do {
    try NetworkNamespace.create(nsMine)
    try NetworkNamespace.create(nsNft)
    let mine = try NftSocket(namespace: nsMine)
    let overhead = median(try (0..<rounds).map { _ in try nftTrivial() })

    let r = try compare(manyRules(ruleCount), mine: mine)
    let s = try compare(bigSet(ruleCount), mine: mine)

    // A customer's 100-rule table replaced again and again (a rule change each time).
    var per: [Double] = []
    var t = manyRules(100)
    for i in 0..<replaces {
        t.chains[0].rules[i % 100].statements = [.counter, i % 2 == 0 ? .drop : .accept]
        let t0 = now()
        try mine.replaceTable(t)
        per.append(now() - t0)
    }
    out["rules_table"] = ["vcpe_s": r.mine, "nft_s": r.nft, "speedup": median(zip(r.nft, r.mine).map { $0 / $1 })]
    out["interval_set"] = ["vcpe_s": s.mine, "nft_s": s.nft, "speedup": median(zip(s.nft, s.mine).map { $0 / $1 })]
    out["replace_100_rules"] = ["replaces": replaces, "median_s": median(per), "max_s": per.max()!]
    out["nft_process_overhead_s"] = overhead
} catch {
    cleanup()
    FileHandle.standardError.write("bench failed: \(error)\n".data(using: .utf8)!)
    exit(1)
}
cleanup()
print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
