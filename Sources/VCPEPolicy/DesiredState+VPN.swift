import VCPEContainer
import VCPEDescriptor
import VCPENet
import VCPENftables
import VCPEWireGuard

/// A WireGuard device as apply wants it: its configuration and the limits of its daemon's
/// container (unused by a kernel device).
public struct WireGuardDevice: Sendable {
    public var config: DeviceConfig
    public var limits: ContainerLimits

    /// Names both: a change of either is a change of the device.
    package static func digest(_ configDigest: String, _ limits: ContainerLimits) -> String { configDigest + ", " + limits.description }
}

/// What a customer's VPN needs besides its descriptor: the private key (nil while planning
/// a customer that has none yet; apply makes it) and the preshared keys from their files.
public struct VPNSecrets: Sendable {
    public var privateKey: WireGuardKey?
    public var presharedKeys: [String: [UInt8]] = [:]

    public init(privateKey: WireGuardKey?, presharedKeys: [String: [UInt8]] = [:]) {
        self.privateKey = privateKey
        self.presharedKeys = presharedKeys
    }
}

extension DesiredState {
    /// The VPN service's device, its address and routes, and the way its encrypted traffic
    /// takes: out through the services after it on its first path to the router, whose
    /// NAT and a forward of the listen port make both directions work. Returns the tunnel
    /// endpoint and the namespaces it crosses (their tables must let it through).
    package static func addVPN(_ chain: Chain, _ topo: Topology, transit: [String: IPPrefix], secrets: VPNSecrets?,
                       steered: Bool, into s: inout HostState, configs: inout [String: WireGuardDevice])
        -> (tunnel: ServiceTables.Tunnel, crossed: Set<String>)? {
        guard let (service, vpn) = chain.vpn else { return nil }
        let ns = KernelNames.namespace(customer: chain.customer, service: service.name)
        let paths = chain.paths.enumerated().filter { $0.element.hops.contains(service.name) }
        guard let first = paths.first else { return nil }
        let hops = topo.links.filter { $0.path == first.element.name }
        guard let outIndex = hops.firstIndex(where: { $0.upstream.namespace == ns }) else { return nil }
        let out = hops[outIndex]
        let tunnelAddress = transit[out.key]!.network
        let interface = KernelNames.wireguardInterface(customer: chain.customer)
        let limits = ContainerLimits(memoryBytes: vpn.resources.memoryBytes, pids: vpn.resources.pids)

        let device: HostObject
        if let key = secrets?.privateKey {
            let config = DeviceConfig(privateKey: key, listenPort: vpn.listenPort, peers: vpn.peers.map { p in
                DeviceConfig.Peer(publicKey: p.publicKey, presharedKey: secrets?.presharedKeys[p.name], endpoint: p.endpoint?.description,
                                  keepalive: p.keepalive ?? 0, allowedIPs: p.allowedIPs.map(\.canonical.description))
            })
            device = HostObject(WireGuardObject(namespace: ns, interface: interface, listenPort: Int(vpn.listenPort),
                                publicKey: key.publicKey.base64, digest: WireGuardDevice.digest(config.digest, limits)))
            configs[device.id] = WireGuardDevice(config: config, limits: limits)
        } else {
            device = HostObject(WireGuardObject(namespace: ns, interface: interface, listenPort: Int(vpn.listenPort),
                                publicKey: "(made on first apply)", digest: "new"))
        }
        s.insert(device)
        s.insert(.address(at: Topology.Endpoint(namespace: ns, interface: interface), prefix: vpn.address))

        // Traffic of the path to the peers enters the tunnel; with several paths each has
        // its own table. Routes are IPv4 like the rest of the chain's routing.
        let tables = steered ? paths.map { firstPathTable + $0.offset } + [mainTable] : [mainTable]
        for prefix in vpn.peers.flatMap(\.allowedIPs) where prefix.family == .v4 {
            for t in tables { s.insert(.route(namespace: ns, destination: prefix.canonical, via: nil, device: interface, table: t)) }
        }
        // The daemon's own packets are routed by the main table, which a steered chain
        // leaves without a default.
        let anyV4 = IPPrefix(IPAddress(v4: 0), 0)
        if steered {
            s.insert(.route(namespace: ns, destination: anyV4, via: tunnelAddress.adding(1), device: out.upstream.interface, table: mainTable))
        }
        var crossed: Set<String> = []
        for link in hops[outIndex...] {
            let down = link.downstream.namespace!
            crossed.insert(down)
            // Beyond the first hop the tunnel address is not on a connected link.
            if link.key != out.key {
                s.insert(.route(namespace: down, destination: IPPrefix(tunnelAddress, 32), via: transit[link.key]!.network,
                                device: link.downstream.interface, table: mainTable))
            }
        }
        return (ServiceTables.Tunnel(address: tunnelAddress, port: vpn.listenPort), crossed)
    }
}
