/// Reads what the data path needs out of frames in place, without copying: the one place
/// that knows Ethernet, IPv4 and transport header offsets. The kernel has already moved any
/// 802.1Q tag into the frame's metadata, so the type is at byte 12.
enum HeaderParser {
    static let etherIPv4: UInt16 = 0x0800
    static let etherARP: UInt16 = 0x0806

    /// The fields a classifier rule may match.
    struct IPv4 {
        var src: UInt32
        var dst: UInt32
        var proto: UInt8
        var sport: UInt16
        var dport: UInt16
        var dscp: UInt8
    }

    @inline(__always)
    static func etherType(_ frame: UnsafeRawPointer) -> UInt16 { loadBE16(frame + 12) }

    @inline(__always)
    static func ipv4Destination(_ frame: UnsafeRawPointer) -> UInt32 { loadBE32(frame + 14 + 16) }

    /// The IPv4 header of an Ethernet frame of `length` bytes, or nil if it is cut short.
    /// Only the first fragment carries ports; the others read as port 0.
    @inline(__always)
    static func ipv4(_ frame: UnsafeRawPointer, length: Int) -> IPv4? {
        let ip = frame + 14
        let ihl = Int(ip.load(as: UInt8.self) & 0x0F) * 4
        guard ihl >= 20, length >= 14 + ihl else { return nil }
        let proto = ip.load(fromByteOffset: 9, as: UInt8.self)
        var sport: UInt16 = 0, dport: UInt16 = 0
        if proto == 6 || proto == 17, loadBE16(ip + 6) & 0x1FFF == 0, length >= 14 + ihl + 4 {
            sport = loadBE16(ip + ihl)
            dport = loadBE16(ip + ihl + 2)
        }
        return IPv4(src: loadBE32(ip + 12), dst: loadBE32(ip + 16), proto: proto, sport: sport, dport: dport,
                    dscp: ip.load(fromByteOffset: 1, as: UInt8.self) >> 2)
    }
}

@inline(__always) func loadBE16(_ p: UnsafeRawPointer) -> UInt16 { UInt16(p.load(as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: 1, as: UInt8.self)) }
@inline(__always) func loadBE32(_ p: UnsafeRawPointer) -> UInt32 { UInt32(loadBE16(p)) << 16 | UInt32(loadBE16(p + 2)) }
@inline(__always) func storeBE16(_ p: UnsafeMutableRawPointer, _ v: UInt16) {
    p.storeBytes(of: UInt8(v >> 8), as: UInt8.self)
    p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: 1, as: UInt8.self)
}
@inline(__always) func storeBE32(_ p: UnsafeMutableRawPointer, _ v: UInt32) {
    storeBE16(p, UInt16(v >> 16))
    storeBE16(p + 2, UInt16(truncatingIfNeeded: v))
}
