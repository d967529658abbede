import VCPENet
/// A place in a source file, 1-based, columns counted in Unicode scalars.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static let start = SourceLocation(line: 1, column: 1)
    public var description: String { "\(line):\(column)" }
}

/// A JSON value with the place it starts at. Numbers keep their literal text so that
/// integers are never rounded through Double.
public struct JSONNode: Sendable {
    public enum Kind: Sendable {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([JSONNode])
        case object([JSONMember])
    }

    public var kind: Kind
    public var location: SourceLocation

    /// What the value is, for "expected X, got Y" messages.
    public var typeName: String {
        switch kind {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// A short rendering of the value for messages: `70000`, `"ACME corp"`, `an object`.
    public var shortText: String {
        switch kind {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n
        case .string(let s):
            s.count > 40 ? "\"\(s.prefix(37))...\"" : "\"\(s)\""
        case .array, .object: typeName
        }
    }
}

extension JSONNode {
    /// The value a pointer names (the first member of a repeated key), if there is one.
    public func node(at pointer: JSONPointer) -> JSONNode? {
        var n = self
        for t in pointer.tokens {
            switch n.kind {
            case .object(let members):
                guard let m = members.first(where: { $0.key == t }) else { return nil }
                n = m.value
            case .array(let items):
                guard let i = asciiDecimal(t, maxDigits: 18), i < items.count else { return nil }
                n = items[i]
            default: return nil
            }
        }
        return n
    }
}

public struct JSONMember: Sendable {
    public var key: String
    public var keyLocation: SourceLocation
    public var value: JSONNode
}

/// RFC 6901 JSON pointer, built while walking a document.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible, Codable {
    public private(set) var tokens: [String]

    public init(_ tokens: [String] = []) { self.tokens = tokens }

    public static let root = JSONPointer()

    public func appending(_ key: String) -> JSONPointer { JSONPointer(tokens + [key]) }
    public func appending(_ index: Int) -> JSONPointer { JSONPointer(tokens + [String(index)]) }
    public static func / (lhs: JSONPointer, rhs: String) -> JSONPointer { lhs.appending(rhs) }
    public static func / (lhs: JSONPointer, rhs: Int) -> JSONPointer { lhs.appending(rhs) }

    /// The RFC form; the root is the empty string.
    public var rfcString: String {
        tokens.map { "/" + $0.replacing("~", with: "~0").replacing("/", with: "~1") }.joined()
    }

    /// For people: like the RFC form, but the root reads `/`.
    public var description: String { tokens.isEmpty ? "/" : rfcString }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        tokens = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            String($0).replacing("~1", with: "/").replacing("~0", with: "~")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rfcString)
    }
}
