/// Netlink attributes (type-length-value, 4-byte aligned, host byte order), built and read
/// in Swift so that generic netlink families need no C beyond the socket.
public struct NetlinkAttributeWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    static let nested: UInt16 = 1 << 15  // NLA_F_NESTED

    public init() {}

    public mutating func put(_ type: UInt16, _ payload: [UInt8]) {
        let length = 4 + payload.count
        bytes += withUnsafeBytes(of: UInt16(length).littleEndian, Array.init)
        bytes += withUnsafeBytes(of: type.littleEndian, Array.init)
        bytes += payload
        bytes += [UInt8](repeating: 0, count: (4 - length % 4) % 4)
    }

    public mutating func put<T: FixedWidthInteger>(_ type: UInt16, _ value: T) {
        put(type, withUnsafeBytes(of: value.littleEndian, Array.init))
    }

    /// A NUL-terminated string.
    public mutating func put(_ type: UInt16, string: String) { put(type, Array(string.utf8) + [0]) }

    public mutating func nest(_ type: UInt16, _ body: (inout NetlinkAttributeWriter) -> Void) {
        var inner = NetlinkAttributeWriter()
        body(&inner)
        put(type | Self.nested, inner.bytes)
    }
}

public struct NetlinkAttribute: Sendable {
    /// Without the nested and byte-order flags.
    public var type: UInt16
    public var payload: [UInt8]

    /// Attributes packed in `bytes`; a truncated tail is ignored.
    public static func parse(_ bytes: [UInt8]) -> [NetlinkAttribute] {
        var out: [NetlinkAttribute] = []
        var at = 0
        while at + 4 <= bytes.count {
            let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8
            let type = (UInt16(bytes[at + 2]) | UInt16(bytes[at + 3]) << 8) & 0x3FFF
            guard length >= 4, at + length <= bytes.count else { break }
            out.append(NetlinkAttribute(type: type, payload: Array(bytes[(at + 4)..<(at + length)])))
            at += (length + 3) & ~3
        }
        return out
    }

    public var nested: [NetlinkAttribute] { Self.parse(payload) }

    /// A host-order integer `offset` bytes into the payload.
    public func integer<T: FixedWidthInteger>(_: T.Type = T.self, at offset: Int = 0) -> T? {
        guard payload.count >= offset + MemoryLayout<T>.size else { return nil }
        return payload.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    public var string: String { String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self) }
}

extension Array where Element == NetlinkAttribute {
    public func first(_ type: some BinaryInteger) -> NetlinkAttribute? { first { $0.type == UInt16(type) } }
}
