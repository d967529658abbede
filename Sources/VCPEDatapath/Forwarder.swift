import CDatapath
import Synchronization
import VCPEClassifier
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// The data path of every steered chain on the host, on one thread: frames from a LAN are
/// classified in batches and sent down their path (or dropped); frames coming back up a
/// path go to the LAN host they are for. Everything else (ARP, traffic for the classifier's
/// own addresses) is left to the namespace's kernel, which sees every frame as well.
public final class Forwarder: @unchecked Sendable {
    static let batch = 64
    public let settings: ForwarderSettings
    let epoll: Int32
    let wake: Int32
    let kernel = ClassifierKernel.best

    /// Chain sets handed over by the control thread, and how far the forwarding thread got.
    private let pending = Mutex<[SteeredChain]?>(nil)
    private let posted = Atomic<UInt64>(0)
    private let taken = Atomic<UInt64>(0)

    // The forwarding thread's own state.
    private var chains: [SteeredChain] = []
    private let rows: UnsafeMutablePointer<UInt32>
    private let results: UnsafeMutablePointer<UInt32>
    private let held: UnsafeMutablePointer<UnsafeMutablePointer<tpacket2_hdr>>
    /// Per held frame: its IPv4 header (a later fragment follows its first).
    private let headers: UnsafeMutablePointer<HeaderParser.IPv4>
    /// Per held frame: its flow cache key, nil without a cache or for what it leaves to userspace.
    private let flowKeys: UnsafeMutablePointer<vc_flow_key?>
    /// Flows to put in the kernel's cache: return directions before the batch leaves (so the
    /// first reply is forwarded by the kernel already), directions from the LAN after it (so
    /// a flow's next packets cannot overtake its first). One entry per frame in each.
    private let returnFlows: StagedFlows
    private let lanFlows: StagedFlows
    private static let wakeToken = UInt64.max

    public init(settings: ForwarderSettings) throws(KernelError) {
        self.settings = settings
        let epoll = try syscall("epoll_create1", "forwarder") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        let wake = try syscall("eventfd", "forwarder") { eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }
        self.epoll = epoll
        self.wake = wake
        var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: Self.wakeToken))
        try syscall("epoll_ctl add", "eventfd") { epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &ev) }
        rows = .allocate(capacity: Self.batch * CompiledClassifier.v4Lanes)
        results = .allocate(capacity: Self.batch)
        held = .allocate(capacity: Self.batch)
        headers = .allocate(capacity: Self.batch)
        flowKeys = .allocate(capacity: Self.batch)
        flowKeys.initialize(repeating: nil, count: Self.batch)
        returnFlows = StagedFlows(capacity: Self.batch)
        lanFlows = StagedFlows(capacity: Self.batch)
    }

    deinit {
        close(epoll)
        close(wake)
        rows.deallocate()
        results.deallocate()
        held.deallocate()
        headers.deallocate()
        flowKeys.deallocate()
    }

    /// Control thread: puts `next` in service and returns once the forwarding thread has
    /// stopped using any chain not in it.
    public func install(_ next: [SteeredChain]) {
        let generation = pending.withLock { p -> UInt64 in
            p = next
            return posted.add(1, ordering: .sequentiallyConsistent).newValue
        }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
        while taken.load(ordering: .acquiring) < generation { usleep(200) }
    }

    /// The forwarding thread's loop, for the life of the process. The chains epoll names are
    /// polled directly, without a system call, until none has had a frame for the spin time (or for
    /// ever, busy-polling); then epoll says again which have frames, or sleeps.
    public func run() -> Never {
        if let cpu = settings.cpu { _ = vc_pin_cpu(Int32(cpu)) }
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 64)
        let spin = UInt64(settings.spinMicroseconds) * 1000
        var active = [Int](), pass = 0
        active.reserveCapacity(64)
        var lastWork = monotonicNanoseconds()
        while true {
            var moved = 0
            for i in active { moved += forward(chains[i]) }
            pass &+= 1
            if moved > 0 {
                lastWork = monotonicNanoseconds()
                // Other chains may have frames too: ask epoll now and then, without waiting.
                if pass & 15 != 0 { continue }
            } else if !active.isEmpty && (settings.busyPoll || monotonicNanoseconds() &- lastWork < spin) && pass & 15 != 0 {
                continue
            }
            let idle = moved == 0 && !settings.busyPoll && monotonicNanoseconds() &- lastWork > spin
            let n = epoll_wait(epoll, events, 64, idle ? 1000 : 0)
            if n < 0 { continue }
            if n == 0 && !idle { continue }  // keep polling the active set
            active.removeAll(keepingCapacity: true)
            for i in 0..<Int(n) {
                let token = events[i].data.u64
                if token == Self.wakeToken {
                    takePending()
                    active.removeAll(keepingCapacity: true)
                    break  // the other events may name chains of the old set
                }
                active.append(Int(token))
            }
        }
    }

    private func takePending() {
        var drained: UInt64 = 0
        _ = read(wake, &drained, 8)
        let (next, generation) = pending.withLock { p in
            defer { p = nil }
            return (p, posted.load(ordering: .sequentiallyConsistent))
        }
        guard let next else { return }
        let kept = Set(next.map(ObjectIdentifier.init))
        for chain in chains where !kept.contains(ObjectIdentifier(chain)) {
            epoll_ctl(epoll, EPOLL_CTL_DEL, chain.ring.fd, nil)
        }
        let old = Set(chains.map(ObjectIdentifier.init))
        for (i, chain) in next.enumerated() {
            var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(i)))
            epoll_ctl(epoll, old.contains(ObjectIdentifier(chain)) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, chain.ring.fd, &ev)
        }
        // Ask new chains' next hops at once: the first frames need not wait for an ARP miss.
        // A gratuitous ARP for the gateway tells LAN hosts its (possibly new) address.
        let now = monotonicNanoseconds()
        for chain in next where !old.contains(ObjectIdentifier(chain)) {
            chain.requestARP(on: chain.lan, target: chain.gateway, sender: chain.gateway, now: now)
            for (p, port) in chain.paths.enumerated() {
                chain.requestARP(on: port, target: chain.peerAddresses[p], sender: chain.pathAddresses[p], now: now)
            }
        }
        chains = next
        taken.store(generation, ordering: .releasing)
    }

    /// One batch of a chain's frames, in one pass over the ring: frames coming back up a path
    /// go to the LAN host they are for at once; frames from the LAN are parsed and staged,
    /// then classified together and sent down their path (or dropped).
    private func forward(_ chain: SteeredChain) -> Int {
        let ring = chain.ring
        var n = 0, k = 0
        var now: UInt64 = 0
        while n < Self.batch, let h = ring.peek(n) {
            n += 1
            let port = chain.port(ofIndex: PacketRing.ifindex(of: h))
            guard port >= 0 else { continue }
            guard h.pointee.tp_snaplen == h.pointee.tp_len else { chain.count(.truncated); continue }
            let frame = UnsafeMutableRawPointer(h) + Int(h.pointee.tp_mac)
            let length = Int(h.pointee.tp_snaplen)
            guard length >= 34 else { continue }
            if port > 0 {
                forwardReturn(h, frame: frame, length: length, path: port - 1, of: chain, now: &now)
            } else if stageLAN(h, frame: frame, length: length, of: chain, at: k) {
                k += 1
            }
        }
        if k > 0 {
            if now == 0 { now = monotonicNanoseconds() }
            steerLAN(count: k, of: chain, now: now)
        }
        returnFlows.install(in: chain.cache)
        flush(chain)
        ring.release(n)
        return n
    }

    /// A frame back from path `p`: to the LAN host it is for, its flow's return direction
    /// staged for the cache. `now` is read once a frame needs it.
    @inline(__always)
    private func forwardReturn(_ h: UnsafeMutablePointer<tpacket2_hdr>, frame: UnsafeMutableRawPointer, length: Int, path p: Int,
                               of chain: SteeredChain, now: inout UInt64) {
        // Only the next service sends on a path link: its address is the path's next hop.
        let from = MAC(at: frame + 6)
        if from != chain.peers[p] { chain.peers[p] = from }
        guard MAC(at: frame) == chain.paths[p].mac, HeaderParser.etherType(frame) == HeaderParser.etherIPv4 else { return }
        let dst = HeaderParser.ipv4Destination(frame)
        guard chain.isLAN(dst), dst != chain.gateway else { return }
        if now == 0 { now = monotonicNanoseconds() }
        guard let host = chain.hosts[dst] else {
            chain.requestARP(on: chain.lan, target: dst, sender: chain.gateway, now: now)
            chain.count(.noNeighbour)
            return
        }
        if chain.cache != nil,
           let key = HeaderParser.flowKey(frame, length: length, ifindex: chain.paths[p].ifindex, vlan: Self.vlan(of: h)) {
            returnFlows.stage(key, to: host, from: chain.lan.mac, out: chain.lan.ifindex, rule: UInt16(VC_FLOW_RETURN), path: p, generation: 0, now: now)
        }
        chain.handled.add(0)
        chain.countPath(p, back: true, bytes: send(h, on: chain.lan, to: host))
    }

    /// A frame from the LAN, parsed once: its classifier row, header and flow key go in slot
    /// `k` of the batch. False for what is not the forwarder's to steer.
    @inline(__always)
    private func stageLAN(_ h: UnsafeMutablePointer<tpacket2_hdr>, frame: UnsafeMutableRawPointer, length: Int,
                          of chain: SteeredChain, at k: Int) -> Bool {
        guard MAC(at: frame) == chain.lan.mac, HeaderParser.etherType(frame) == HeaderParser.etherIPv4,
              let ip = HeaderParser.ipv4(frame, length: length) else { return false }
        // For the gateway itself, or between two LAN hosts: the kernel's business.
        if ip.dst == chain.gateway || chain.isLAN(ip.dst) { return false }
        // BCP 38: a source outside the LAN goes nowhere and is never cached or learnt.
        guard chain.isLAN(ip.src), ip.src != chain.gateway else { chain.count(.spoofed); return false }
        chain.learnHost(ip.src, MAC(at: frame + 6))
        CompiledClassifier.encodeV4(src: ip.src, dst: ip.dst, proto: ip.proto, sport: ip.sport, dport: ip.dport,
                                    dscp: ip.dscp, into: rows + k * CompiledClassifier.v4Lanes)
        headers[k] = ip
        flowKeys[k] = chain.cache == nil ? nil
            : HeaderParser.flowKey(frame, ip: ip, length: length, ifindex: chain.lan.ifindex, vlan: Self.vlan(of: h))
        held[k] = h
        return true
    }

    /// The `count` staged LAN frames: classified at once, then each sent down its path or
    /// dropped, its flow staged for the cache.
    private func steerLAN(count: Int, of chain: SteeredChain, now: UInt64) {
        chain.handled.add(0, UInt64(count))
        chain.reader.withCurrent { table in
            table.classifier.classify(rows: rows, count: count, family: .v4, kernel: kernel, into: results)
            for j in 0..<count { steer(j, of: chain, under: table, now: now) }
            // Still under this table, so a rule change's revalidation sees every flow it decided.
            returnFlows.install(in: chain.cache)
            flush(chain)
            lanFlows.install(in: chain.cache)
        }
    }

    /// Staged frame `j` down its path, or dropped.
    @inline(__always)
    private func steer(_ j: Int, of chain: SteeredChain, under table: SteeringTable, now: UInt64) {
        let (path, counter) = decision(j, of: chain, under: table, now: now)
        table.hits.add(counter)
        let h = held[j]
        let key = flowKeys[j]
        if path == SteeringTable.drop {
            if let key { lanFlows.stage(key, to: .zero, from: .zero, out: 0, rule: UInt16(counter), path: 0xFFFF, generation: table.generation, now: now) }
            return
        }
        let p = Int(path)
        let peer = chain.peers[p]
        if peer == .zero {
            chain.requestARP(on: chain.paths[p], target: chain.peerAddresses[p], sender: chain.pathAddresses[p], now: now)
            chain.count(.noNeighbour)
            return
        }
        if let key {
            let out = chain.paths[p]
            let frame = UnsafeMutableRawPointer(h) + Int(h.pointee.tp_mac)
            lanFlows.stage(key, to: peer, from: out.mac, out: out.ifindex, rule: UInt16(counter), path: p, generation: table.generation, now: now)
            returnFlows.stage(HeaderParser.reversed(key, ifindex: out.ifindex), to: MAC(at: frame + 6), from: chain.lan.mac,
                              out: chain.lan.ifindex, rule: UInt16(VC_FLOW_RETURN), path: p, generation: table.generation, now: now)
        }
        chain.countPath(p, back: false, bytes: send(h, on: chain.paths[p], to: peer))
    }

    /// Staged frame `j`'s path and rule counter: its rule's, or the default's.
    @inline(__always)
    private func decision(_ j: Int, of chain: SteeredChain, under table: SteeringTable, now: UInt64) -> (path: Int32, counter: Int) {
        let r = results[j]
        let defaultCounter = table.counterNames.count - 1
        let path: Int32, counter: Int
        if r == UInt32.max {
            path = table.defaultPath
            counter = defaultCounter
        } else {
            path = table.actions[Int(r)]
            counter = Int(table.ruleOf[Int(r)])
        }
        // A datagram's later fragments go where its first went (looked up here, in batch
        // order, so a first fragment earlier in this batch counts). One decided under an
        // older table must name a counter and path this one still has.
        let ip = headers[j]
        if ip.isLaterFragment, let first = chain.fragments.lookup(ip, now: now), Int(first.counter) <= defaultCounter,
           first.path == SteeringTable.drop || Int(first.path) < chain.paths.count {
            return (first.path, Int(first.counter))
        }
        if ip.isFirstFragment { chain.fragments.record(ip, path: path, counter: Int32(counter), now: now) }
        return (path, counter)
    }

    private func flush(_ chain: SteeredChain) {
        for port in chain.ports where port.tx.count > 0 {
            let refused = port.tx.flush(port.fd)
            if refused.count > 0 { chain.count(.sendFailed, refused.count) }
            // The interface went away under the chain: a reload with its customer re-opens it.
            if refused.gone { chain.broken.store(true, ordering: .relaxed) }
        }
    }

    /// A frame's 802.1Q tag as TPID << 16 | TCI, if the kernel took one off it.
    @inline(__always)
    static func vlan(of h: UnsafeMutablePointer<tpacket2_hdr>) -> UInt32? {
        let status = h.pointee.tp_status
        guard status & UInt32(TP_STATUS_VLAN_VALID) != 0 else { return nil }
        let tpid = status & UInt32(TP_STATUS_VLAN_TPID_VALID) != 0 ? UInt32(h.pointee.tp_vlan_tpid) : 0x8100
        return tpid << 16 | UInt32(h.pointee.tp_vlan_tci)
    }

    /// Rewrites the frame's Ethernet addresses in the ring and queues it on `out`; returns its length.
    @inline(__always)
    private func send(_ h: UnsafeMutablePointer<tpacket2_hdr>, on out: PacketPort, to dst: MAC) -> Int {
        let frame = UnsafeMutableRawPointer(h) + Int(h.pointee.tp_mac)
        let length = Int(h.pointee.tp_snaplen)
        dst.store(at: frame)
        out.mac.store(at: frame + 6)
        out.tx.add(vnet: frame - PacketRing.vnetHeaderSize, frameLength: length, vlan: Self.vlan(of: h))
        return length
    }
}

@inline(__always)
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
