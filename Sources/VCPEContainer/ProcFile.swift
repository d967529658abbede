import SystemPackage

/// A /proc or /sys file read to its end. Those files say their size is 0 (or a page), so
/// Foundation's one-shot reads cut them short (/proc/self/maps at 4 KiB).
func readProcFile(_ path: String) -> String? {
    guard let fd = try? FileDescriptor.open(path, .readOnly) else { return nil }
    defer { try? fd.close() }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while true {
        guard let n = try? buf.withUnsafeMutableBytes({ try fd.read(into: $0, retryOnInterrupt: true) }) else { return nil }
        if n == 0 { return String(decoding: out, as: UTF8.self) }
        out += buf[..<n]
    }
}
