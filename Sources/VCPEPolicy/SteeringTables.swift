import VCPEDescriptor
import VCPENet
import VCPENftables

/// The nftables side of steering, for chains with several paths.
///
/// Every service of such a chain remembers in conntrack which path a connection came down
/// (the interface it arrived on) and puts that mark on the packets coming back, so policy
/// routing sends replies up the same path. The classifier's namespace drops the transit
/// frames its kernel would otherwise look at for nothing: the forwarder has them already.
extension ServiceTables {
    /// The conntrack and packet mark of the chain's `index`th path (0 is "no path").
    public static func pathMark(_ index: Int) -> UInt32 { UInt32(index + 1) }

    /// A prerouting chain: arrivals from upstream mark their connection with their path;
    /// every packet of a marked connection carries the mark for the routing decision.
    public static func steeringChain(arrivals: [(interface: String, mark: UInt32)]) -> NftChain {
        var rules = arrivals.map { NftRule([.iifname($0.interface)], [.setCtMark($0.mark)], comment: "path-\($0.mark)") }
        for mark in Set(arrivals.map(\.mark)).sorted() {
            rules.append(NftRule([.ctMark(mark)], [.setMark(mark)], comment: "return-\(mark)"))
        }
        return NftChain(name: "steering", base: BaseChain(type: .filter, hook: .prerouting, priority: -150, policy: .accept), rules: rules)
    }

    /// The classifier namespace's table: on each interface the forwarder reads, IPv4 for the
    /// namespace's own address goes on to its kernel, the rest is dropped at ingress (after
    /// the forwarder's tap has seen it).
    public static func classifierTable(interfaces: [(name: String, address: IPAddress)]) -> NftTable {
        NftTable(family: .netdev, name: tableName, chains: interfaces.map { i in
            NftChain(name: "in-\(i.name)", base: BaseChain(type: .filter, hook: .ingress, priority: 0, policy: .accept, device: i.name), rules: [
                NftRule([.destination(.prefix(IPPrefix(i.address, 32)))], [.accept], comment: "local"),
                NftRule([.nfproto(.v4)], [.counter, .drop], comment: "forwarded-by-vcpe"),
            ])
        })
    }
}
