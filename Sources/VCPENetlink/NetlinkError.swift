import SystemPackage

/// A request the kernel refused: what was asked, of which object, the errno and the
/// kernel's own explanation (extended ack) when it gave one.
public struct NetlinkError: Error, Sendable, CustomStringConvertible, Equatable {
    public var operation: String
    public var object: String
    public var errno: Errno
    public var kernelMessage: String?

    public var description: String {
        "\(operation) \(object): \(errno) (errno \(errno.rawValue))" + (kernelMessage.map { ": \($0)" } ?? "")
    }
}

/// An object exists with other properties than asked: reported, never overwritten silently.
public struct MismatchError: Error, Sendable, CustomStringConvertible, Equatable {
    public var object: String
    public var differences: [String]
    public var description: String { "\(object) exists with other properties: " + differences.joined(separator: "; ") }
}

/// What an `ensure` call did.
public enum EnsureResult: Sendable, Equatable {
    case created
    case unchanged
}
