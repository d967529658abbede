import VCPEDescriptor
import VCPENet
import VCPENftables

/// BCP 38 where the customer's LAN enters the chain: an IPv4 packet arriving from the LAN
/// side whose source is not in the LAN subnet is dropped before conntrack sees it, whichever
/// service comes first and whatever its NAT (the forwarder and the flow cache deliver to
/// the same interfaces, so steered chains are guarded alike).
extension ServiceTables {
    public static func lanSourceChain(interfaces: [String], subnet: IPPrefix) -> NftChain {
        let from = zone(interfaces.sorted())
        return NftChain(name: "lan-source", base: BaseChain(type: .filter, hook: .prerouting, priority: -300, policy: .accept), rules: [
            NftRule([from, .source(.prefix(subnet))], [.accept], comment: "lan-subnet"),
            NftRule([from, .nfproto(.v4)], [.counter, .drop], comment: "spoofed"),
        ])
    }
}
