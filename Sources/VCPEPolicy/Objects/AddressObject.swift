import VCPEDescriptor
import VCPENet

/// An address on an interface.
public struct AddressObject: HostObjectKind {
    public static let kindName = "address"
    public static let rank = 6
    public var at: Topology.Endpoint
    public var prefix: IPPrefix

    public init(at: Topology.Endpoint, prefix: IPPrefix) {
        self.at = at
        self.prefix = prefix
    }

    public var id: String { "address \(prefix) on \(at)" }
    public var summary: String { id }
    public var namespaceName: String? { at.namespace }
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool { ends.contains(at) }

    /// A (re)made address is announced, so neighbours that knew another place for it (a
    /// gateway moved to a new interface, or host) learn at once.
    public func create(on host: any HostKernel, _ content: Desired) throws {
        if try host.links(in: at.namespace).ensureAddress(prefix, on: at.interface) == .created { host.announce([prefix], on: at) }
    }

    public func remove(from host: any HostKernel, _ content: Desired) throws {
        try host.links(in: at.namespace).removeAddress(prefix, on: at.interface)
    }

    private static let linkLocal = IPPrefix("fe80::/10")!

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        for (ns, snap) in view.snapshots {
            for (dev, addrs) in snap.addresses where dev != "lo" {
                for a in addrs where !(a.prefix.family == .v6 && linkLocal.contains(a.prefix.address)) {
                    out.insert(AddressObject(at: Topology.Endpoint(namespace: ns, interface: dev), prefix: a.prefix))
                }
            }
        }
    }
}

extension HostObject {
    public static func address(at: Topology.Endpoint, prefix: IPPrefix) -> HostObject { HostObject(AddressObject(at: at, prefix: prefix)) }
}
