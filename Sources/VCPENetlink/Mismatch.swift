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
