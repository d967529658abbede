import Foundation
import SystemPackage
import VCPESystem

/// Whether `vcpe agent` runs for a state directory: it holds an exclusive lock on
/// `agent.lock` there for as long as it lives (the kernel drops it when it dies). While it
/// runs, the agent starts the forwarder's supervisor as its own child, so other vcpe
/// processes wait for that instead of starting a detached one.
public struct AgentPresence: Sendable {
    public let path: String
    public init(state: String) { path = state + "/agent.lock" }

    /// The lock is another agent's, or cannot be taken at all.
    public struct Taken: Error, CustomStringConvertible {
        public var description: String
    }

    /// Takes the lock for this process's lifetime; the descriptor is close-on-exec, so no
    /// process the agent starts keeps it after the agent is gone.
    public func hold() throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Taken(description: "cannot open \(path): errno \(Errno.lastCall.rawValue)") }
        // isRunning takes a shared lock for an instant: a refusal is believed after a second of them.
        for _ in 0..<20 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return fd }
            usleep(50_000)
        }
        close(fd)
        throw Taken(description: "another vcpe agent runs for this state directory (it holds \(path))")
    }

    /// True while an agent holds the lock (this process's own counts: another descriptor).
    public var isRunning: Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return Errno.lastCall == .resourceTemporarilyUnavailable
    }
}
