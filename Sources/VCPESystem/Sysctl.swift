import SystemPackage

/// Per-namespace sysctls under /proc/sys. The file is opened inside the namespace (that is
/// when /proc/sys/net binds to one); reading and writing happen afterwards.
public enum Sysctl {
    static func path(_ key: String) -> FilePath { FilePath("/proc/sys/" + key.replacing(".", with: "/")) }

    public static func read(_ key: String, namespace: String?) throws -> String {
        try NetworkNamespace.perform(in: namespace) { try readHere(key) }
    }

    /// Reads on the calling thread, which must already be in the namespace wanted.
    public static func readHere(_ key: String) throws -> String {
        let fd = try FileDescriptor.open(path(key), .readOnly)
        defer { try? fd.close() }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = try buf.withUnsafeMutableBytes { try fd.read(into: $0) }
        return String(decoding: buf[..<n], as: UTF8.self).trimmingSuffix("\n")
    }

    public static func write(_ key: String, _ value: String, namespace: String?) throws {
        try write(path(key), key, value, namespace: namespace)
    }

    /// `net.ipv6.conf.INTERFACE.KEY`: by path, since interface names may hold dots.
    public static func writeIPv6(interface: String, _ key: String, _ value: String, namespace: String?) throws {
        try write(FilePath("/proc/sys/net/ipv6/conf/\(interface)/\(key)"), "net.ipv6.conf.\(interface).\(key)", value, namespace: namespace)
    }

    private static func write(_ path: FilePath, _ key: String, _ value: String, namespace: String?) throws {
        let fd = try NetworkNamespace.perform(in: namespace) { try FileDescriptor.open(path, .writeOnly) }
        defer { try? fd.close() }
        do {
            _ = try fd.writeAll(Array((value + "\n").utf8))
        } catch let e as Errno {
            throw KernelError("write sysctl", "\(key)=\(value) in \(namespace ?? "host")", e)
        }
    }
}

extension String {
    func trimmingSuffix(_ s: String) -> String {
        var out = self
        while out.hasSuffix(s) { out.removeLast(s.count) }
        return out
    }
}
