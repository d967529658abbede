import CDatapath
import Synchronization
import VCPEClassifier
import VCPENet
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// One customer on the forwarder: its ring (every interface of the classifier namespace),
/// its ports (LAN, then one per path), the rules in service, the Ethernet addresses it has
/// learnt, and its counters. Built by the control thread; used by the forwarding thread
/// only, except the counters and the rule swap.
public final class SteeredChain: @unchecked Sendable {
    public private(set) var config: SteeringConfig
    private(set) var digest: String
    let ring: PacketRing
    let lan: PacketPort
    let paths: [PacketPort]
    /// The LAN port, then the paths': stored, since the forwarding thread walks it every batch.
    let ports: [PacketPort]
    let rules: Live<SteeringTable>
    /// The forwarding thread's handle on the rules in service.
    let reader: Live<SteeringTable>.Reader
    /// The control thread's own (a reader is one thread's: sharing it would let a swap free
    /// a table the other thread still uses).
    let controlReader: Live<SteeringTable>.Reader
    let gateway: UInt32
    let subnet: UInt32
    let mask: UInt32
    let pathAddresses: [UInt32]
    let peerAddresses: [UInt32]

    /// Next hop of each path, learnt from what arrives on its link (and ARP).
    var peers: [MAC]
    /// LAN hosts by IPv4 address, learnt from their frames and ARP.
    var hosts: [UInt32: MAC] = [:]
    static let maxHosts = 65_536
    /// When an ARP request for an address last left, in ns: at most one per 100 ms.
    var asked: [UInt32: UInt64] = [:]
    var arpFrame = [UInt8](repeating: 0, count: PacketRing.vnetHeaderSize + 42)

    /// Per path: packets and bytes out (LAN to WAN), packets and bytes back.
    let pathCounters: Counters
    static let perPath = 4
    /// Frames dropped for want of a neighbour, too large for a ring frame, refused by a send.
    let dropCounters = Counters(count: Drop.allCases.count)
    /// The paths of datagrams whose first fragment was seen (the forwarding thread's).
    let fragments = FragmentPaths()
    enum Drop: Int, CaseIterable { case noNeighbour, truncated, sendFailed, spoofed }

    /// The kernel's flow cache in front of the ring, when the chain wants it and it loaded.
    package let cache: FlowCache?
    /// Why the chain runs without the cache it asked for.
    let cacheProblem: String?
    /// Frames the forwarder handled itself (every frame, without the cache; misses with it).
    let handled = Counters(count: 1)
    /// Packets and bytes of cached flows that expired or were revalidated, and of a replaced chain.
    var carriedCached: UInt64 = 0

    /// Gets the ports, the flow cache and the ring of the chain's namespace through `access`.
    package init(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int = ForwarderSettings().flowEntries, access: any NamespaceAccess) throws {
        let table = try SteeringTable(config)
        let sockets = try access.open(config, ringFrames: ringFrames, flowEntries: flowEntries)
        let ports = sockets.ports.map(PacketPort.init)
        let cache = sockets.flows.map(FlowCache.init(adopting:))
        // The ports and the cache close themselves from here; the ring takes its socket.
        let ring = try PacketRing(socket: sockets.ring, frames: ringFrames, namespace: config.namespace)
        self.cache = cache
        cacheProblem = sockets.problem
        self.config = config
        digest = config.digest
        self.ring = ring
        lan = ports[0]
        paths = Array(ports.dropFirst())
        self.ports = ports
        rules = Live(table, readers: 2)
        reader = rules.reader()!
        controlReader = rules.reader()!
        gateway = config.lan.gateway.v4Value
        mask = config.lan.subnet.length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(config.lan.subnet.length))
        subnet = config.lan.subnet.network.v4Value & mask
        pathAddresses = config.paths.map(\.address.v4Value)
        peerAddresses = config.paths.map(\.peer.v4Value)
        peers = [MAC](repeating: .zero, count: config.paths.count)
        pathCounters = Counters(count: config.paths.count * Self.perPath)
        carriedPaths = [UInt64](repeating: 0, count: config.paths.count * Self.perPath)
        // Flows an earlier forwarder cached: those on links that are gone are dropped, the
        // others checked against the rules now in service.
        revalidateFlows(with: table, previous: nil)
    }

    /// Which port a frame arrived on: 0 the LAN, p + 1 path p, -1 none of the chain's.
    @inline(__always)
    func port(ofIndex ifindex: Int32) -> Int {
        if ifindex == lan.ifindex { return 0 }
        for p in 0..<paths.count where paths[p].ifindex == ifindex { return p + 1 }
        return -1
    }

    /// Gives the ring and sockets back (see PacketRing.close); the cache's program and maps
    /// stay for the chain that replaces this one (or a restarted forwarder).
    package func close() {
        ring.close()
        for port in ports { port.close() }
        cache?.close()
    }

    /// Takes the flow cache off the chain's interfaces and unpins its maps: for a customer
    /// no longer steered, or one that turned the cache off.
    package func removeCache(via access: any NamespaceAccess) {
        // The namespace may be gone, and the program with it; the pins are the host's.
        access.removeCache(customer: config.customer, namespace: config.namespace, interfaces: ports.map(\.ifindex))
    }

    /// Set when a port's interface went away under it (the link was re-created).
    let broken = Atomic<Bool>(false)

    /// Whether every port is still bound to the interface that now has its name.
    package func isCurrent() -> Bool {
        guard !broken.load(ordering: .relaxed) else { return false }
        return ports.allSatisfy(\.isCurrent)
    }

    /// Puts new rules in service without touching the rings: flows whose path did not
    /// change go on undisturbed. Returns once the old rules are out of use.
    public func replaceRules(_ next: SteeringConfig) throws {
        precondition(next.sameLinks(as: config))
        let table = try SteeringTable(next)
        let old = controlReader.withCurrent { $0 }
        table.generation = old.generation &+ 1
        rules.replace(with: table)
        // Out of the forwarding thread's hands: flows it cached from now on are the new table's.
        revalidateFlows(with: table, previous: old)
        table.carryCounts(from: old)
        config = next
        digest = next.digest
    }

    /// Path and drop counts carried over from the chain this one replaced, by position;
    /// the control thread's alone (the forwarding thread adds to the live counters only).
    var carriedPaths: [UInt64]
    private var carriedDrops = [UInt64](repeating: 0, count: Drop.allCases.count)

    /// Takes over the counters of the chain this one replaced (after a change of its links),
    /// once the forwarding thread has let go of it.
    package func carryCounts(from old: SteeredChain) {
        let before = old.stats
        let oldTable = old.controlReader.withCurrent { $0 }
        controlReader.withCurrent { $0.carryCounts(from: oldTable) }
        // The flows it cached are counted by the new chain, which took the map over.
        let cachedNow = flowTotals()
        carriedPaths = config.paths.enumerated().flatMap { (i, link) -> [UInt64] in
            guard let p = before.paths.first(where: { $0.name == link.name }) else { return [0, 0, 0, 0] }
            let live = (0..<Self.perPath).map { cachedNow.paths[i * Self.perPath + $0] }
            return zip([p.packets, p.bytes, p.returnPackets, p.returnBytes], live).map { $0 > $1 ? $0 - $1 : 0 }
        }
        carriedDrops = [before.noNeighbour, before.truncated, before.sendFailed, before.spoofed ?? 0]
        carriedCached = before.cachedPackets > cachedNow.packets ? before.cachedPackets - cachedNow.packets : 0
        carriedHandled = before.userspacePackets
    }

    @inline(__always)
    func count(_ drop: Drop, _ n: Int = 1) { dropCounters.add(drop.rawValue, UInt64(n)) }

    @inline(__always)
    func countPath(_ p: Int, back: Bool, bytes: Int) {
        let c = p * Self.perPath + (back ? 2 : 0)
        pathCounters.add(c)
        pathCounters.add(c + 1, UInt64(bytes))
    }

    @inline(__always)
    func isLAN(_ a: UInt32) -> Bool { a & mask == subnet }

    @inline(__always)
    func learnHost(_ address: UInt32, _ mac: MAC) {
        if let known = hosts[address] {
            if known != mac { hosts[address] = mac }
        } else if hosts.count < Self.maxHosts {
            hosts[address] = mac
        }
    }

    /// Sends `who-has target tell sender` on `ring`, unless one left in the last 100 ms.
    func requestARP(on ring: PacketPort, target: UInt32, sender: UInt32, now: UInt64) {
        if let last = asked[target], now &- last < 100_000_000 { return }
        asked[target] = now
        if asked.count > 4096 { asked.removeAll(keepingCapacity: true) }
        arpFrame.withUnsafeMutableBytes { b in
            let f = b.baseAddress! + PacketRing.vnetHeaderSize
            MAC.broadcast.store(at: f)
            ring.mac.store(at: f + 6)
            storeBE16(f + 12, HeaderParser.etherARP)
            storeBE16(f + 14, 1)       // Ethernet
            storeBE16(f + 16, HeaderParser.etherIPv4)
            f.storeBytes(of: UInt8(6), toByteOffset: 18, as: UInt8.self)
            f.storeBytes(of: UInt8(4), toByteOffset: 19, as: UInt8.self)
            storeBE16(f + 20, 1)       // request
            ring.mac.store(at: f + 22)
            storeBE32(f + 28, sender)
            MAC.zero.store(at: f + 32)
            storeBE32(f + 38, target)
            ring.sendNow(UnsafeRawBufferPointer(b))
        }
    }

    var carriedHandled: UInt64 = 0

    /// Which data path serves the chain, as `status` says it.
    var datapath: String {
        if cache != nil { return "flow cache (tc eBPF), misses in userspace" }
        if let cacheProblem { return "userspace (flow cache unavailable: \(cacheProblem))" }
        return "userspace (flow cache off)"
    }

    /// The counters as `status` shows them: the forwarder's plus its cached flows'.
    public var stats: ChainStats {
        let table = controlReader.withCurrent { $0 }
        let cached = flowTotals()
        let drop = { (d: Drop) in self.carriedDrops[d.rawValue] + self.dropCounters.value(d.rawValue) }
        let hits = table.ruleHits
        return ChainStats(
            customer: config.customer, digest: broken.load(ordering: .relaxed) ? "broken" : digest,
            interfaces: Dictionary(ports.map { ($0.interface, Int($0.ifindex)) }, uniquingKeysWith: { a, _ in a }),
            rules: hits.indices.map { i in ChainStats.Rule(name: hits[i].name, hits: hits[i].hits &+ cached.rules[i]) },
            paths: config.paths.indices.map { p in
                let c = { (k: Int) in
                    let i = p * Self.perPath + k
                    return self.carriedPaths[i] &+ self.pathCounters.value(i) &+ cached.paths[i]
                }
                return ChainStats.Path(name: config.paths[p].name, packets: c(0), bytes: c(1), returnPackets: c(2), returnBytes: c(3))
            },
            noNeighbour: drop(.noNeighbour), truncated: drop(.truncated), sendFailed: drop(.sendFailed), spoofed: drop(.spoofed),
            datapath: datapath, flows: cached.flows, cachedPackets: carriedCached &+ cached.packets,
            userspacePackets: carriedHandled &+ handled.value(0))
    }
}

/// One customer's counters on the forwarder.
public struct ChainStats: Sendable, Codable, Hashable {
    public struct Rule: Sendable, Codable, Hashable {
        public var name: String
        public var hits: UInt64
    }

    public struct Path: Sendable, Codable, Hashable {
        public var name: String
        /// LAN to WAN.
        public var packets: UInt64
        public var bytes: UInt64
        /// Back toward the LAN.
        public var returnPackets: UInt64
        public var returnBytes: UInt64
    }

    public var customer: String
    /// The configuration in service (SteeringConfig.digest).
    public var digest: String
    /// The interfaces it sends on, by name, with the index each had when it was opened: if
    /// the namespace now gives a name another index, the link was re-created under it.
    public var interfaces: [String: Int]
    public var rules: [Rule]
    public var paths: [Path]
    public var noNeighbour: UInt64
    public var truncated: UInt64
    public var sendFailed: UInt64
    /// LAN frames whose source is not in the LAN (BCP 38); nil from a forwarder before it counted them.
    public var spoofed: UInt64?
    /// "flow cache ..." or "userspace (...)": which data path serves the chain.
    public var datapath: String
    /// Flows in the kernel's cache now.
    public var flows: Int
    /// Packets the kernel forwarded (or dropped) from the cache.
    public var cachedPackets: UInt64
    /// Frames the forwarder handled itself.
    public var userspacePackets: UInt64
}
