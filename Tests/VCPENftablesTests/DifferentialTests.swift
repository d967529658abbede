import Foundation
import Testing
import VCPENftables
import VCPESystem
import VCPETestSupport

/// What this layer installs must be what `nft -f` installs from the same ruleset's text,
/// as `nft -j list ruleset` shows them.
@Suite struct DifferentialTests {
    @Test(arguments: Corpus.all.map(\.0))
    func sameAsNftFromText(name: String) throws {
        let table = Corpus.all.first { $0.0 == name }!.1
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let mine = try fx.namespace("mine"), theirs = try fx.namespace("nft")
        try NftSocket(namespace: mine).replaceTable(table)
        try nftLoad(table.nftText, namespace: theirs)
        let a = try nftRuleset(namespace: mine), b = try nftRuleset(namespace: theirs)
        #expect(a.count >= 3, "nothing installed: \(a)")
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            let xs = String(decoding: try JSONSerialization.data(withJSONObject: x, options: [.sortedKeys]), as: UTF8.self)
            let ys = String(decoding: try JSONSerialization.data(withJSONObject: y, options: [.sortedKeys]), as: UTF8.self)
            #expect(xs == ys)
        }
    }
}
