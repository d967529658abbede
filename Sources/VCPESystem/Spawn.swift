import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Starts a program that outlives the caller: its own session, no signals blocked,
/// standard streams on /dev/null and no other descriptors, not waited for (init reaps it once the caller is gone).
public func spawnDetached(_ path: String, _ arguments: [String]) throws(KernelError) {
    _ = try spawnProcess(path, arguments, stdout: nil, stderr: nil)
}

/// Starts a program the caller waits for (`waitpid`), with vcpe's rules for daemons:
/// its own session, default signals, stdin/stdout on /dev/null, stderr on `stderr`.
public func spawnChild(_ path: String, _ arguments: [String], stderr: Int32? = nil) throws(KernelError) -> pid_t {
    try spawnProcess(path, arguments, stdout: nil, stderr: stderr)
}

/// What a program run to completion left: its exit status and what it wrote to stderr.
public struct ProgramResult: Sendable {
    /// The exit code, or 128 + the signal that ended it.
    public var status: Int32
    public var stderr: String
    /// Captured only when asked for (`captureOutput`).
    public var stdout: String = ""
}

/// Runs a program to its end in its own session, inside `namespace` (nil: the caller's),
/// with stdin on /dev/null, stderr captured and stdout captured too or on /dev/null.
/// Processes it leaves behind (daemons) keep the namespace and nothing of the caller.
public func runProgram(_ path: String, _ arguments: [String], namespace: String? = nil, captureOutput: Bool = false) throws -> ProgramResult {
    var err: [Int32] = [-1, -1], out: [Int32] = [-1, -1]
    try syscall("pipe", path) { pipe(&err) }
    if captureOutput {
        do { try syscall("pipe", path) { pipe(&out) } } catch { for fd in err { close(fd) }; throw error }
    }
    for fd in err + out where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let errReader = FileDescriptor(rawValue: err[0])
    defer { try? errReader.close(); if out[0] >= 0 { close(out[0]) } }
    let pid: pid_t
    do {
        // A child inherits the network namespace of the thread that spawns it.
        pid = try NetworkNamespace.perform(in: namespace) {
            try spawnProcess(path, arguments, stdout: captureOutput ? out[1] : nil, stderr: err[1])
        }
        close(err[1]); if out[1] >= 0 { close(out[1]) }
    } catch {
        close(err[1]); if out[1] >= 0 { close(out[1]) }
        throw error
    }
    // stdout first: a program's output fits the pipe less often than its errors do.
    let stdout = captureOutput ? try readAll(FileDescriptor(rawValue: out[0]), limit: 16 << 20) : []
    let stderr = try readAll(errReader, limit: 64 << 10)
    let code = try waitForExit(pid, path)
    return ProgramResult(status: code, stderr: String(decoding: stderr, as: UTF8.self), stdout: String(decoding: stdout, as: UTF8.self))
}

/// How a child ended, from waitpid's status word.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus s: Int32) { self = (s & 0x7f) == 0 ? .exited((s >> 8) & 0xff) : .signaled(s & 0x7f) }

    /// As a shell says it: the exit code, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let c): c
        case .signaled(let s): 128 + s
        }
    }

    /// "exit 1", "signal 9".
    public var description: String {
        switch self {
        case .exited(let c): "exit \(c)"
        case .signaled(let s): "signal \(s)"
        }
    }
}

/// Waits for a child to end: its exit code, or 128 + the signal that ended it.
public func waitForExit(_ pid: pid_t, _ program: String) throws(KernelError) -> Int32 {
    var status: Int32 = 0
    try syscall("waitpid", program) { waitpid(pid, &status, 0) }
    return ExitStatus(waitStatus: status).code
}

/// Reads to end of file, keeping at most `limit` bytes.
private func readAll(_ fd: FileDescriptor, limit: Int) throws -> [UInt8] {
    var captured: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = try buf.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
        if n == 0 { return captured }
        if captured.count < limit { captured += buf[..<n] }
    }
}

/// posix_spawn with vcpe's rules: new session, default signals, stdin on /dev/null, stdout
/// and stderr on the given descriptors (or /dev/null), every other descriptor closed.
private func spawnProcess(_ path: String, _ arguments: [String], stdout: Int32?, stderr: Int32?) throws(KernelError) -> pid_t {
    var attr = posix_spawnattr_t()
    var actions = posix_spawn_file_actions_t()
    posix_spawnattr_init(&attr)
    posix_spawn_file_actions_init(&actions)
    defer {
        posix_spawnattr_destroy(&attr)
        posix_spawn_file_actions_destroy(&actions)
    }
    // The caller's threads may block or ignore signals; a daemon must still stop on SIGTERM.
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, vcpe_posix_spawn_setsid() | Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    for (fd, target) in [(stdout, Int32(1)), (stderr, Int32(2))] {
        if let fd { posix_spawn_file_actions_adddup2(&actions, fd, target) } else {
            posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
        }
    }
    // Netlink sockets into namespaces being removed must not live on in the child.
    vcpe_spawn_closefrom(&actions, 3)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, path, &actions, &attr, argv, environ)
    if r != 0 { throw KernelError("spawn", path, Errno(code: r)) }
    return pid
}
