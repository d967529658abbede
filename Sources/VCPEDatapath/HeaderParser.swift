import VCPEClassifier
import VCPEDescriptor

/// Reads the classification key out of an Ethernet frame, without copying it.
public enum HeaderParser {
    static let etherIPv4: UInt16 = 0x0800
    static let etherIPv6: UInt16 = 0x86DD
    static let etherVLAN: UInt16 = 0x8100

    public static func flowKey(_ frame: UnsafeRawBufferPointer) -> FlowKey? {
        guard frame.count >= 14 else { return nil }
        var off = 12
        var type = be16(frame, off)
        if type == etherVLAN {
            guard frame.count >= 18 else { return nil }
            off += 4
            type = be16(frame, off)
        }
        off += 2
        switch type {
        case etherIPv4:
            guard frame.count >= off + 20 else { return nil }
            let ihl = Int(frame[off] & 0x0F) * 4
            guard ihl >= 20, frame.count >= off + ihl else { return nil }
            let proto = frame[off + 9]
            var key = FlowKey(src: IPAddress(v4: be32(frame, off + 12)), dst: IPAddress(v4: be32(frame, off + 16)),
                              proto: proto, dscp: frame[off + 1] >> 2)
            // Only the first fragment carries ports.
            let fragOffset = be16(frame, off + 6) & 0x1FFF
            if fragOffset == 0 { readPorts(frame, off + ihl, proto, &key) }
            return key
        case etherIPv6:
            guard frame.count >= off + 40 else { return nil }
            let proto = frame[off + 6]
            let tc = UInt8(truncatingIfNeeded: (be16(frame, off) >> 4) & 0xFF)
            var key = FlowKey(src: IPAddress(v6: be64(frame, off + 8), be64(frame, off + 16)),
                              dst: IPAddress(v6: be64(frame, off + 24), be64(frame, off + 32)), proto: proto, dscp: tc >> 2)
            readPorts(frame, off + 40, proto, &key)
            return key
        default:
            return nil
        }
    }

    private static func readPorts(_ f: UnsafeRawBufferPointer, _ off: Int, _ proto: UInt8, _ key: inout FlowKey) {
        guard proto == 6 || proto == 17, f.count >= off + 4 else { return }
        key.sport = be16(f, off)
        key.dport = be16(f, off + 2)
    }

    @inline(__always) static func be16(_ f: UnsafeRawBufferPointer, _ o: Int) -> UInt16 { UInt16(f[o]) << 8 | UInt16(f[o + 1]) }
    @inline(__always) static func be32(_ f: UnsafeRawBufferPointer, _ o: Int) -> UInt32 { UInt32(be16(f, o)) << 16 | UInt32(be16(f, o + 2)) }
    @inline(__always) static func be64(_ f: UnsafeRawBufferPointer, _ o: Int) -> UInt64 { UInt64(be32(f, o)) << 32 | UInt64(be32(f, o + 4)) }
}
