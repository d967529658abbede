import VCPEDescriptor
import VCPENet
import VCPENetlink

/// A static IPv4 route in a namespace.
public struct RouteObject: HostObjectKind {
    public static let kindName = "route"
    public static let rank = 7
    public var namespace: String
    public var destination: IPPrefix
    public var via: IPAddress?
    public var device: String
    public var table: Int

    public init(namespace: String, destination: IPPrefix, via: IPAddress?, device: String, table: Int) {
        self.namespace = namespace
        self.destination = destination
        self.via = via
        self.device = device
        self.table = table
    }

    public var namespaceName: String? { namespace }
    public var id: String { "route \(destination) table \(table) in \(namespace)" }
    public var summary: String {
        "route \(destination.length == 0 ? "default" : destination.description)\(via.map { " via \($0)" } ?? "") dev \(device)"
            + "\(table == DesiredState.mainTable ? "" : " table \(table)") in \(namespace)"
    }
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool { ends.contains(Topology.Endpoint(namespace: namespace, interface: device)) }

    var info: RouteInfo { RouteInfo(destination: destination, gateway: via, device: device, table: UInt32(table)) }

    /// Same identity means same destination and table: NLM_F_REPLACE swaps it in place,
    /// with no moment without a route.
    public func create(on host: any HostKernel, _ content: Desired) throws { try host.links(in: namespace).addRoute(info, replace: true) }
    public func update(from current: RouteObject, on host: any HostKernel, _ content: Desired) throws { try create(on: host, content) }
    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.links(in: namespace).removeRoute(info) }

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        for (ns, snap) in view.snapshots {
            for r in snap.routes where r.protocolNumber == RouteInfo.staticProtocol && r.destination.family == .v4 {
                out.insert(RouteObject(namespace: ns, destination: r.destination, via: r.gateway, device: r.device ?? "?", table: Int(r.table)))
            }
        }
    }
}

extension HostObject {
    public static func route(namespace: String, destination: IPPrefix, via: IPAddress?, device: String, table: Int) -> HostObject {
        HostObject(RouteObject(namespace: namespace, destination: destination, via: via, device: device, table: table))
    }
}
