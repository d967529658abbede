/// `v` in lowercase hex, zero-padded to `width` digits (MAC octets, digests, bytes in messages).
public func zeroPaddedHex(_ v: some BinaryInteger, width: Int) -> String { zeroPadded(v, width: width, radix: 16) }

/// `v` in `radix` (lowercase), zero-padded to `width` digits (timestamps, MAC octets, digests).
public func zeroPadded(_ v: some BinaryInteger, width: Int, radix: Int = 10) -> String {
    let h = String(v, radix: radix)
    return h.count >= width ? h : String(repeating: "0", count: width - h.count) + h
}

/// FNV-1a of the text, as 16 hex digits: stable across runs and processes, unlike Hasher.
/// Names content in digests (tables, forwarder configurations); not a secure hash.
public func fnv1aDigest(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return zeroPaddedHex(h, width: 16)
}
