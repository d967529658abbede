import VCPEDescriptor
import VCPEForwarder
import VCPENet
import VCPENetlink
import VCPEPolicy
import VCPESystem
import VCPEWireGuard

/// Reads what the kernel holds of one customer, in the planner's vocabulary. Only vcpe's
/// objects are reported: namespaces named `vcpe-CUSTOMER.*`, the customer's host links,
/// and inside its namespaces what vcpe could have made; each kind finds its own in what
/// was read (`HostObjectKind.observe`). The shared WAN bridge is reported but never as
/// the customer's own.
public struct KernelObserver: HostObserver {
    /// What should be there: says which namespaces to read whole, which host links and
    /// sysctls to ask for.
    let desired: Desired
    let sockets: SocketCache
    let wireguard: any WireGuardDriver
    let forwarder: ForwarderClient

    init(desired: Desired, sockets: SocketCache, wireguard: any WireGuardDriver, forwarder: ForwarderClient) {
        self.desired = desired
        self.sockets = sockets
        self.wireguard = wireguard
        self.forwarder = forwarder
    }

    public func observe(customer: String) throws -> HostState {
        let wants = HostObject.wants(desired.state, customer: customer)
        let mine = try sockets.namespaces(prefix: KernelNames.namespace(customer: customer, service: "")).filter(NetworkNamespace.exists)
        let wanted = Set(desired.state.all(NamespaceObject.self).map(\.name))

        // The namespaces that should be there are read whole; on the host, which may hold
        // thousands of links, only the names the kinds want are asked for.
        var snaps: [String: NamespaceSnapshot] = [:], sysctls: [String: [(key: String, value: String)]] = [:]
        for n in mine where wanted.contains(n) {
            let keys = wants.sysctls[n] ?? []
            // One trip into the namespace opens both sockets and reads the sysctls.
            sysctls[n] = try sockets.open(n) { try keys.map { (key: $0, value: try Sysctl.readHere($0)) } }
            snaps[n] = try sockets.route(n).snapshot()
        }
        let host = try sockets.route(nil)
        var hostLinks: [String: LinkInfo] = [:]
        for n in wants.hostLinks { if let l = try host.link(named: n) { hostLinks[n] = l } }

        let view = HostView(customer: customer, desired: desired, namespaces: mine, snapshots: snaps, sysctls: sysctls, hostLinks: hostLinks,
                            nftables: { [sockets] in try sockets.nft($0) }, wireguard: wireguard, forwarder: forwarder)
        return try HostObject.observe(view)
    }
}
