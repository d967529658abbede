import VCPEDescriptor
import VCPENet
import VCPENftables

/// Hand-written rulesets covering what the layer can express: the differential test
/// installs each through this layer and through `nft -f`, and compares.
enum Corpus {
    static func p(_ s: String) -> IPPrefix { IPPrefix(s, allowBare: true)! }

    static let filter = NftTable(
        family: .inet, name: "vcpe",
        counters: ["web", "ssh-in"],
        sets: [NftSet(name: "blocked", keyType: .ipv4Address, interval: true,
                      elements: [.prefix(p("10.0.0.0/8")), .prefix(p("192.168.1.0/24")), .prefix(p("172.16.5.5/32"))]),
               NftSet(name: "admin-ports", keyType: .inetService, interval: false, elements: [.ports(PortRange(22)), .ports(PortRange(8443))])],
        chains: [
            NftChain(name: "forward", base: BaseChain(type: .filter, hook: .forward, priority: 0, policy: .drop), rules: [
                NftRule([.ctState([.established, .related])], [.accept], comment: "established"),
                NftRule([.ctState([.invalid])], [.drop]),
                NftRule([.iifname("wan"), .ctStatus([.dnat])], [.accept]),
                NftRule([.ctStatus([.snat, .dnat])], [.counter]),
                NftRule([.iifname("lan"), .destinationPort(.tcp, .anyOf([PortRange(80), PortRange(443)]))], [.namedCounter("web"), .accept], comment: "web"),
                NftRule([.iifnameIn(["internet-in", "lan"]), .oifnameIn(["a-out", "b-out"])], [.accept]),
                NftRule([.iifname("wan"), .source(.prefix(p("198.51.100.0/24"))), .destinationPort(.tcp, .range(PortRange(22)))],
                        [.namedCounter("ssh-in"), .accept], comment: "ssh-in"),
                NftRule([.destinationPort(.tcp, .range(PortRange(137, 139)))], [.counter, .reject(.tcpReset)]),
                NftRule([.source(.set("blocked", .v4))], [.drop]),
                NftRule([.destinationPort(.udp, .set("admin-ports"))], [.drop]),
                NftRule([.icmpType(8)], [.limit(rate: 10, per: .second, burst: 5), .accept]),
                NftRule([.icmpv6Type(128)], [.accept]),
                NftRule([.source(.prefix(p("10.16.0.0/12"))), .destination(.anyOf([p("10.0.0.0/8"), p("172.16.0.0/12"), p("192.168.1.1")]))], [.jump("audit")]),
                NftRule([.destination(.prefix(p("2001:db8::/63"))), .sourcePort(.udp, .anyOf([PortRange(53), PortRange(5353, 5355), PortRange(1000, 2000)]))], [.accept]),
                NftRule([.destinationPort(.tcp, .range(PortRange(0, 65535)))], [.goto("audit")]),
                NftRule([.ctMark(0x10)], [.setMark(0x20), .setCtMark(0x30), .log(prefix: "vcpe "), .accept]),
                NftRule([.mark(0x1), .oifname("wan")], [.reject(.portUnreachable)]),
                NftRule([], [.counter, .drop], comment: "default"),
            ]),
            NftChain(name: "audit", rules: [
                NftRule([.l4proto(17)], [.counter, .return]),
                NftRule([.nfproto(.v6)], [.drop]),
            ]),
        ])

    static let nat = NftTable(family: .ip, name: "vcpe", chains: [
        NftChain(name: "prerouting", base: BaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept), rules: [
            NftRule([.iifname("wan"), .destinationPort(.tcp, .range(PortRange(8080)))], [.dnat(IPAddress("192.168.1.10")!, port: 80)], comment: "fwd-0"),
            NftRule([.iifname("wan"), .destinationPort(.udp, .range(PortRange(51820)))], [.dnat(IPAddress("169.254.0.4")!, port: nil)]),
        ]),
        NftChain(name: "postrouting", base: BaseChain(type: .nat, hook: .postrouting, priority: 100, policy: .accept), rules: [
            NftRule([.oifname("wan"), .source(.prefix(p("192.168.2.0/24")))], [.snat(IPAddress("203.0.113.5")!, port: nil)]),
            NftRule([.oifname("wan")], [.masquerade]),
        ]),
    ])

    static let ingress = NftTable(family: .netdev, name: "vcpe", chains: [
        NftChain(name: "lan-ingress", base: BaseChain(type: .filter, hook: .ingress, priority: 0, policy: .accept, device: "lo"), rules: [
            NftRule([.l4proto(6)], [.counter]),
        ]),
    ])

    static let all: [(String, NftTable)] = [("filter", filter), ("nat", nat), ("ingress", ingress)]
}
