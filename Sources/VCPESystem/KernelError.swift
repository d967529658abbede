import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Something the kernel refused: a syscall, a netlink request, an nftables batch. Which
/// operation, on which object, the errno, and the kernel's own explanation (netlink's
/// extended ack) when it gave one.
public struct KernelError: Error, Sendable, CustomStringConvertible, Equatable {
    public var operation: String
    public var object: String
    public var errno: Errno
    /// The kernel's text (extended ack), or the library's when it failed before asking.
    public var kernelMessage: String?
    /// What to do about it, when the errno alone would mislead.
    public var hint: String?
    /// nftables: the sequence number of the message the kernel refused inside a batch.
    public var failedSequence: UInt32?

    public init(_ operation: String, _ object: String, _ errno: Errno, kernelMessage: String? = nil, hint: String? = nil,
                failedSequence: UInt32? = nil) {
        self.operation = operation
        self.object = object
        self.errno = errno
        self.kernelMessage = kernelMessage
        self.hint = hint
        self.failedSequence = failedSequence
    }

    /// The failed call's errno, read before the message's strings are built.
    public static func lastCall(_ operation: @autoclosure () -> String, _ object: @autoclosure () -> String,
                                hint: String? = nil) -> KernelError {
        let e = Errno.lastCall
        return KernelError(operation(), object(), e, hint: hint)
    }

    /// "OP OBJECT: ERRNO (errno N): kernel text": operators and tests grep this shape.
    public var description: String {
        "\(operation) \(object): \(errno) (errno \(errno.rawValue))" + (kernelMessage.map { ": \($0)" } ?? "")
            + (hint.map { ": \($0)" } ?? "")
    }
}

// The one place vcpe reads errno or makes an Errno from a library's code.
extension Errno {
    /// What the last failed call on this thread left in errno; read it before any other call.
    public static var lastCall: Errno { Errno(rawValue: vcpe_errno()) }
    /// A code a library returned instead of setting errno (posix_spawn, a UAPI answer).
    public init(code: Int32) { self.init(rawValue: code) }
    /// A negative return (libbpf, a netlink ack's error field): -EINVAL is EINVAL.
    public init(negated r: some SignedInteger) { self.init(rawValue: -Int32(truncatingIfNeeded: r)) }
}

/// The one chokepoint for raw syscalls: retries EINTR, turns -1 into a typed error.
@discardableResult
public func syscall<R: BinaryInteger>(_ operation: String, _ object: String, _ body: () -> R) throws(KernelError) -> R {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = Errno.lastCall
        if e == .interrupted { continue }
        throw KernelError(operation, object, e)
    }
}
