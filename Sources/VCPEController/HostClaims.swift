import VCPEDescriptor
import VCPENet
import VCPENetlink

/// What a descriptor claims on the host beyond the names vcpe derives from its customer:
/// the interfaces put on its LAN bridge, its WAN segment, its WAN address. Checked against
/// the host and every other applied customer before anything changes, so one customer's
/// descriptor cannot take another's links or addresses, or the host's uplink.
enum HostClaims {
    static let linkLocal6 = IPPrefix("fe80::/10")!
    static let linkLocal4 = IPPrefix("169.254.0.0/16")!

    /// The first claim that cannot be granted, as one line; nil when all can.
    static func conflict(_ chain: Chain, others: [Chain], host: RouteSocket) throws -> String? {
        let others = others.filter { $0.customer != chain.customer }
        let links = try host.links()
        let byName = Dictionary(links.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let byIndex = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        let lanBridge = KernelNames.lanBridge(customer: chain.customer)
        // The host's addresses and routes, dumped once and only if an interface is there to check.
        var addresses: [AddressInfo]?
        func hostAddresses() throws -> [AddressInfo] {
            if let addresses { return addresses }
            let dumped = try host.addresses()
            addresses = dumped
            return dumped
        }
        var routes: [RouteInfo]?
        func hostRoutes() throws -> [RouteInfo] {
            if let routes { return routes }
            let dumped = try host.routes(family: .v4) + host.routes(family: .v6)
            routes = dumped
            return dumped
        }

        for name in chain.lan.attach {
            if let other = others.first(where: { hostNames(of: $0.customer).contains(name) }) {
                return "/lan/attach: \(name) is customer \(other.customer)'s"
            }
            if let other = others.first(where: { $0.lan.attach.contains(name) }) {
                return "/lan/attach: \(name) is on customer \(other.customer)'s LAN"
            }
            if let other = others.first(where: { $0.wan.segment == name }) {
                return "/lan/attach: \(name) is customer \(other.customer)'s WAN segment"
            }
            guard let link = byName[name] else { continue }
            if link.kind == "bridge" { return "/lan/attach: \(name) is a bridge; only interfaces can join the LAN" }
            if let master = link.masterIndex.flatMap({ byIndex[$0] }), master.name != lanBridge {
                return "/lan/attach: \(name) is a port of bridge \(master.name), not this customer's to take"
            }
            // A default route, or any route with a gateway, of the host's leaving through it.
            if let route = try hostRoutes().first(where: { $0.device == name && ($0.destination.length == 0 || $0.gateway != nil) }) {
                return "/lan/attach: \(name) carries the host's route \(route); vcpe will not bridge the host's uplink"
            }
            if let address = try hostAddresses().first(where: { $0.interfaceIndex == link.index && !isLinkLocal($0.prefix.address) }) {
                return "/lan/attach: \(name) has the host's address \(address.prefix); vcpe will not bridge an interface the host uses"
            }
        }

        let segment = chain.wan.segment
        if let other = others.first(where: { hostNames(of: $0.customer).contains(segment) }) {
            return "/wan/segment: \(segment) is customer \(other.customer)'s"
        }
        if let other = others.first(where: { $0.lan.attach.contains(segment) }) {
            return "/wan/segment: \(segment) is attached to customer \(other.customer)'s LAN"
        }
        if let link = byName[segment], link.kind != "bridge" {
            return "/wan/segment: \(segment) is a \(link.kind ?? "device") on the host, not a bridge"
        }
        let address = chain.wan.address.address
        if let other = others.first(where: { $0.wan.segment == segment && $0.wan.address.address == address }) {
            return "/wan/address: \(address) is held by customer \(other.customer) on segment \(segment)"
        }
        // Answering ARP for another customer's gateway, or the host's own address there,
        // would take their traffic.
        if let other = others.first(where: { $0.wan.segment == segment && $0.wan.gateway == address }) {
            return "/wan/address: \(address) is customer \(other.customer)'s gateway on segment \(segment)"
        }
        if let link = byName[segment], try hostAddresses().contains(where: { $0.interfaceIndex == link.index && $0.prefix.address == address }) {
            return "/wan/address: \(address) is the host's own address on segment \(segment)"
        }
        return nil
    }

    /// The host-side interfaces vcpe makes for a customer.
    private static func hostNames(of customer: String) -> Set<String> {
        [KernelNames.lanBridge(customer: customer), KernelNames.lanVethHost(customer: customer),
         KernelNames.wanVethHost(customer: customer), KernelNames.wireguardInterface(customer: customer)]
    }

    private static func isLinkLocal(_ a: IPAddress) -> Bool { linkLocal6.contains(a) || linkLocal4.contains(a) }
}
