import VCPEDescriptor
import VCPEForwarder
import VCPENet
import VCPENetlink
import VCPENftables
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
        try HostObject.observe(HostView.read(customer: customer, desired: desired,
                                             from: KernelReading(sockets: sockets, wireguard: wireguard, steering: forwarder)))
    }
}

/// The kernel through the run's sockets.
struct KernelReading: HostReading {
    let sockets: SocketCache
    let wireguard: any WireGuardDriver
    let steering: any ForwarderObservation

    func namespaces(prefix: String) throws -> [String] { try sockets.namespaces(prefix: prefix).filter(NetworkNamespace.exists) }

    func read(_ ns: String, sysctls keys: [String]) throws -> (snapshot: NamespaceSnapshot, sysctls: [(key: String, value: String)]) {
        // One trip into the namespace opens both sockets and reads the sysctls.
        let values = try sockets.open(ns) { try keys.map { (key: $0, value: try Sysctl.readHere($0)) } }
        return (try sockets.route(ns).snapshot(), values)
    }

    func hostLink(named name: String) throws -> LinkInfo? { try sockets.route(nil).link(named: name) }
    func nftables(_ ns: String) throws -> any TableReading { try sockets.nft(ns) }
}
