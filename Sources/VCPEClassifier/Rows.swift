import VCPENet

/// How rules and keys become rows of 32-bit lanes for the kernels (see vclass.h): every
/// field left-aligned, so the top bits of a lane are a prefix of the field.
///   IPv4, 8 lanes:  src, dst, sport, dport, proto, dscp, ingress, index
///   IPv6, 16 lanes: src[4], dst[4], sport, dport, proto, dscp, ingress, -, -, index
enum Rows {
    static func lanes(_ f: IPAddress.Family) -> Int { f == .v4 ? 8 : 16 }

    /// Lanes a table may hash on: addresses, destination port, protocol. More lanes split
    /// rules over more tables, and every table costs a probe.
    static func hashLanes(_ f: IPAddress.Family) -> [Int] { f == .v4 ? [0, 1, 3, 4] : [0, 1, 4, 5, 9, 10] }

    /// The bits a lane's field has (shorter fields are left-aligned in 32).
    static func fieldBits(_ f: IPAddress.Family, lane: Int) -> Int {
        let base = f == .v4 ? 2 : 8
        switch lane - base {
        case 0, 1: return 16
        case 2: return 8
        case 3: return 6
        default: return 32
        }
    }

    /// lo row then hi row.
    static func rule(_ r: PacketRule, index: Int, family f: IPAddress.Family) -> [UInt32] {
        let n = lanes(f)
        var lo = [UInt32](repeating: 0, count: n), hi = [UInt32](repeating: .max, count: n)
        let words = f == .v4 ? 1 : 4
        for (at, prefix) in [(0, r.src), (words, r.dst)] {
            guard let prefix else { continue }
            let net = words32(prefix.network), last = words32(prefix.last)
            for w in 0..<words { lo[at + w] = net[w]; hi[at + w] = last[w] }
        }
        let base = 2 * words
        func field(_ lane: Int, _ l: UInt32, _ h: UInt32, bits: Int) {
            let shift = UInt32(32 - bits)
            lo[lane] = l << shift
            hi[lane] = shift == 0 ? h : (h << shift) | ((1 << shift) - 1)
        }
        field(base, UInt32(r.sport.lo), UInt32(r.sport.hi), bits: 16)
        field(base + 1, UInt32(r.dport.lo), UInt32(r.dport.hi), bits: 16)
        if let p = r.proto { field(base + 2, UInt32(p), UInt32(p), bits: 8) }
        if let d = r.dscp { field(base + 3, UInt32(d), UInt32(d), bits: 6) }
        if let i = r.ingress { field(base + 4, i, i, bits: 32) }
        lo[n - 1] = UInt32(index)
        return lo + hi
    }

    /// Writes the key's row at `out`.
    static func key(_ k: FlowKey, into out: UnsafeMutablePointer<UInt32>) {
        let v6 = k.src.family == .v6
        let words = v6 ? 4 : 1
        let s = words32(k.src), d = words32(k.dst)
        for w in 0..<words { out[w] = s[w]; out[words + w] = d[w] }
        let base = 2 * words
        out[base] = UInt32(k.sport) << 16
        out[base + 1] = UInt32(k.dport) << 16
        out[base + 2] = UInt32(k.proto) << 24
        out[base + 3] = UInt32(k.dscp & 63) << 26
        out[base + 4] = k.ingress
        if v6 { out[13] = 0; out[14] = 0 }
        out[(v6 ? 16 : 8) - 1] = .max
    }

    /// An IPv4 key's row without building a FlowKey: the data path's call, no allocation.
    @inline(__always)
    static func keyV4(src: UInt32, dst: UInt32, proto: UInt8, sport: UInt16, dport: UInt16, dscp: UInt8, ingress: UInt32,
                      into out: UnsafeMutablePointer<UInt32>) {
        out[0] = src
        out[1] = dst
        out[2] = UInt32(sport) << 16
        out[3] = UInt32(dport) << 16
        out[4] = UInt32(proto) << 24
        out[5] = UInt32(dscp & 63) << 26
        out[6] = ingress
        out[7] = .max
    }

    static func words32(_ a: IPAddress) -> [UInt32] {
        a.family == .v4 ? [a.v4Value]
            : [UInt32(truncatingIfNeeded: a.high >> 32), UInt32(truncatingIfNeeded: a.high),
               UInt32(truncatingIfNeeded: a.low >> 32), UInt32(truncatingIfNeeded: a.low)]
    }
}
