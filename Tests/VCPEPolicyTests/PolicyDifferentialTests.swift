import Foundation
import Testing
import VCPENet
import VCPEDescriptor
import VCPENftables
import VCPEPolicy
import VCPESystem
import VCPETestSupport

/// What vcpe installs for chains/small-office.json's firewall, against a ruleset written by
/// hand from the descriptor (Tests/fixtures/small-office-fw.nft) and loaded by nft: the
/// other tests compare vcpe with nft on vcpe's own text; this one does not use it.
@Suite struct HandWrittenDifferentialTests {
    @Test func theSmallOfficeFirewallIsWhatAnOperatorWouldWrite() throws {
        let file = repositoryRoot.appendingPathComponent("chains/small-office.json")
        let chain = try #require(ChainDecoder.validate([UInt8](try Data(contentsOf: file))).chain)
        let fw = try #require(chain.service(named: "fw"))
        let table = try #require(ServiceTables.table(for: fw, in: chain, topology: Topology.resolve(chain)))
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let mine = try fx.namespace("m"), theirs = try fx.namespace("h")
        try NftSocket(namespace: mine).replaceTable(table)
        try nftLoad(try String(contentsOf: repositoryRoot.appendingPathComponent("Tests/fixtures/small-office-fw.nft"), encoding: .utf8), namespace: theirs)
        let a = try nftRuleset(namespace: mine), b = try nftRuleset(namespace: theirs)
        #expect(a.count == b.count && a.count >= 10, "\(a.count) objects installed, \(b.count) written")
        for (x, y) in zip(a, b) {
            #expect(NSDictionary(dictionary: x).isEqual(to: y), "\(x)\n  != \(y)")
        }
    }
}

/// The translations of every example chain's services, through this layer and through nft.
@Suite struct TranslationDifferentialTests {
    static var translated: [(String, NftTable)] {
        let dir = repositoryRoot.appendingPathComponent("chains")
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }.flatMap { f -> [(String, NftTable)] in
            guard let chain = ChainDecoder.validate([UInt8]((try? Data(contentsOf: f)) ?? Data())).chain else { return [] }
            let topo = Topology.resolve(chain)
            return chain.services.compactMap { s in
                ServiceTables.table(for: s, in: chain, topology: topo).map { ("\(f.lastPathComponent)/\(s.name)", $0) }
            }
        }
    }

    @Test func everyExampleServiceTranslatesToWhatNftInstalls() throws {
        let all = Self.translated
        #expect(all.count >= 9)
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let mine = try fx.namespace("m"), theirs = try fx.namespace("n")
        let nft = try NftSocket(namespace: mine)
        for (name, table) in all {
            try nft.replaceTable(table)
            try nftLoad("flush ruleset\n" + table.nftText, namespace: theirs)
            let a = try nftRuleset(namespace: mine), b = try nftRuleset(namespace: theirs)
            #expect(a.count == b.count, "\(name)")
            for (x, y) in zip(a, b) {
                #expect(NSDictionary(dictionary: x).isEqual(to: y), "\(name): \(x) != \(y)")
            }
            try nft.removeTable(family: table.family, name: table.name)
        }
    }
}
