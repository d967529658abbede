import VCPEDescriptor
import VCPEForwarder
import VCPENet
import VCPENetlink
import VCPENftables
import VCPEWireGuard

/// The kernel as host objects make and remove themselves on it. The controller's is the
/// host (a socket per namespace); tests bring a model of their own, so that plan
/// execution, rollback and repair run without root.
public protocol HostKernel: AnyObject {
    /// Netlink in `namespace` (nil: the host).
    func links(in namespace: String?) throws -> any LinkOperations
    /// nftables in `namespace`.
    func tables(in namespace: String) throws -> any TableOperations
    func ensureNamespace(_ name: String) throws
    func removeNamespace(_ name: String) throws
    /// nil is the host, which always exists.
    func namespaceExists(_ name: String?) -> Bool
    func writeSysctl(_ key: String, _ value: String, namespace: String?) throws
    /// Host-side bridges and ports carry frames, not addresses: no IPv6 on them.
    func disableIPv6(on interface: String) throws
    /// Says at once where `prefixes` now answer (gratuitous ARP); best effort.
    func announce(_ prefixes: [IPPrefix], on end: Topology.Endpoint)
    var wireguard: any WireGuardDriver { get }
    var forwarder: any ForwarderControl { get }
}

/// What the observer reads: the kernel (the controller's sockets) or a test's model.
public protocol HostReading {
    /// Namespaces whose names start with `prefix` and that exist.
    func namespaces(prefix: String) throws -> [String]
    /// Namespace `ns` read whole, and the sysctls `keys` there (one trip into it).
    func read(_ ns: String, sysctls keys: [String]) throws -> (snapshot: NamespaceSnapshot, sysctls: [(key: String, value: String)])
    func hostLink(named name: String) throws -> LinkInfo?
    func nftables(_ ns: String) throws -> any TableReading
    var wireguard: any WireGuardDriver { get }
    /// What the forwarder steers.
    var steering: any ForwarderObservation { get }
}

/// What the observer read of the host for one customer, for each kind to find its own in.
public struct HostView {
    /// What the kinds ask the observer to read, beyond the customer's namespaces.
    public struct Wants: Sendable {
        /// Host links by name (the host may hold thousands: only these are asked for).
        public var hostLinks: Set<String> = []
        /// sysctl keys, by namespace, read in the same trip that opens its sockets.
        public var sysctls: [String: [String]] = [:]
        public init() {}
    }

    public var customer: String
    public var desired: Desired
    /// The customer's namespaces that exist.
    public var namespaces: [String]
    /// The namespaces that should be there, read whole.
    public var snapshots: [String: NamespaceSnapshot]
    public var sysctls: [String: [(key: String, value: String)]]
    public var hostLinks: [String: LinkInfo]
    /// nftables in a namespace that should be there.
    public var nftables: (String) throws -> any TableReading
    public var wireguard: any WireGuardDriver
    public var forwarder: any ForwarderObservation

    public init(customer: String, desired: Desired, namespaces: [String], snapshots: [String: NamespaceSnapshot],
                sysctls: [String: [(key: String, value: String)]], hostLinks: [String: LinkInfo],
                nftables: @escaping (String) throws -> any TableReading, wireguard: any WireGuardDriver, forwarder: any ForwarderObservation) {
        self.customer = customer
        self.desired = desired
        self.namespaces = namespaces
        self.snapshots = snapshots
        self.sysctls = sysctls
        self.hostLinks = hostLinks
        self.nftables = nftables
        self.wireguard = wireguard
        self.forwarder = forwarder
    }

    /// What `host` holds of `customer`, read as `desired` asks: the customer's namespaces,
    /// those that should be there whole; on the host, which may hold thousands of links,
    /// only the names the kinds want.
    public static func read(customer: String, desired: Desired, from host: some HostReading) throws -> HostView {
        let wants = HostObject.wants(desired.state, customer: customer)
        let mine = try host.namespaces(prefix: KernelNames.namespace(customer: customer, service: ""))
        let wanted = Set(desired.state.all(NamespaceObject.self).map(\.name))
        var snaps: [String: NamespaceSnapshot] = [:], sysctls: [String: [(key: String, value: String)]] = [:]
        for n in mine where wanted.contains(n) {
            (snaps[n], sysctls[n]) = try host.read(n, sysctls: wants.sysctls[n] ?? [])
        }
        var hostLinks: [String: LinkInfo] = [:]
        for n in wants.hostLinks { if let l = try host.hostLink(named: n) { hostLinks[n] = l } }
        return HostView(customer: customer, desired: desired, namespaces: mine, snapshots: snaps, sysctls: sysctls, hostLinks: hostLinks,
                        nftables: host.nftables, wireguard: host.wireguard, forwarder: host.steering)
    }

    /// The link at `end`, wherever it is.
    public func link(_ end: Topology.Endpoint) -> LinkInfo? {
        guard let ns = end.namespace else { return hostLinks[end.interface] }
        return snapshots[ns]?.link(named: end.interface)
    }
}

/// State that is not what it must be, or content a plan lacks.
public struct StateError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
