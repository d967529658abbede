import CNetlink
import VCPENet
import SystemPackage
import VCPESystem

/// An interface as the kernel reports it.
public struct LinkInfo: Sendable, Hashable {
    public var index: Int32
    public var name: String
    /// "veth", "bridge", ...; nil for plain devices.
    public var kind: String?
    /// Administratively up (IFF_UP).
    public var isUp: Bool
    /// RFC 2863 operational state: "up", "down", "lowerlayerdown", ...
    public var operState: String
    public var mac: [UInt8]
    public var mtu: UInt32
    public var masterIndex: Int32?
    /// For a veth: the peer's index, in the namespace named by `peerNetnsID` if set.
    public var peerIndex: Int32?
    public var peerNetnsID: Int32?
    public var stats: LinkStats
    /// The link group (IFLA_GROUP); 0 unless someone set one.
    public var group: UInt32

    public var macString: String { mac.map { zeroPaddedHex($0, width: 2) }.joined(separator: ":") }

    public init(index: Int32, name: String, kind: String?, isUp: Bool, operState: String, mac: [UInt8], mtu: UInt32,
                masterIndex: Int32? = nil, peerIndex: Int32? = nil, peerNetnsID: Int32? = nil, stats: LinkStats = LinkStats(), group: UInt32 = 0) {
        self.index = index
        self.name = name
        self.kind = kind
        self.isUp = isUp
        self.operState = operState
        self.mac = mac
        self.mtu = mtu
        self.masterIndex = masterIndex
        self.peerIndex = peerIndex
        self.peerNetnsID = peerNetnsID
        self.stats = stats
        self.group = group
    }
}

public struct LinkStats: Sendable, Hashable {
    public var rxPackets: UInt64, txPackets: UInt64
    public var rxBytes: UInt64, txBytes: UInt64
    public var rxDropped: UInt64, txDropped: UInt64

    public init(rxPackets: UInt64 = 0, txPackets: UInt64 = 0, rxBytes: UInt64 = 0, txBytes: UInt64 = 0, rxDropped: UInt64 = 0, txDropped: UInt64 = 0) {
        (self.rxPackets, self.txPackets, self.rxBytes, self.txBytes, self.rxDropped, self.txDropped) = (rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped)
    }
}

extension LinkInfo {
    init(_ l: OpaquePointer) {
        let flags = rtnl_link_get_flags(l)
        var mac: [UInt8] = []
        if let a = rtnl_link_get_addr(l), let p = nl_addr_get_binary_addr(a) {
            mac = Array(UnsafeRawBufferPointer(start: p, count: Int(nl_addr_get_len(a))))
        }
        var nsid: Int32 = -1
        let hasNSID = rtnl_link_get_link_netnsid(l, &nsid) == 0
        let master = rtnl_link_get_master(l)
        let peer = rtnl_link_get_link(l)
        let index = rtnl_link_get_ifindex(l)
        var stateBuf = [CChar](repeating: 0, count: 32)
        rtnl_link_operstate2str(rtnl_link_get_operstate(l), &stateBuf, stateBuf.count)
        func stat(_ id: rtnl_link_stat_id_t) -> UInt64 { rtnl_link_get_stat(l, id) }
        self.init(index: index, name: String(cString: rtnl_link_get_name(l)),
                  kind: rtnl_link_get_type(l).map { String(cString: $0) }, isUp: flags & UInt32(IFF_UP.rawValue) != 0,
                  operState: String(cString: stateBuf), mac: mac, mtu: rtnl_link_get_mtu(l),
                  masterIndex: master > 0 ? master : nil,
                  // A device's iflink is itself unless it has a peer; a peer in another namespace may share the number.
                  peerIndex: peer > 0 && (peer != index || (hasNSID && nsid >= 0)) ? peer : nil,
                  peerNetnsID: hasNSID && nsid >= 0 ? nsid : nil,
                  stats: LinkStats(rxPackets: stat(RTNL_LINK_RX_PACKETS), txPackets: stat(RTNL_LINK_TX_PACKETS),
                                   rxBytes: stat(RTNL_LINK_RX_BYTES), txBytes: stat(RTNL_LINK_TX_BYTES),
                                   rxDropped: stat(RTNL_LINK_RX_DROPPED), txDropped: stat(RTNL_LINK_TX_DROPPED)),
                  group: rtnl_link_get_group(l))
    }
}

extension RouteSocket {
    public func links() throws(KernelError) -> [LinkInfo] {
        try dump("links", { rtnl_link_alloc_cache(sock, AF_UNSPEC, $0) }) { LinkInfo($0) }
    }

    /// The interface of that name, or nil when there is none.
    public func link(named name: String) throws(KernelError) -> LinkInfo? {
        var l: OpaquePointer?
        do {
            try call("get link", name) { rtnl_link_get_kernel(sock, 0, name, &l) }
        } catch where error.errno == .operationNotSupportedByDevice || error.errno == .noSuchFileOrDirectory {
            return nil
        }
        defer { rtnl_link_put(l) }
        return LinkInfo(l!)
    }

    /// Changes properties of a link by name; only what is given changes.
    public func setLink(_ name: String, up: Bool? = nil, mtu: UInt32? = nil, mac: [UInt8]? = nil,
                        newName: String? = nil) throws(KernelError) {
        let index = try self.index(of: name)
        let change = rtnl_link_alloc()!
        defer { rtnl_link_put(change) }
        rtnl_link_set_ifindex(change, index)
        if let up {
            if up { rtnl_link_set_flags(change, UInt32(IFF_UP.rawValue)) } else { rtnl_link_unset_flags(change, UInt32(IFF_UP.rawValue)) }
        }
        if let mtu { rtnl_link_set_mtu(change, mtu) }
        if let newName {
            try checkInterfaceName(newName)
            rtnl_link_set_name(change, newName)
        }
        var addr: OpaquePointer?
        if let mac {
            addr = mac.withUnsafeBytes { nl_addr_build(AF_LLC, $0.baseAddress, $0.count) }
            rtnl_link_set_addr(change, addr)
        }
        defer { if let addr { nl_addr_put(addr) } }
        let orig = rtnl_link_alloc()!
        defer { rtnl_link_put(orig) }
        rtnl_link_set_ifindex(orig, index)
        try call("change link", name) { rtnl_link_change(sock, orig, change, 0) }
    }

    /// Sets a link's Ethernet address; a driver that refuses to while the link is up gets
    /// it down for the change and up again.
    public func setMAC(_ name: String, _ mac: [UInt8]) throws(KernelError) {
        do { try setLink(name, mac: mac) } catch where error.errno == .resourceBusy {
            let wasUp = try link(named: name)?.isUp ?? false
            try setLink(name, up: false)
            try setLink(name, mac: mac)
            if wasUp { try setLink(name, up: true) }
        }
    }

    /// Deletes a link; one that is already gone is success. Deleting one end of a veth
    /// removes the pair.
    public func removeLink(_ name: String) throws(KernelError) {
        let l = rtnl_link_alloc()!
        defer { rtnl_link_put(l) }
        rtnl_link_set_name(l, name)
        do {
            try call("delete link", name) { rtnl_link_delete(sock, l) }
        } catch where error.errno == .operationNotSupportedByDevice || error.errno == .noSuchFileOrDirectory {
            return
        }
    }
}

extension RouteSocket {
    /// libnl copies names into IFNAMSIZ silently truncating them: refuse them here instead.
    func checkInterfaceName(_ name: String) throws(KernelError) {
        let u = name.utf8
        let valid = !u.isEmpty && u.count <= 15 && name != "." && name != ".."
            && !u.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 }
        if valid { return }
        throw KernelError("name", "interface \"\(name)\" \(place)", .invalidArgument,
                           kernelMessage: "interface names are 1 to 15 bytes without '/', ':' or white space")
    }
}


extension RouteSocket {
    /// Removes several links with one kernel teardown instead of one per link. Links
    /// already gone are skipped; returns the names of those that were there.
    @discardableResult
    public func removeLinks(_ names: [String]) throws(KernelError) -> [String] {
        var present: [LinkInfo] = []
        for n in names { if let l = try link(named: n) { present.append(l) } }
        guard present.count > 1 else {
            for l in present { try removeLink(l.name) }
            return present.map(\.name)
        }
        let group = try freshGroup()
        for l in present { try moveToGroup(l, group) }
        let msg = nlmsg_alloc_simple(Int32(RTM_DELLINK), 0)!  // nl_send_sync frees it
        var ifi = ifinfomsg()
        ifi.ifi_family = UInt8(AF_UNSPEC)
        nlmsg_append(msg, &ifi, MemoryLayout<ifinfomsg>.size, 4)
        nla_put_u32(msg, Int32(IFLA_GROUP), group)
        do {
            try call("delete links", present.map(\.name).joined(separator: ", ")) { nl_send_sync(sock, msg) }
        } catch where error.errno == .operationNotSupportedByDevice {
            // someone else removed them meanwhile
        }
        return present.map(\.name)
    }

    /// A link group no link uses: a group delete then takes exactly the links put in it.
    private func freshGroup() throws(KernelError) -> UInt32 {
        let used = Set(try links().map(\.group))
        var group = UInt32.random(in: 0x1000_0000...0x7FFF_FFFF)
        while used.contains(group) { group &+= 1 }
        return group
    }

    private func moveToGroup(_ l: LinkInfo, _ group: UInt32) throws(KernelError) {
        let change = rtnl_link_alloc()!, orig = rtnl_link_alloc()!
        defer { rtnl_link_put(change); rtnl_link_put(orig) }
        rtnl_link_set_ifindex(orig, l.index)
        rtnl_link_set_group(change, group)
        do {
            try call("set link group of", l.name) { rtnl_link_change(sock, orig, change, 0) }
        } catch where error.errno == .operationNotSupportedByDevice {
            return  // gone meanwhile (a veth whose peer's namespace was just removed)
        }
    }
}
