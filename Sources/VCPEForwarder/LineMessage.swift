import Foundation
import VCPENet

/// What the forwarder's two line protocols share (the broker's, the worker's control
/// socket): a message is one JSON object on one line, carrying its protocol's version and
/// within the protocol's size bound. Anything else is refused with a reason, never guessed at.
public protocol LineMessage: Codable, Sendable {
    /// The protocol's version: the other side refuses a message of another one.
    static var protocolVersion: Int { get }
    /// The most bytes a line may have, newline excluded.
    static var maxLine: Int { get }
}

/// A reply can always say why it has nothing else to say.
public protocol LineReply: LineMessage {
    init(error: String)
}

/// A line that is not a message of the protocol: too long, not JSON, another version, a
/// field missing, unknown or malformed (a customer name that is not one, say).
public struct MessageRefused: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension LineMessage {
    /// The message as one line, newline included.
    public func line() throws(MessageRefused) -> String {
        let data: Data
        do { data = try JSONEncoder().encode(Versioned(message: self)) } catch { throw MessageRefused(Self.reason(error)) }
        guard data.count <= Self.maxLine else { throw MessageRefused("\(data.count) bytes, more than \(Self.maxLine)") }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The message a line carries (its newline, if any, excluded).
    public static func decode(_ line: String) throws(MessageRefused) -> Self {
        var bytes = Array(line.utf8)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        guard bytes.count <= maxLine else { throw MessageRefused("longer than \(maxLine) bytes") }
        let data = Data(bytes)
        // The version first: a message of another version may mean something else entirely.
        let version: Int
        do { version = try JSONDecoder().decode(VersionProbe.self, from: data).version } catch {
            throw MessageRefused("not a JSON object with a version")
        }
        guard version == protocolVersion else { throw MessageRefused("protocol version \(version), this side speaks \(protocolVersion)") }
        do { return try JSONDecoder().decode(Versioned<Self>.self, from: data).message } catch { throw MessageRefused(reason(error)) }
    }

    /// A decoding error as a reason a peer can act on (Foundation's text names its internals).
    static func reason(_ error: any Error) -> String {
        let context: DecodingError.Context
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: return "missing \(key.stringValue)"
        case .typeMismatch(_, let c)?, .valueNotFound(_, let c)?, .dataCorrupted(let c)?: context = c
        default:
            if case .invalidValue(_, let c)? = error as? EncodingError { return c.debugDescription }
            return "\(error)"
        }
        let at = context.codingPath.map(\.stringValue).joined(separator: ".")
        return (at.isEmpty ? "" : at + ": ") + context.debugDescription
    }
}

extension LineReply {
    /// The reply's line; one that cannot be encoded becomes an error reply saying so.
    public var lineOrError: String {
        do { return try line() } catch {
            return (try? Self(error: "the reply could not be encoded: \(error)").line()) ?? "\n"
        }
    }
}

private struct VersionProbe: Decodable {
    var version: Int
}

/// A message with its protocol's version beside its own fields, in one JSON object.
private struct Versioned<M: LineMessage>: Codable {
    var message: M
    enum Keys: String, CodingKey { case version }

    init(message: M) { self.message = message }
    init(from decoder: any Decoder) throws { message = try M(from: decoder) }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(M.protocolVersion, forKey: .version)
        try message.encode(to: encoder)
    }
}

/// Any key of a JSON object, to find those a request must not have.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Refuses a request with fields besides `allowed` (and the version): what this side
    /// does not know it must not silently ignore (a size the peer wants, say).
    func requireOnly(_ allowed: Set<String>) throws {
        let extra = try container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter { !allowed.contains($0) && $0 != "version" }
        guard extra.isEmpty else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "unknown field \(extra.sorted().joined(separator: ", "))"))
        }
    }
}

extension KeyedDecodingContainer {
    /// A customer's name, checked as everything vcpe names after it is.
    func decodeCustomer(forKey key: Key) throws -> String {
        let name = try decode(String.self, forKey: key)
        guard KernelNames.isValidName(name, maxLength: KernelNames.maxCustomerName) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "not a customer name: \(name.debugDescription)")
        }
        return name
    }
}

extension KeyedEncodingContainer {
    /// The encoding side of `decodeCustomer`: this side sends no name the other would refuse.
    mutating func encodeCustomer(_ name: String, forKey key: Key) throws {
        guard KernelNames.isValidName(name, maxLength: KernelNames.maxCustomerName) else {
            throw EncodingError.invalidValue(name, .init(codingPath: codingPath + [key], debugDescription: "not a customer name: \(name.debugDescription)"))
        }
        try encode(name, forKey: key)
    }
}
