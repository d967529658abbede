import CDatapath

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
        /// The identification field, and where the fragment lies: offset 0 with more to
        /// come is a first fragment, a non-zero offset a later one.
        var fragmentID: UInt16
        var fragmentOffset: UInt16
        var moreFragments: Bool
        /// In bytes: where the transport header starts, for the flow key.
        var headerLength: UInt8

        var isFirstFragment: Bool { fragmentOffset == 0 && moreFragments }
        var isLaterFragment: Bool { fragmentOffset != 0 }
    }

    @inline(__always)
    static func etherType(_ frame: UnsafeRawPointer) -> UInt16 { loadBE16(frame + 12) }

    @inline(__always)
    static func ipv4Destination(_ frame: UnsafeRawPointer) -> UInt32 { loadBE32(frame + 14 + 16) }

    /// The IPv4 header of an Ethernet frame of `length` bytes, or nil if it is not one: a
    /// version other than 4, a header or total length that does not fit the frame.
    /// Only the first fragment carries ports; the others read as port 0.
    @inline(__always)
    static func ipv4(_ frame: UnsafeRawPointer, length: Int) -> IPv4? {
        guard length >= 34 else { return nil }
        let ip = frame + 14
        let first = ip.load(as: UInt8.self)
        let ihl = Int(first & 0x0F) * 4
        let total = Int(loadBE16(ip + 2))
        guard first >> 4 == 4, ihl >= 20, total >= ihl, 14 + total <= length else { return nil }
        let proto = ip.load(fromByteOffset: 9, as: UInt8.self)
        let fragment = loadBE16(ip + 6)
        var sport: UInt16 = 0, dport: UInt16 = 0
        if proto == 6 || proto == 17, fragment & 0x1FFF == 0, total >= ihl + 4 {
            sport = loadBE16(ip + ihl)
            dport = loadBE16(ip + ihl + 2)
        }
        return IPv4(src: loadBE32(ip + 12), dst: loadBE32(ip + 16), proto: proto, sport: sport, dport: dport,
                    dscp: ip.load(fromByteOffset: 1, as: UInt8.self) >> 2,
                    fragmentID: loadBE16(ip + 4), fragmentOffset: fragment & 0x1FFF, moreFragments: fragment & 0x2000 != 0,
                    headerLength: UInt8(ihl))
    }
}

extension HeaderParser {
    /// The flow cache's key for an IPv4 frame, built as the eBPF program builds it
    /// (Sources/BPF/flowcache.bpf.c: fields as they lie in the frame), or nil for what the
    /// cache leaves to userspace: fragments, 802.1ad tags, frames cut short. `vlan` is
    /// TPID << 16 | TCI.
    @inline(__always)
    static func flowKey(_ frame: UnsafeRawPointer, length: Int, ifindex: Int32, vlan: UInt32?) -> vc_flow_key? {
        guard etherType(frame) == etherIPv4, let ip = ipv4(frame, length: length) else { return nil }
        return flowKey(frame, ip: ip, length: length, ifindex: ifindex, vlan: vlan)
    }

    /// The same from the frame's header as `ipv4` parsed it, so the data path reads a
    /// header once.
    @inline(__always)
    static func flowKey(_ frame: UnsafeRawPointer, ip: IPv4, length: Int, ifindex: Int32, vlan: UInt32?) -> vc_flow_key? {
        // The program reads 8 bytes past the IP header, whatever the protocol.
        let ihl = Int(ip.headerLength)
        guard length >= 14 + ihl + 8, ip.fragmentOffset == 0, !ip.moreFragments else { return nil }
        var key = vc_flow_key()
        if let vlan {
            guard vlan >> 16 == 0x8100 else { return nil }
            key.vlan_present = 1
            key.vlan_tci = UInt16(truncatingIfNeeded: vlan)
        }
        key.ifindex = UInt32(bitPattern: ifindex)
        key.src = ip.src.bigEndian
        key.dst = ip.dst.bigEndian
        key.proto = ip.proto
        key.dscp = ip.dscp
        // Ports as they lie in the frame: also where the IP total length leaves them out.
        let l4 = frame + 14 + ihl
        switch key.proto {
        case 6, 17:
            key.sport = l4.loadUnaligned(as: UInt16.self)
            key.dport = l4.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
        case 1:
            let type = l4.load(as: UInt8.self)
            if type == 0 || type == 8 {
                let id = l4.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
                key.sport = id
                key.dport = id
            }
        default:
            break
        }
        return key
    }

    /// The other direction of the flow, as it arrives on `ifindex`, its DSCP taken to be 0 (a
    /// reply marked otherwise misses once and is cached as it comes).
    @inline(__always)
    static func reversed(_ key: vc_flow_key, ifindex: Int32) -> vc_flow_key {
        var r = key
        r.ifindex = UInt32(bitPattern: ifindex)
        r.src = key.dst
        r.dst = key.src
        r.sport = key.dport
        r.dport = key.sport
        r.dscp = 0
        return r
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
