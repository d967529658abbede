import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A connected AF_UNIX stream socket for line protocols (WireGuard's UAPI, the forwarder's
/// control socket).
public final class UnixStream {
    let fd: FileDescriptor
    public let path: String
    /// When reading gives up, whatever the peer sends meanwhile: a peer that trickles a byte
    /// at a time cannot hold a reader for longer (the per-read timeout alone would let it).
    public let deadline: ContinuousClock.Instant
    /// What SO_RCVTIMEO is set to now.
    private var receiveTimeout: Duration

    /// Connects to `path`; reads and writes give up after `timeout`, and a whole answer is
    /// read within `timeout` too.
    public init(connectingTo path: String, timeout: Duration = .seconds(2)) throws(KernelError) {
        deadline = .now + timeout
        receiveTimeout = timeout
        let raw = try unixSocket(path)
        do throws(KernelError) {
            setTimeouts(raw, timeout)
            try withUnixAddress(path, "connect") { (p, n) throws(KernelError) in try syscall("connect", path) { Glibc.connect(raw, p, n) } }
        } catch {
            close(raw)
            throw error
        }
        fd = FileDescriptor(rawValue: raw)
        self.path = path
    }

    /// A connection `UnixListener` accepted.
    init(accepted raw: Int32, path: String, timeout: Duration) {
        deadline = .now + timeout
        receiveTimeout = timeout
        setTimeouts(raw, timeout)
        fd = FileDescriptor(rawValue: raw)
        self.path = path
    }

    deinit { try? fd.close() }

    /// Writes `text` with `descriptors` passed along (SCM_RIGHTS); the peer gets its own copies.
    public func write(_ text: String, passing descriptors: [Int32]) throws(KernelError) {
        var bytes = Array(text.utf8)
        let count = bytes.count
        let sent = try syscall("sendmsg", path) { vcpe_send_with_fds(fd.rawValue, &bytes, count, descriptors, Int32(descriptors.count)) }
        if sent < count { try write(String(decoding: bytes[sent...], as: UTF8.self)) }
    }

    /// Reads one line (up to and without "\n") and, if `receivingDescriptors`, the
    /// descriptors passed with it; otherwise any that came are closed (a peer cannot make
    /// this process hold its descriptors). A line longer than `limit` bytes is an error
    /// (EMSGSIZE): a peer cannot grow this process's memory.
    public func readLine(receivingDescriptors: Bool, limit: Int = 1 << 20) throws(KernelError) -> (line: String, descriptors: [Int32]) {
        var out: [UInt8] = [], fds: [Int32] = []
        var byte: UInt8 = 0
        var got = [Int32](repeating: -1, count: Int(VCPE_MAX_PASSED_FDS))
        // Whatever came and is not handed to the caller (not wanted, or an error) is closed.
        var handed = false
        defer { if !handed { for d in fds { close(d) } } }
        // A byte at a time: the line is short, and nothing past it may be consumed.
        while true {
            try checkDeadline("read line")
            var count: Int32 = 0
            let n = try syscall("recvmsg", path) { vcpe_recv_with_fds(fd.rawValue, &byte, 1, &got, Int32(got.count), &count) }
            fds += got.prefix(Int(count))
            if n == 0 || byte == UInt8(ascii: "\n") { break }
            guard out.count < limit else { throw KernelError("read line", path, .messageTooLong) }
            out.append(byte)
        }
        handed = receivingDescriptors
        return (String(decoding: out, as: UTF8.self), receivingDescriptors ? fds : [])
    }

    /// Who is at the other end, as the kernel saw it connect (SO_PEERCRED): not what the
    /// peer says of itself.
    public func peer() throws(KernelError) -> PeerCredentials {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        try syscall("getsockopt SO_PEERCRED", path) { vcpe_peer_credentials(fd.rawValue, &pid, &uid, &gid) }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    public func write(_ text: String) throws(KernelError) {
        do { _ = try fd.writeAll(Array(text.utf8)) } catch { throw KernelError("write", path, (error as? Errno) ?? .ioError) }
    }

    /// Reads until the received bytes end with `terminator` (or the peer closes).
    public func read(until terminator: String, limit: Int = 1 << 20) throws(KernelError) -> String {
        let end = Array(terminator.utf8)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !(out.count >= end.count && out.suffix(end.count).elementsEqual(end)) {
            try checkDeadline("read")
            let n: Int
            do { n = try buf.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) } } catch {
                let e = (error as? Errno) ?? .ioError
                throw KernelError("read", path, e == .wouldBlock ? .timedOut : e)
            }
            if n == 0 { break }
            out += buf[..<n]
            if out.count > limit { throw KernelError("read", path, .messageTooLong) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension UnixStream {
    /// Past the deadline: timed out. Before it: the next read waits at most what is left,
    /// give or take 50 ms (the socket's receive timeout is lowered when it would overshoot
    /// by more, not reset before every read: a line is read a byte at a time).
    private func checkDeadline(_ operation: String) throws(KernelError) {
        let left = deadline - .now
        guard left > .zero else { throw KernelError(operation, path, .timedOut) }
        guard left < receiveTimeout - .milliseconds(50) else { return }
        receiveTimeout = left
        var tv = timeval(tv_sec: Int(left.components.seconds), tv_usec: max(1, Int(left.components.attoseconds / 1_000_000_000_000)))
        setsockopt(fd.rawValue, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// The process, user and group of a unix socket's peer.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: pid_t
    public var uid: uid_t
    public var gid: gid_t
}

/// A listening AF_UNIX stream socket at `path` (replacing a stale one), reachable by root
/// only unless `group` may connect too. The file has its mode from the moment it exists
/// (set on the socket before bind), and its group before anyone can connect (listen).
public final class UnixListener {
    let fd: Int32
    public let path: String

    public init(path: String, backlog: Int32 = 16, group: gid_t? = nil) throws(KernelError) {
        unlink(path)
        let raw = try unixSocket(path)
        do throws(KernelError) {
            // Linux gives the socket file the socket inode's mode (less the umask) at bind: it
            // is never looser than root's alone. The group gets in before listen, when a
            // connect could first succeed.
            try syscall("fchmod socket", path) { fchmod(raw, 0o600) }
            do throws(KernelError) {
                try withUnixAddress(path, "bind") { (p, n) throws(KernelError) in try syscall("bind", path) { bind(raw, p, n) } }
            } catch where error.errno == .noSuchAddressOrDevice || error.errno == .notSupported {
                // A shared file system (9p, virtiofs without sockets, some FUSE) has no unix
                // sockets: say which directory, not only an errno that names a device.
                let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
                throw KernelError(error.operation, error.object, error.errno,
                                  hint: "the file system of \(dir.isEmpty ? "." : dir) cannot hold unix sockets; put the state directory on a local file system (e.g. under /var/lib or /run)")
            }
            if let group {
                try syscall("chown socket", path) { lchown(path, 0, group) }
                try syscall("chmod socket", path) { chmod(path, 0o660) }
            }
            try syscall("listen", path) { Glibc.listen(raw, backlog) }
        } catch {
            close(raw)
            throw error
        }
        fd = raw
        self.path = path
    }

    deinit { close(fd) }

    /// The next connection; its reads and writes give up after `timeout`.
    public func accept(timeout: Duration = .seconds(5)) throws(KernelError) -> UnixStream {
        let raw = try syscall("accept", path) { Glibc.accept(fd, nil, nil) }
        _ = fcntl(raw, F_SETFD, FD_CLOEXEC)
        return UnixStream(accepted: raw, path: path, timeout: timeout)
    }
}

private func unixSocket(_ path: String) throws(KernelError) -> Int32 {
    try syscall("socket AF_UNIX", path) { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
}

private func setTimeouts(_ raw: Int32, _ timeout: Duration) {
    let (sec, attos) = timeout.components
    var tv = timeval(tv_sec: Int(sec), tv_usec: Int(attos / 1_000_000_000_000))
    setsockopt(raw, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(raw, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}

/// `path` as a sockaddr_un for `body`; a path too long for one is an error of `operation`.
private func withUnixAddress(_ path: String, _ operation: String,
                             _ body: (UnsafePointer<sockaddr>, socklen_t) throws(KernelError) -> Void) throws(KernelError) {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw KernelError(operation, path, .fileNameTooLong) }
    withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
    try withUnsafePointer(to: &addr) { (a: UnsafePointer<sockaddr_un>) throws(KernelError) in
        try a.withMemoryRebound(to: sockaddr.self, capacity: 1) { (p: UnsafePointer<sockaddr>) throws(KernelError) in
            try body(p, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
}
