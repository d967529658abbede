import CNftnl
import VCPENet

/// Sets as nft stores them. Interval sets hold each range as a start element and an
/// end element one past it (flagged INTERVAL_END), with an end marker at zero first when
/// the lowest range does not start there; overlapping and adjacent ranges are merged.
enum SetBuilder {
    static let anonymousFlags = UInt32(NFT_SET_ANONYMOUS.rawValue | NFT_SET_CONSTANT.rawValue)

    /// A new nftnl_set with the set's attributes and the given elements; the caller frees it.
    /// The batch sends the attributes once (NEWSET) and the elements in chunks (NEWSETELEM).
    static func build(_ set: NftSet, table: NftTable, id: UInt32, anonymous: Bool,
                      elements: ArraySlice<(key: [UInt8], end: Bool)> = []) -> OpaquePointer {
        let s = nftnl_set_alloc()!
        nftnl_set_set_str(s, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
        nftnl_set_set_str(s, UInt16(NFTNL_SET_NAME.rawValue), set.name)
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(table.family.value))
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_KEY_TYPE.rawValue), set.keyType.datatype)
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_KEY_LEN.rawValue), set.keyType.length)
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_ID.rawValue), id)
        var flags: UInt32 = anonymous ? anonymousFlags : 0
        if set.interval { flags |= UInt32(NFT_SET_INTERVAL.rawValue) }
        nftnl_set_set_u32(s, UInt16(NFTNL_SET_FLAGS.rawValue), flags)
        if anonymous { nftnl_set_set_u32(s, UInt16(NFTNL_SET_DESC_SIZE.rawValue), UInt32(elementKeys(set).count)) }
        setKeyByteOrder(set.keyType, on: s)
        for (key, isEnd) in elements {
            let e = nftnl_set_elem_alloc()!
            key.withUnsafeBytes { _ = nftnl_set_elem_set(e, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
            if isEnd { nftnl_set_elem_set_u32(e, UInt16(NFTNL_SET_ELEM_FLAGS), UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue)) }
            nftnl_set_elem_add(s, e)
        }
        return s
    }

    /// nft reads a key's byte order from the set's user data to print elements back;
    /// interface names are host-order strings, addresses and ports network order.
    static func setKeyByteOrder(_ type: NftSet.KeyType, on s: OpaquePointer) {
        guard let buf = nftnl_udata_buf_alloc(UInt32(NFT_USERDATA_MAXLEN)) else { return }
        defer { nftnl_udata_buf_free(buf) }
        let hostEndian: UInt32 = 1, bigEndian: UInt32 = 2
        guard nftnl_udata_put_u32(buf, UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue), type == .ifname ? hostEndian : bigEndian) else { return }
        nftnl_set_set_data(s, UInt16(NFTNL_SET_USERDATA.rawValue), nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf))
    }

    /// The kernel's elements: keys in network byte order, each flagged as an interval end or not.
    static func elementKeys(_ set: NftSet) -> [(key: [UInt8], end: Bool)] {
        let width = Int(set.keyType.length)
        guard set.interval else { return set.elements.map { ($0.key, false) } }
        let ranges = set.elements.map(\.bounds)
        var out: [(key: [UInt8], end: Bool)] = []
        let merged = merge(ranges)
        if let first = merged.first, first.lo != 0 { out.append((Self.bytes(0, width), true)) }
        let max = width == 16 ? UInt128.max : (UInt128(1) << (8 * width)) - 1
        for r in merged {
            out.append((Self.bytes(r.lo, width), false))
            if r.hi != max { out.append((Self.bytes(r.hi + 1, width), true)) }
        }
        return out
    }

    static func merge(_ ranges: [(lo: UInt128, hi: UInt128)]) -> [(lo: UInt128, hi: UInt128)] {
        var out: [(lo: UInt128, hi: UInt128)] = []
        for r in ranges.sorted(by: { $0.lo < $1.lo }) {
            if let last = out.last, last.hi == .max || r.lo <= last.hi + 1 {
                out[out.count - 1].hi = Swift.max(last.hi, r.hi)
            } else {
                out.append(r)
            }
        }
        return out
    }

    static func bytes(_ v: UInt128, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * UInt128(width - 1 - $0))) }
    }
}

extension SetElement {
    /// The key of a single-valued element, in network byte order; names are IFNAMSIZ bytes, zero padded.
    var key: [UInt8] {
        switch self {
        case .prefix(let p): p.address.bytes
        case .ports(let r): be16(r.lo)
        case .interface(let n): Array(n.utf8.prefix(15)) + [UInt8](repeating: 0, count: 16 - min(15, n.utf8.count))
        }
    }

    /// The element as an inclusive range of integers in the key's width.
    var bounds: (lo: UInt128, hi: UInt128) {
        switch self {
        case .ports(let r): return (UInt128(r.lo), UInt128(r.hi))
        case .prefix(let p):
            func value(_ a: IPAddress) -> UInt128 {
                a.family == .v4 ? UInt128(a.v4Value) : UInt128(a.high) << 64 | UInt128(a.low)
            }
            return (value(p.network), value(p.last))
        case .interface:
            preconditionFailure("interface names are never interval elements")
        }
    }
}
