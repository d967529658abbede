import VCPEDescriptor
import VCPENet
import VCPEWireGuard

/// A WireGuard device; `digest` names its whole configuration and its daemon's limits
/// (secrets included, revealing none), `publicKey` is what the operator gives the peers.
/// The configuration itself is the desired state's (`Desired.wireguard`, by id).
public struct WireGuardObject: HostObjectKind {
    public static let kindName = "wireguard"
    public static let rank = 5
    public var namespace: String
    public var interface: String
    public var listenPort: Int
    public var publicKey: String
    public var digest: String
    public var drift: Drift?

    public init(namespace: String, interface: String, listenPort: Int, publicKey: String, digest: String, drift: Drift? = nil) {
        self.namespace = namespace
        self.interface = interface
        self.listenPort = listenPort
        self.publicKey = publicKey
        self.digest = digest
        self.drift = drift
    }

    public var namespaceName: String? { namespace }
    public var id: String { "wireguard \(interface) in \(namespace)" }
    public var summary: String {
        "wireguard \(interface) listening on udp \(listenPort), public key \(publicKey), in \(namespace)" + (drift.map { " (\($0.rawValue))" } ?? "")
    }

    public func create(on host: any HostKernel, _ content: Desired) throws {
        guard let device = content.wireguard[id] else { throw StateError("no WireGuard configuration for \(summary)") }
        try Self.ensure(interface, in: namespace, device, on: host)
    }

    public func update(from current: WireGuardObject, on host: any HostKernel, _ content: Desired) throws { try create(on: host, content) }

    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.wireguard.remove(interface, in: namespace) }

    /// A running device in `ns` with the device's configuration. A live device is changed
    /// in place, only where it differs, so peers whose settings stay keep their sessions; a
    /// dead daemon or a device outside the namespace is replaced by a fresh one.
    static func ensure(_ interface: String, in ns: String, _ device: WireGuardDevice, on host: any HostKernel) throws {
        let wireguard = host.wireguard, links = try host.links(in: ns)
        let config = device.config
        var current = try wireguard.state(of: interface, in: ns, configuredEndpoints: config.configuredEndpoints)?.config
        let inNamespace = try links.link(named: interface) != nil
        let made = current == nil || !inNamespace
        if made {
            try wireguard.create(interface, in: ns, limits: device.limits)
            current = nil
        } else {
            try wireguard.setLimits(interface, device.limits)
        }
        try undoing(made, { try wireguard.remove(interface, in: ns) }) {
            if current != config { try wireguard.configure(interface, in: ns, config, over: current) }
            try links.bringUp(interface)
        }
    }

    /// The customer's device, wherever its daemon runs: in the namespace that holds its
    /// interface, else (a daemon whose device is elsewhere, or that does not answer) with
    /// drift, so that apply replaces it and delete stops it.
    public static func observe(_ view: HostView, into out: inout HostState) throws {
        let interface = KernelNames.wireguardInterface(customer: view.customer)
        let wanted = view.desired.state.all(WireGuardObject.self).first
        let endpoints = view.desired.wireguard.values.reduce(into: Set<[UInt8]>()) { $0.formUnion($1.config.configuredEndpoints) }
        // A daemon's limits are what its cgroup holds; a kernel device has none to differ.
        let wantedLimits = wanted.flatMap { view.desired.wireguard[$0.id]?.limits }
        let holder = view.snapshots.first { $0.value.link(named: interface) != nil }
        let ns = holder?.key ?? wanted?.namespace ?? KernelNames.namespace(customer: view.customer, service: "?")
        if let state = try view.wireguard.state(of: interface, in: ns, configuredEndpoints: endpoints) {
            let port = Int(state.config.listenPort)
            guard let link = holder?.value.link(named: interface) else {
                out.insert(WireGuardObject(namespace: ns, interface: interface, listenPort: port, publicKey: "?", digest: "", drift: .notInNamespace))
                return
            }
            let limits = view.wireguard.limits(of: interface) ?? wantedLimits
            out.insert(WireGuardObject(namespace: ns, interface: interface, listenPort: port, publicKey: state.config.privateKey.publicKey.base64,
                                       digest: limits.map { WireGuardDevice.digest(state.config.digest, $0) } ?? state.config.digest,
                                       drift: link.isUp ? nil : .down))
        } else if wanted != nil, view.wireguard.processID(of: interface) != nil {
            // Looked for only where a device is wanted: finding a process reads all of /proc.
            out.insert(WireGuardObject(namespace: ns, interface: interface, listenPort: 0, publicKey: "?", digest: "", drift: .notAnswering))
        }
    }
}
