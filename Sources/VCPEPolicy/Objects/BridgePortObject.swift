import VCPEDescriptor
import VCPENet

/// A host interface placed in a bridge (`lan.attach`, the veth host ends).
public struct BridgePortObject: HostObjectKind {
    public static let kindName = "bridgePort"
    public static let rank = 3
    public var interface: String
    public var bridge: String

    public init(interface: String, bridge: String) {
        self.interface = interface
        self.bridge = bridge
    }

    public var id: String { "port \(interface)" }
    public var summary: String { "host interface \(interface) into bridge \(bridge)" }
    public var namespaceName: String? { nil }
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool { ends.contains(Topology.Endpoint(namespace: nil, interface: interface)) }

    public func create(on host: any HostKernel, _ content: Desired) throws {
        let links = try host.links(in: nil)
        let there = try links.link(named: interface)?.masterIndex.map { try links.link(named: bridge)?.index == $0 } ?? false
        try links.enslave(interface, to: bridge)
        try undoing(!there, { try links.release(interface) }) { try links.bringUp(interface) }
    }

    /// Into the other bridge at once (the kernel moves a port): never in none; a failure
    /// puts it back where it was.
    public func update(from current: BridgePortObject, on host: any HostKernel, _ content: Desired) throws {
        let links = try host.links(in: nil)
        try links.enslave(interface, to: bridge)
        try undoing(true, { try links.enslave(interface, to: current.bridge) }) { try links.bringUp(interface) }
    }

    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.links(in: nil).release(interface) }

    public static func wants(_ desired: HostState, customer: String, _ wants: inout HostView.Wants) {
        wants.hostLinks.formUnion(KernelNames.hostVeths(customer: customer))
        for p in desired.all(BridgePortObject.self) { wants.hostLinks.insert(p.interface) }
    }

    /// Ports of the customer's own bridge; on a shared segment only the customer's own link.
    public static func observe(_ view: HostView, into out: inout HostState) throws {
        let lanBridge = KernelNames.lanBridge(customer: view.customer)
        let segments = Set(view.desired.state.all(BridgeObject.self).map(\.name).filter { $0 != lanBridge })
        let byIndex = Dictionary(view.hostLinks.values.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let own = Set(KernelNames.hostVeths(customer: view.customer))
        for l in view.hostLinks.values {
            guard let m = l.masterIndex, let bridge = byIndex[m] else { continue }
            if bridge == lanBridge || (segments.contains(bridge) && own.contains(l.name)) {
                out.insert(BridgePortObject(interface: l.name, bridge: bridge))
            }
        }
    }
}

extension HostObject {
    public static func bridgePort(interface: String, bridge: String) -> HostObject { HostObject(BridgePortObject(interface: interface, bridge: bridge)) }
}
