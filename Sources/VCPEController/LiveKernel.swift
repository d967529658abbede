import VCPEDescriptor
import VCPEForwarder
import VCPENet
import VCPENetlink
import VCPENftables
import VCPEPolicy
import VCPESystem
import VCPEWireGuard

/// The host's kernel, as the executor drives it: the run's sockets into each namespace.
final class LiveKernel: HostKernel {
    let sockets: SocketCache
    let wireguard: any WireGuardDriver
    let client: ForwarderClient
    var forwarder: any ForwarderControl { client }

    init(sockets: SocketCache, wireguard: any WireGuardDriver, forwarder: ForwarderClient) {
        self.sockets = sockets
        self.wireguard = wireguard
        self.client = forwarder
    }

    func links(in namespace: String?) throws -> any LinkOperations { try sockets.route(namespace) }
    func tables(in namespace: String) throws -> any TableOperations { try sockets.nft(namespace) }

    func ensureNamespace(_ name: String) throws {
        _ = try NetworkNamespace.ensure(name)
        sockets.noteCreated(name)
    }

    func removeNamespace(_ name: String) throws {
        sockets.forget(name)
        try NetworkNamespace.remove(name)
    }

    func namespaceExists(_ name: String?) -> Bool { name.map(NetworkNamespace.exists) ?? true }

    func writeSysctl(_ key: String, _ value: String, namespace: String?) throws { try Sysctl.write(key, value, namespace: namespace) }

    /// With IPv6 on, each host-side bridge and port would add routes to the host's one IPv6
    /// table, which the kernel walks whole whenever any interface comes or goes: with
    /// thousands of customers, most of the time of a delete.
    func disableIPv6(on interface: String) throws { try Sysctl.writeIPv6(interface: interface, "disable_ipv6", "1", namespace: nil) }

    /// A gratuitous ARP for each IPv4 address, from the interface's Ethernet address; best
    /// effort (neighbours would learn it anyway, later).
    func announce(_ prefixes: [IPPrefix], on end: Topology.Endpoint) {
        let v4 = prefixes.filter { $0.family == .v4 }
        guard !v4.isEmpty, let link = try? sockets.route(end.namespace).link(named: end.interface) else { return }
        for p in v4 { try? GratuitousARP.announce(p.address.bytes, ifindex: link.index, mac: link.mac, in: end.namespace) }
    }
}
