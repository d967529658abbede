import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Processes found through /proc: vcpe finds the daemons it started by what they run, so
/// a crash of vcpe or a lost pid file never leaves one unaccounted for.
public enum ProcessTable {
    /// Live processes whose program (argv[0]'s last component) is `program` and whose last
    /// argument is `lastArgument`.
    public static func find(program: String, lastArgument: String) -> [pid_t] {
        find(program: program, lastArguments: [lastArgument])[lastArgument] ?? []
    }

    /// The same for several last arguments in one pass over /proc (reading it costs about a
    /// millisecond per hundred processes).
    public static func find(program: String, lastArguments: Set<String>) -> [String: [pid_t]] {
        guard let dir = opendir("/proc") else { return [:] }
        defer { closedir(dir) }
        var out: [String: [pid_t]] = [:]
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = pid_t(name), let args = arguments(of: pid), args.count >= 2, let last = args.last else { continue }
            if lastArguments.contains(last), args[0].split(separator: "/").last.map(String.init) == program, isAlive(pid) {
                out[last, default: []].append(pid)
            }
        }
        return out
    }

    /// argv of a process, or nil when it is gone.
    public static func arguments(of pid: pid_t) -> [String]? {
        guard let bytes = readKernelFile("/proc/\(pid)/cmdline"), !bytes.isEmpty else { return nil }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    /// True while the process exists and has not exited (a zombie has).
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = readKernelFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")),
              close + 2 < stat.count else { return false }
        return stat[close + 2] != UInt8(ascii: "Z") && stat[close + 2] != UInt8(ascii: "X")
    }

    /// Whether the process runs as root: its real and effective uids (/proc/PID/status),
    /// not the owner of /proc/PID, which is root for any process that made itself
    /// undumpable or runs a setuid program.
    public static func runsAsRoot(_ pid: pid_t) -> Bool {
        guard let bytes = readKernelFile("/proc/\(pid)/status"),
              let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return false }
        let ids = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().prefix(2)
        return ids.count == 2 && ids.allSatisfy { $0 == "0" }
    }

    /// Resident memory in bytes (VmRSS), or nil when the process is gone.
    public static func residentBytes(of pid: pid_t) -> UInt64? {
        guard let bytes = readKernelFile("/proc/\(pid)/status") else { return nil }
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { UInt64($0.split(separator: " ")[1]) }.map { $0 * 1024 }
    }

    /// SIGTERM, up to `grace` for it to end, then SIGKILL. Reaps it if it is the caller's
    /// child. Returns false only if it was still alive after SIGKILL and another `grace`.
    @discardableResult
    public static func terminate(_ pid: pid_t, grace: Duration = .seconds(2)) -> Bool {
        for signal in [SIGTERM, SIGKILL] {
            guard kill(pid, signal) == 0 else { return true }  // already gone
            let steps = Int(grace / .milliseconds(10))
            for _ in 0..<steps {
                var status: Int32 = 0
                _ = waitpid(pid, &status, WNOHANG)
                if !isAlive(pid) { return true }
                usleep(10_000)
            }
        }
        return !isAlive(pid)
    }
}

/// A /proc or /sys file read to its end, or nil if it cannot be opened. Those files say
/// their size is 0 (or a page), so Foundation's one-shot reads cut them short
/// (/proc/self/maps at 4 KiB).
public func readKernelFile(_ path: String) -> [UInt8]? {
    guard let fd = try? FileDescriptor.open(path, .readOnly) else { return nil }
    defer { try? fd.close() }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while let n = try? buf.withUnsafeMutableBytes({ try fd.read(into: $0, retryOnInterrupt: true) }), n > 0 { out += buf[..<n] }
    return out
}
