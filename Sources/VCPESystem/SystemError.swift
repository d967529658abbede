import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, on which object, and the kernel's errno.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var object: String
    public var errno: Errno
    /// What to do about it, when the errno alone would mislead.
    public var hint: String?

    public init(_ operation: String, _ object: String, _ errno: Errno, hint: String? = nil) {
        self.operation = operation
        self.object = object
        self.errno = errno
        self.hint = hint
    }

    public var description: String { "\(operation) \(object): \(errno) (errno \(errno.rawValue))" + (hint.map { ": \($0)" } ?? "") }
}

/// The one chokepoint for raw syscalls: retries EINTR, turns -1 into a typed error.
@discardableResult
public func syscall<R: BinaryInteger>(_ operation: String, _ object: String, _ body: () -> R) throws(SystemError) -> R {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = Errno(rawValue: vcpe_errno())
        if e == .interrupted { continue }
        throw SystemError(operation, object, e)
    }
}
