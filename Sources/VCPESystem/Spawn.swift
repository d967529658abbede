import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Starts a program that outlives the caller: its own session, no signals blocked,
/// standard streams on /dev/null and no other descriptors, not waited for (init reaps it once the caller is gone).
public func spawnDetached(_ path: String, _ arguments: [String]) throws(SystemError) {
    _ = try spawnProcess(path, arguments, stderr: nil)
}

/// Starts a program the caller waits for (`waitpid`), with vcpe's rules for daemons:
/// its own session, default signals, stdin/stdout on /dev/null, stderr on `stderr`.
public func spawnChild(_ path: String, _ arguments: [String], stderr: Int32? = nil) throws(SystemError) -> pid_t {
    try spawnProcess(path, arguments, stderr: stderr)
}

/// What a program run to completion left: its exit status and what it wrote to stderr.
public struct ProgramResult: Sendable {
    /// The exit code, or 128 + the signal that ended it.
    public var status: Int32
    public var stderr: String
}

/// Runs a program to its end in its own session, inside `namespace` (nil: the caller's),
/// with stdin and stdout on /dev/null and stderr captured. Processes it leaves behind
/// (daemons) keep the namespace and nothing of the caller.
public func runProgram(_ path: String, _ arguments: [String], namespace: String? = nil) throws -> ProgramResult {
    var fds: [Int32] = [-1, -1]
    try syscall("pipe", path) { pipe(&fds) }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let reader = FileDescriptor(rawValue: fds[0])
    defer { try? reader.close() }
    let pid: pid_t
    do {
        // A child inherits the network namespace of the thread that spawns it.
        pid = try NetworkNamespace.perform(in: namespace) { try spawnProcess(path, arguments, stderr: fds[1]) }
        close(fds[1])
    } catch {
        close(fds[1])
        throw error
    }
    var captured: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = try buf.withUnsafeMutableBytes { try reader.read(into: $0, retryOnInterrupt: true) }
        if n == 0 { break }
        if captured.count < 64 << 10 { captured += buf[..<n] }
    }
    var status: Int32 = 0
    try syscall("waitpid", path) { waitpid(pid, &status, 0) }
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProgramResult(status: code, stderr: String(decoding: captured, as: UTF8.self))
}

/// posix_spawn with vcpe's rules: new session, default signals, stdin/stdout on /dev/null,
/// stderr on `stderr` (or /dev/null), every other descriptor closed.
private func spawnProcess(_ path: String, _ arguments: [String], stderr: Int32?) throws(SystemError) -> pid_t {
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
    for fd: Int32 in 0...1 {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    if let stderr { posix_spawn_file_actions_adddup2(&actions, stderr, 2) } else {
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }
    // Netlink sockets into namespaces being removed must not live on in the child.
    vcpe_spawn_closefrom(&actions, 3)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, path, &actions, &attr, argv, environ)
    if r != 0 { throw SystemError("spawn", path, Errno(rawValue: r)) }
    return pid
}
