import Foundation
import VCPEContainer
import VCPEDatapath
import VCPEDescriptor
import VCPENet
import VCPEPolicy
import VCPENetlink
import VCPENftables
import VCPESystem
import VCPEWireGuard

public struct CustomerStatus: Codable, Sendable {
    public var customer: String
    public var appliedAt: Date?
    /// Actions `apply` would take now: zero when the host matches the descriptor.
    public var pendingActions: Int
    public var services: [ServiceStatus]
    public var links: [LinkStatus]
}

public struct ServiceStatus: Codable, Sendable {
    public var name: String
    public var type: NamespaceRole
    public var namespace: String
    public var health: Health

    public enum Health: String, Codable, Sendable {
        case ok
        /// No namespace.
        case missing
        /// apply would change something in it.
        case drifted
    }
    /// Services without a process are kernel configuration only.
    public var runtime: String
    /// The OCI container its process runs in, if it has one.
    public var container: ContainerInfo?
    public var rules: [RuleCounter]
    public var portForwards: [String]
    /// For a vpn service: its device and peers.
    public var vpn: VPNStatus?
    /// For the classifier: its counters on the forwarder.
    public var steering: ChainStats?
}

public struct VPNStatus: Codable, Sendable {
    /// What runs the device: the kernel or wireguard-go.
    public var driver: String
    public var interface: String
    public var state: DeviceHealth
    public var pid: Int32?
    /// Give this to the peers. Absent until the first apply made the key.
    public var publicKey: String?
    public var listenPort: Int
    public var peers: [PeerStatus]
}

public struct PeerStatus: Codable, Sendable {
    public var name: String
    public var publicKey: String
    /// Where the peer was last seen (or the configured endpoint).
    public var endpoint: String?
    public var latestHandshake: Date?
    public var rxBytes: UInt64
    public var txBytes: UInt64
}

public struct RuleCounter: Codable, Sendable {
    public var name: String
    public var packets: UInt64
    public var bytes: UInt64
}

public struct LinkStatus: Codable, Sendable {
    public var key: String
    public var upstream: String
    public var downstream: String
    /// The upstream end's operational state, or "missing".
    public var state: String
    public var rxPackets: UInt64, txPackets: UInt64
    public var rxBytes: UInt64, txBytes: UInt64
    public var drops: UInt64
}

extension Reconciler {
    public func status(customer: String) throws -> CustomerStatus? {
        guard let chain = store.lastApplied(customer) else { return nil }
        let plan = try self.plan(chain)
        let touched = Set(plan.actions.compactMap { $0.object.namespace })
        let topo = Topology.resolve(chain)
        var services: [ServiceStatus] = []
        let steered = topo.namespaces.contains { $0.role == .classifier }
        let report = steered ? steering.report() : nil
        for ns in topo.namespaces {
            let exists = NetworkNamespace.exists(ns.name)
            var rules: [RuleCounter] = []
            var forwards: [String] = []
            var vpn: VPNStatus?
            if let s = chain.service(named: ns.service) {
                if case .firewall(let fw) = s.kind, exists {
                    let values = try NftSocket(namespace: ns.name).counterValues(family: .inet, table: ServiceTables.tableName)
                    rules = fw.rules.map { RuleCounter(name: $0.name, packets: values[$0.name]?.packets ?? 0, bytes: values[$0.name]?.bytes ?? 0) }
                }
                if case .vpn(let v) = s.kind { vpn = vpnStatus(customer, v, namespace: ns.name) }
                if case .router(let rt) = s.kind {
                    forwards = rt.portForwards.map { "\($0.proto.rawValue) \(chain.wan.address.address):\($0.port) -> \($0.toAddress)" + ($0.toPort.map { ":\($0)" } ?? "") }
                }
            }
            var runtime = vpn.map(vpnRuntime) ?? "namespace only (kernel configuration, no process)"
            var container = vpn.flatMap { wireguard.container(of: $0.interface) }
            var steering: ChainStats?
            if ns.role == .classifier {
                steering = report?.chains.first { $0.customer == customer }
                container = forwarder.container()
                // The worker's own pid is 1 in its container; the host's is the container's.
                let pid = container.map(\.pid).flatMap { $0 > 0 ? $0 : nil } ?? report?.pid
                // Said whether the chain runs on (its previous configuration) or not at all.
                let failure = report?.failed[customer].map { ": \($0)" } ?? ""
                runtime = report.map { _ in
                    "forwarder pid \(pid ?? 0)" + (steering == nil ? ", chain not loaded\(failure)" : failure.isEmpty ? "" : ", runs its previous configuration\(failure)")
                } ?? "forwarder not running (nothing passes)"
                if let restarts = forwarder.supervisorRecord()?.restarts, restarts > 0 { runtime += ", \(restarts) restart(s)" }
            }
            if let c = container { runtime += ", " + c.summary }
            services.append(ServiceStatus(name: ns.service, type: ns.role, namespace: ns.name,
                                          health: !exists ? .missing : touched.contains(ns.name) ? .drifted : .ok,
                                          runtime: runtime, container: container, rules: rules, portForwards: forwards, vpn: vpn, steering: steering))
        }
        var sockets: [String: RouteSocket] = [:]
        func socket(_ ns: String?) -> RouteSocket? {
            if let s = sockets[ns ?? ""] { return s }
            guard ns.map(NetworkNamespace.exists) ?? true, let s = try? RouteSocket(namespace: ns) else { return nil }
            sockets[ns ?? ""] = s
            return s
        }
        let links = topo.links.map { l -> LinkStatus in
            let info = (try? socket(l.upstream.namespace)?.link(named: l.upstream.interface)) ?? nil
            let st = info?.stats
            return LinkStatus(key: l.key, upstream: "\(l.upstream)", downstream: "\(l.downstream)",
                              state: info.map { $0.isUp ? $0.operState : "down" } ?? "missing",
                              rxPackets: st?.rxPackets ?? 0, txPackets: st?.txPackets ?? 0, rxBytes: st?.rxBytes ?? 0,
                              txBytes: st?.txBytes ?? 0, drops: (st?.rxDropped ?? 0) + (st?.txDropped ?? 0))
        }
        return CustomerStatus(customer: customer, appliedAt: store.record(customer)?.appliedAt, pendingActions: plan.actions.count,
                              services: services, links: links)
    }
}

extension Reconciler {
    func vpnStatus(_ customer: String, _ vpn: VPN, namespace: String) -> VPNStatus {
        let interface = KernelNames.wireguardInterface(customer: customer)
        let state = try? wireguard.state(of: interface, in: namespace, configuredEndpoints: [])
        let seen = Dictionary((state?.peers ?? []).map { ($0.publicKey, $0) }, uniquingKeysWith: { a, _ in a })
        let peers = vpn.peers.map { p in
            let s = seen[p.publicKey]
            return PeerStatus(name: p.name, publicKey: p.publicKey.base64, endpoint: s?.endpoint ?? p.endpoint?.description,
                              latestHandshake: s?.latestHandshake.map { Date(timeIntervalSince1970: $0) },
                              rxBytes: s?.rxBytes ?? 0, txBytes: s?.txBytes ?? 0)
        }
        return VPNStatus(driver: wireguard.name, interface: interface, state: wireguard.health(of: interface, in: namespace, state: state),
                         pid: state == nil ? nil : wireguard.processID(of: interface),
                         publicKey: store.wireguardKey(customer)?.publicKey.base64, listenPort: Int(vpn.listenPort), peers: peers)
    }
}

extension Reconciler {
    /// The vpn service's runtime line: a daemon's pid, or (the kernel driver) the device's
    /// state and how many peers have shaken hands within WireGuard's rekey window.
    func vpnRuntime(_ v: VPNStatus) -> String {
        if wireguard.hasDaemon { return v.driver + (v.pid.map { " pid \($0)" } ?? ", not running") }
        let recent = v.peers.filter { $0.latestHandshake.map { Date().timeIntervalSince($0) < 180 } ?? false }.count
        return "\(v.driver), device \(v.interface) \(v.state.rawValue), \(recent) of \(v.peers.count) peer(s) with a handshake in the last 3 min"
    }
}

extension CustomerStatus {
    /// The human form of `vcpe status`.
    public var text: String {
        var out = "customer \(customer): " + (pendingActions == 0 ? "in sync" : "\(pendingActions) change(s) pending, run apply") + "\n"
        for s in services {
            out += "  \(s.name) (\(s.type.rawValue)) \(s.namespace): \(s.health.rawValue), \(s.runtime)\n"
            for r in s.rules { out += "    rule \(r.name): \(r.packets) packets, \(r.bytes) bytes\n" }
            for f in s.portForwards { out += "    port forward \(f)\n" }
            if let st = s.steering {
                out += "    data path: \(st.datapath); \(st.flows) cached flow(s), \(st.cachedPackets) pkts by the cache, \(st.userspacePackets) in userspace\n"
                for r in st.rules { out += "    classifier rule \(r.name): \(r.hits) hits\n" }
                for p in st.paths {
                    out += "    path \(p.name): out \(p.packets) pkts/\(p.bytes) B, back \(p.returnPackets) pkts/\(p.returnBytes) B\n"
                }
                out += "    dropped: \(st.noNeighbour) no neighbour, \(st.truncated) too large, \(st.sendFailed) send failed, \(st.spoofed ?? 0) spoofed source\n"
            }
            if let v = s.vpn {
                out += "    wireguard \(v.interface) \(v.state.rawValue), udp \(v.listenPort), public key \(v.publicKey ?? "none yet")\n"
                for p in v.peers {
                    let hs = p.latestHandshake.map { "latest handshake \(Int(Date().timeIntervalSince($0))) s ago" } ?? "no handshake"
                    out += "    peer \(p.name) \(p.publicKey) endpoint \(p.endpoint ?? "none"): \(hs), rx \(p.rxBytes) B, tx \(p.txBytes) B\n"
                }
            }
        }
        for l in links {
            out += "  link \(l.key) \(l.upstream) <-> \(l.downstream): \(l.state), rx \(l.rxPackets) pkts/\(l.rxBytes) B, tx \(l.txPackets) pkts/\(l.txBytes) B, drops \(l.drops)\n"
        }
        return out
    }
}

extension ContainerInfo {
    /// "runc container vcpe-wg-x running, 12.1 MiB of memory 128 MiB, 64 pids".
    var summary: String {
        var s = "\(runtime) container \(id) \(state)"
        if let m = memoryBytes { s += String(format: ", %.1f MiB", Double(m) / 1048576) + (limits.map { " of \($0)" } ?? "") }
        return s
    }
}
