/// Which path a fragmented datagram's first fragment took (the only one with ports), so that
/// its later fragments follow it instead of being classified on addresses alone, which could
/// split one datagram across paths. Per chain, direct-mapped, allocated once: nothing per
/// packet. A later fragment that arrives before its first, or after its entry was taken by
/// another datagram, is classified as it is.
final class FragmentPaths {
    struct Entry {
        var src: UInt32 = 0, dst: UInt32 = 0
        var id: UInt16 = 0
        var proto: UInt8 = 0
        var used: Bool = false
        var path: Int32 = 0, counter: Int32 = 0
        var seen: UInt64 = 0
    }

    static let slots = 256
    /// Linux gives up reassembling after 30 s (ipfrag_time): so does this.
    static let timeout: UInt64 = 30_000_000_000
    private let table: UnsafeMutablePointer<Entry>

    init() {
        table = .allocate(capacity: Self.slots)
        table.initialize(repeating: Entry(), count: Self.slots)
    }

    deinit { table.deallocate() }

    @inline(__always)
    private func slot(_ src: UInt32, _ dst: UInt32, _ id: UInt16, _ proto: UInt8) -> Int {
        var h = src &* 0x9E37_79B1 ^ dst &* 0x85EB_CA77 ^ UInt32(id) &* 0xC2B2_AE3D ^ UInt32(proto)
        h ^= h >> 15
        return Int(h) & (Self.slots - 1)
    }

    /// After the first fragment was classified: where the rest of its datagram goes.
    @inline(__always)
    func record(_ ip: HeaderParser.IPv4, path: Int32, counter: Int32, now: UInt64) {
        table[slot(ip.src, ip.dst, ip.fragmentID, ip.proto)] =
            Entry(src: ip.src, dst: ip.dst, id: ip.fragmentID, proto: ip.proto, used: true, path: path, counter: counter, seen: now)
    }

    /// For a later fragment: its datagram's path and rule counter, if its first was seen.
    @inline(__always)
    func lookup(_ ip: HeaderParser.IPv4, now: UInt64) -> (path: Int32, counter: Int32)? {
        let e = table[slot(ip.src, ip.dst, ip.fragmentID, ip.proto)]
        guard e.used, e.src == ip.src, e.dst == ip.dst, e.id == ip.fragmentID, e.proto == ip.proto, now &- e.seen < Self.timeout else { return nil }
        return (e.path, e.counter)
    }
}
