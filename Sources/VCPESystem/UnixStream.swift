import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A connected AF_UNIX stream socket for line protocols (WireGuard's UAPI).
public final class UnixStream {
    let fd: FileDescriptor
    public let path: String

    /// Connects to `path`; reads and writes give up after `timeout`.
    public init(connectingTo path: String, timeout: Duration = .seconds(2)) throws(SystemError) {
        let raw = try syscall("socket AF_UNIX", path) { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(raw)
            throw SystemError("connect", path, .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let (sec, attos) = timeout.components
        var tv = timeval(tv_sec: Int(sec), tv_usec: Int(attos / 1_000_000_000_000))
        setsockopt(raw, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(raw, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                Glibc.connect(raw, p, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r != 0 {
            let e = Errno(rawValue: errno)
            close(raw)
            throw SystemError("connect", path, e)
        }
        fd = FileDescriptor(rawValue: raw)
        self.path = path
    }

    deinit { try? fd.close() }

    public func write(_ text: String) throws(SystemError) {
        do { _ = try fd.writeAll(Array(text.utf8)) } catch { throw SystemError("write", path, (error as? Errno) ?? .ioError) }
    }

    /// Reads until the received bytes end with `terminator` (or the peer closes).
    public func read(until terminator: String, limit: Int = 1 << 20) throws(SystemError) -> String {
        let end = Array(terminator.utf8)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !(out.count >= end.count && out.suffix(end.count).elementsEqual(end)) {
            let n: Int
            do { n = try buf.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) } } catch {
                let e = (error as? Errno) ?? .ioError
                throw SystemError("read", path, e == .wouldBlock ? .timedOut : e)
            }
            if n == 0 { break }
            out += buf[..<n]
            if out.count > limit { throw SystemError("read", path, .messageTooLong) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
