import VCPEDescriptor
import VCPENet
import VCPENetlink

/// A veth pair; `key` is the topology's stable link key. Observed, a pair may carry drift:
/// its ends' state (fixed in place), broken (made anew) or stray (removed).
public struct VethObject: HostObjectKind {
    public static let kindName = "veth"
    public static let rank = 2
    public var key: String
    public var upstream: Topology.Endpoint
    public var downstream: Topology.Endpoint
    public var drift: Drift?

    public init(key: String, upstream: Topology.Endpoint, downstream: Topology.Endpoint, drift: Drift? = nil) {
        self.key = key
        self.upstream = upstream
        self.downstream = downstream
        self.drift = drift
    }

    public var id: String { "veth \(key) \(upstream)<->\(downstream)" }
    public var summary: String { "veth \(upstream) <-> \(downstream)" + (drift.map { " (\($0.rawValue))" } ?? "") }
    public var namespaceName: String? { upstream.namespace ?? downstream.namespace }
    public var remadeEnds: [Topology.Endpoint] { [upstream, downstream] }

    public func create(on host: any HostKernel, _ content: Desired) throws {
        // Asked from the namespace of the first end; a host end must be that one, since a
        // peer's nil namespace means "the asking socket's own". A pair already there (a
        // rollback of a removal that failed halfway) is kept.
        let (a, b) = downstream.namespace == nil ? (downstream, upstream) : (upstream, downstream)
        let made = try host.links(in: a.namespace).ensureVeth(VethEnd(a.interface, mac: a.stableMAC), VethEnd(b.interface, in: b.namespace, mac: b.stableMAC),
                                                             mtu: nil)
        try undoing(made == .created, { try remove(from: host, content) }) {
            if made == .created, a.namespace == nil { try host.disableIPv6(on: a.interface) }
            try host.links(in: upstream.namespace).bringUp(upstream.interface)
            try host.links(in: downstream.namespace).bringUp(downstream.interface)
        }
    }

    public func update(from current: VethObject, on host: any HostKernel, _ content: Desired) throws {
        guard current.drift == .ends else {
            // A broken pair: out with whatever is there, then a fresh pair.
            try remove(from: host, content)
            try create(on: host, content)
            return
        }
        // Only the ends' addresses or state drifted: set them on the pair as it is.
        for end in [upstream, downstream] {
            let links = try host.links(in: end.namespace)
            try links.setMAC(end.interface, end.stableMAC)
            try links.bringUp(end.interface)
            if end.namespace == nil { try host.disableIPv6(on: end.interface) }
            // Its addresses now answer from another Ethernet address: said at once.
            host.announce(try links.addresses(on: end.interface), on: end)
        }
    }

    /// An end whose namespace is gone went with it.
    public func remove(from host: any HostKernel, _ content: Desired) throws {
        for end in [upstream, downstream] where host.namespaceExists(end.namespace) {
            try host.links(in: end.namespace).removeLink(end.interface)
        }
    }

    public static func wants(_ desired: HostState, customer: String, _ wants: inout HostView.Wants) {
        wants.hostLinks.formUnion(KernelNames.hostVeths(customer: customer))
    }

    /// A desired pair is there when both ends exist and each is the other's peer; what is
    /// left of a broken pair, and veths nobody wants, are reported for removal.
    public static func observe(_ view: HostView, into out: inout HostState) throws {
        var claimed = Set<String>()
        for want in view.desired.state.all(VethObject.self) {
            let a = view.link(want.upstream), b = view.link(want.downstream)
            if a != nil { claimed.insert("\(want.upstream)") }
            if b != nil { claimed.insert("\(want.downstream)") }
            guard a != nil || b != nil else { continue }
            var seen = want
            if let a, let b, a.kind == "veth", b.kind == "veth", a.peerIndex == b.index, b.peerIndex == a.index {
                let right = a.isUp && b.isUp && a.mac == want.upstream.stableMAC && b.mac == want.downstream.stableMAC
                seen.drift = right ? nil : .ends
            } else {
                seen.drift = .broken
            }
            out.insert(seen)
        }
        let hostVeths = KernelNames.hostVeths(customer: view.customer)
            .compactMap { view.hostLinks[$0] }.filter { $0.kind == "veth" }
        for (ns, links) in [(String?.none, hostVeths)] + view.snapshots.map({ (Optional($0.key), $0.value.links) }) {
            for l in links where l.kind == "veth" {
                let end = Topology.Endpoint(namespace: ns, interface: l.name)
                if !claimed.contains("\(end)") {
                    out.insert(VethObject(key: "stray \(end)", upstream: end, downstream: end, drift: .stray))
                }
            }
        }
    }
}

extension HostObject {
    public static func veth(key: String, upstream: Topology.Endpoint, downstream: Topology.Endpoint) -> HostObject {
        HostObject(VethObject(key: key, upstream: upstream, downstream: downstream))
    }
}
