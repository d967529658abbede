import CNetlink
import VCPENet
import VCPESystem

/// A unicast route with one next hop.
public struct RouteInfo: Sendable, Hashable, CustomStringConvertible {
    public static let mainTable: UInt32 = 254
    /// RTPROT_STATIC: what vcpe installs; the kernel's own connected routes are RTPROT_KERNEL.
    public static let staticProtocol: UInt8 = 4

    public var destination: IPPrefix
    public var gateway: IPAddress?
    /// Output interface name; resolved to an index in the socket's namespace.
    public var device: String?
    public var table: UInt32
    public var metric: UInt32?
    /// Who made it (RTPROT_*); routes added here are static.
    public var protocolNumber: UInt8

    public init(destination: IPPrefix, gateway: IPAddress? = nil, device: String? = nil, table: UInt32 = RouteInfo.mainTable,
                metric: UInt32? = nil, protocolNumber: UInt8 = RouteInfo.staticProtocol) {
        self.destination = destination
        self.gateway = gateway
        self.device = device
        self.table = table
        self.metric = metric
        self.protocolNumber = protocolNumber
    }

    public var description: String {
        "\(destination.length == 0 ? "default" : destination.description)" + (gateway.map { " via \($0)" } ?? "")
            + (device.map { " dev \($0)" } ?? "") + (table == Self.mainTable ? "" : " table \(table)")
    }
}

extension RouteSocket {
    /// The routes vcpe could have made: unicast, static or boot protocol, any table.
    public func routes(family: IPAddress.Family = .v4) throws(KernelError) -> [RouteInfo] {
        try routes(family: family, names: Dictionary(try links().map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a }))
    }

    /// With the interface names already at hand (a snapshot dumps the links once).
    func routes(family: IPAddress.Family, names: [Int32: String]) throws(KernelError) -> [RouteInfo] {
        try dump("routes", { rtnl_route_alloc_cache(sock, family == .v4 ? AF_INET : AF_INET6, 0, $0) }) { r in
            guard rtnl_route_get_type(r) == UInt8(RTN_UNICAST) else { return nil }
            let dst = IPPrefix(nlAddress: rtnl_route_get_dst(r)) ?? IPPrefix(family == .v4 ? IPAddress(v4: 0) : IPAddress(v6: 0, 0), 0)
            var gw: IPAddress?, dev: String?
            if rtnl_route_get_nnexthops(r) > 0, let nh = rtnl_route_nexthop_n(r, 0) {
                if let g = rtnl_route_nh_get_gateway(nh) { gw = IPAddress(nlAddress: g) }
                dev = names[rtnl_route_nh_get_ifindex(nh)]
            }
            let prio = rtnl_route_get_priority(r)
            return RouteInfo(destination: dst, gateway: gw, device: dev, table: rtnl_route_get_table(r), metric: prio == 0 ? nil : prio,
                             protocolNumber: rtnl_route_get_protocol(r))
        }
    }

    /// Adds a route; with `replace`, one to the same destination in that table is replaced.
    public func addRoute(_ route: RouteInfo, replace: Bool = false) throws(KernelError) {
        try withRoute(route) { r throws(KernelError) in
            try call(replace ? "replace route" : "add route", route.description) {
                rtnl_route_add(sock, r, replace ? NLM_F_CREATE | NLM_F_REPLACE : NLM_F_CREATE | NLM_F_EXCL)
            }
        }
    }

    /// Adds the route unless the same one is there; another route to that destination in
    /// that table is a mismatch.
    public func ensureRoute(_ route: RouteInfo) throws -> EnsureResult {
        let have = try routes(family: route.destination.family)
            .filter { $0.destination == route.destination && $0.table == route.table && $0.metric == route.metric }
        if have.contains(where: { $0.gateway == route.gateway && (route.device == nil || $0.device == route.device) }) { return .unchanged }
        if let other = have.first {
            throw MismatchError(object: "route \(route.destination) table \(route.table) \(place)", differences: ["it is \(other)"])
        }
        try addRoute(route)
        return .created
    }

    /// Deletes a route; one that is gone is success.
    public func removeRoute(_ route: RouteInfo) throws(KernelError) {
        do {
            try withRoute(route) { r throws(KernelError) in
                try call("delete route", route.description) { rtnl_route_delete(sock, r, 0) }
            }
        } catch where error.errno == .noSuchProcess || error.errno == .operationNotSupportedByDevice {
            return  // ESRCH: no such route; ENODEV: its device is gone, and the route with it
        }
    }

    private func withRoute(_ route: RouteInfo, _ body: (OpaquePointer) throws(KernelError) -> Void) throws(KernelError) {
        let r = rtnl_route_alloc()!
        defer { rtnl_route_put(r) }
        rtnl_route_set_family(r, UInt8(route.destination.family == .v4 ? AF_INET : AF_INET6))
        rtnl_route_set_table(r, route.table)
        rtnl_route_set_protocol(r, route.protocolNumber)
        rtnl_route_set_type(r, UInt8(RTN_UNICAST))
        rtnl_route_set_scope(r, UInt8(route.gateway == nil ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue))
        if let m = route.metric { rtnl_route_set_priority(r, m) }
        let dst = route.destination.nlAddress()
        defer { nl_addr_put(dst) }
        try call("set destination", route.description) { rtnl_route_set_dst(r, dst) }
        let nh = rtnl_route_nh_alloc()!
        if let dev = route.device {
            do {
                rtnl_route_nh_set_ifindex(nh, try index(of: dev))
            } catch {
                rtnl_route_nh_free(nh)
                throw error
            }
        }
        var gw: OpaquePointer?
        if let g = route.gateway {
            gw = g.nlAddress()
            rtnl_route_nh_set_gateway(nh, gw)
        }
        defer { if let gw { nl_addr_put(gw) } }
        rtnl_route_add_nexthop(r, nh)  // the route owns the next hop now
        try body(r)
    }
}
