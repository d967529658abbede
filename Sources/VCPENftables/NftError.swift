import SystemPackage

public struct NftError: Error, Sendable, CustomStringConvertible, Equatable {
    public var operation: String
    public var object: String
    public var errno: Errno
    public var kernelMessage: String?
    /// The sequence number of the message the kernel refused, inside a batch.
    var failedSequence: UInt32? = nil

    public var description: String {
        "\(operation) \(object): \(errno) (errno \(errno.rawValue))" + (kernelMessage.map { ": \($0)" } ?? "")
    }

    /// The ruleset changed between reading it and committing: someone else was writing.
    public var isConcurrentChange: Bool { errno.rawValue == 85 }  // ERESTART
}
