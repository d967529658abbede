/// An IPv4 or IPv6 address, stored as a 128-bit value (IPv4 in the low 32 bits).
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public enum Family: Sendable, Hashable { case v4, v6 }

    public let family: Family
    public let high: UInt64
    public let low: UInt64

    public init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    public init(v6 high: UInt64, _ low: UInt64) {
        family = .v6
        self.high = high
        self.low = low
    }

    public var bitWidth: Int { family == .v4 ? 32 : 128 }
    public var v4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    /// Network byte order, 4 or 16 bytes.
    public var bytes: [UInt8] {
        switch family {
        case .v4: return (0..<4).map { UInt8(truncatingIfNeeded: v4Value >> (24 - 8 * $0)) }
        case .v6: return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
                       + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
        }
    }

    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let v = Self.parseV6(Substring(text)) else { return nil }
            self = v
        } else {
            guard let v = Self.parseV4(Substring(text)) else { return nil }
            self.init(v4: v)
        }
    }

    static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for p in parts {
            // Leading zeros are rejected: inet_aton reads them as octal, so they are ambiguous.
            guard let octet = asciiDecimal(p, maxDigits: 3, leadingZeros: false), octet <= 255 else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    static func parseV6(_ text: Substring) -> IPAddress? {
        var groups: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func parseGroups(_ s: Substring, allowV4Tail: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, p) in parts.enumerated() {
                if allowV4Tail, i == parts.count - 1, p.contains(".") {
                    guard let v4 = parseV4(p) else { return nil }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard let g = asciiHex16(p) else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        if halves.count == 2 {
            sawGap = true
            guard let h = parseGroups(halves[0], allowV4Tail: false),
                  let t = parseGroups(halves[1], allowV4Tail: true) else { return nil }
            groups = h
            tail = t
        } else {
            guard let g = parseGroups(halves[0], allowV4Tail: true) else { return nil }
            groups = g
        }
        let total = groups.count + tail.count
        if sawGap { guard total <= 7 else { return nil } } else { guard total == 8 else { return nil } }
        let all = groups + Array(repeating: 0, count: 8 - total) + tail
        var hi: UInt64 = 0, lo: UInt64 = 0
        for g in all[0..<4] { hi = hi << 16 | UInt64(g) }
        for g in all[4..<8] { lo = lo << 16 | UInt64(g) }
        return IPAddress(v6: hi, lo)
    }

    public var description: String {
        switch family {
        case .v4:
            let v = v4Value
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        case .v6:
            let g = (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64($0))) }
                  + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64($0))) }
            // RFC 5952: compress the longest run (length >= 2) of zero groups, the first on ties.
            var best = (start: -1, len: 0), i = 0
            while i < 8 {
                if g[i] == 0 {
                    var j = i
                    while j < 8, g[j] == 0 { j += 1 }
                    if j - i > best.len, j - i >= 2 { best = (i, j - i) }
                    i = j
                } else { i += 1 }
            }
            let hex = g.map { String($0, radix: 16) }
            if best.start < 0 { return hex.joined(separator: ":") }
            return hex[0..<best.start].joined(separator: ":") + "::"
                 + hex[(best.start + best.len)...].joined(separator: ":")
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.family == .v4 ? 0 : 1, a.high, a.low) < (b.family == .v4 ? 0 : 1, b.high, b.low)
    }

    /// The address with its low `bitWidth - length` bits cleared.
    public func masked(to length: Int) -> IPAddress {
        let (h, l) = Self.mask(length: length, width: bitWidth)
        return family == .v4 ? IPAddress(v4: UInt32(truncatingIfNeeded: low & l))
                             : IPAddress(v6: high & h, low & l)
    }

    /// The address with its low host bits all set (the last address of the prefix).
    public func lastInPrefix(_ length: Int) -> IPAddress {
        let (h, l) = Self.mask(length: length, width: bitWidth)
        return family == .v4 ? IPAddress(v4: UInt32(truncatingIfNeeded: (low | ~l) & 0xFFFF_FFFF))
                             : IPAddress(v6: high | ~h, low | ~l)
    }

    /// Mask as (high, low) 64-bit words; for IPv4 only the low 32 bits matter.
    static func mask(length: Int, width: Int) -> (UInt64, UInt64) {
        if width == 32 {
            let m: UInt64 = length == 0 ? 0 : (0xFFFF_FFFF << UInt64(32 - length)) & 0xFFFF_FFFF
            return (0, m)
        }
        func word(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? ~0 : ~0 << UInt64(64 - bits) }
        return (word(length), word(length - 64))
    }

    /// The address `n` places further (wrapping within the family's width).
    public func adding(_ n: UInt64) -> IPAddress {
        switch family {
        case .v4: return IPAddress(v4: v4Value &+ UInt32(truncatingIfNeeded: n))
        case .v6:
            let (lo, carry) = low.addingReportingOverflow(n)
            return IPAddress(v6: high &+ (carry ? 1 : 0), lo)
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an IP address: \(text)"))
        }
        self = a
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An address with a prefix length. As a network (`IPPrefix.isCanonical`) host bits are zero;
/// as an interface address (`192.168.1.1/24`) they are the host's.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible, Codable {
    public let address: IPAddress
    public let length: Int

    public init(_ address: IPAddress, _ length: Int) {
        precondition(length >= 0 && length <= address.bitWidth)
        self.address = address
        self.length = length
    }

    /// `a.b.c.d/n`, `x::/n`; a bare address is a host prefix (/32 or /128) when `allowBare`.
    public init?(_ text: some StringProtocol, allowBare: Bool = false) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 1 {
            guard allowBare, let a = IPAddress(parts[0]) else { return nil }
            self.init(a, a.bitWidth)
            return
        }
        guard parts.count == 2, let a = IPAddress(parts[0]),
              let n = asciiDecimal(parts[1], maxDigits: 3, leadingZeros: false), n <= a.bitWidth else { return nil }
        self.init(a, n)
    }

    public var family: IPAddress.Family { address.family }
    public var network: IPAddress { address.masked(to: length) }
    public var last: IPAddress { address.lastInPrefix(length) }
    public var isCanonical: Bool { address == network }
    public var canonical: IPPrefix { IPPrefix(network, length) }
    public var description: String { "\(address)/\(length)" }

    public func contains(_ a: IPAddress) -> Bool {
        a.family == family && a.masked(to: length) == network
    }

    /// Whether every address of `other` is in this prefix.
    public func contains(_ other: IPPrefix) -> Bool {
        other.family == family && other.length >= length && contains(other.address)
    }

    public func overlaps(_ other: IPPrefix) -> Bool {
        contains(other) || other.contains(self)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let p = IPPrefix(text, allowBare: true) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a prefix: \(text)"))
        }
        self = p
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An inclusive port range; a single port is `lo == hi`.
public struct PortRange: Sendable, Hashable, CustomStringConvertible, Codable {
    public let lo: UInt16
    public let hi: UInt16

    public init(_ lo: UInt16, _ hi: UInt16) {
        precondition(lo <= hi)
        self.lo = lo
        self.hi = hi
    }

    public init(_ port: UInt16) { self.init(port, port) }

    public static let all = PortRange(0, 65535)

    public var description: String { lo == hi ? "\(lo)" : "\(lo)-\(hi)" }
    public func contains(_ p: UInt16) -> Bool { lo <= p && p <= hi }
    public func contains(_ r: PortRange) -> Bool { lo <= r.lo && r.hi <= hi }
    public func overlaps(_ r: PortRange) -> Bool { lo <= r.hi && r.lo <= hi }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(UInt16.self) { self.init(n); return }
        let text = try c.decode(String.self)
        let parts = text.split(separator: "-")
        guard parts.count == 2, let a = asciiDecimal(parts[0], maxDigits: 5), let b = asciiDecimal(parts[1], maxDigits: 5),
              a <= b, b <= 65535 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a port range: \(text)")
        }
        self.init(UInt16(a), UInt16(b))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if lo == hi { try c.encode(lo) } else { try c.encode(description) }
    }
}

/// The value of a string of ASCII digits ('0'...'9' bytes only, 1 to `maxDigits` of them,
/// no sign, no white space); nil otherwise. Numbers in descriptor strings are read with this
/// only: `Character.isNumber`-style checks accept "1\u{301}" or "٣", which `Int(_:)` refuses.
/// With `leadingZeros: false`, "0" is accepted but "01" is not.
package func asciiDecimal(_ text: some StringProtocol, maxDigits: Int, leadingZeros: Bool = true) -> Int? {
    precondition(maxDigits >= 1 && maxDigits <= 18)
    let u = text.utf8
    guard !u.isEmpty, u.count <= maxDigits else { return nil }
    if !leadingZeros, u.count > 1, u.first == UInt8(ascii: "0") { return nil }
    var n = 0
    for b in u {
        guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
        n = n * 10 + Int(b - UInt8(ascii: "0"))
    }
    return n
}

/// One to four ASCII hex digits, as in an IPv6 group.
func asciiHex16(_ text: some StringProtocol) -> UInt16? {
    let u = text.utf8
    guard !u.isEmpty, u.count <= 4 else { return nil }
    var n: UInt16 = 0
    for b in u {
        let d: UInt8
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
        default: return nil
        }
        n = n << 4 | UInt16(d)
    }
    return n
}

extension StringProtocol {
    /// Splits on a multi-character separator (stdlib `split` takes one element).
    package func components(separatedBy sep: String) -> [Substring] {
        var out: [Substring] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(rest[..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        out.append(rest)
        return out
    }
}
