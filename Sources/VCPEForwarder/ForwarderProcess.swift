import Foundation
import SystemPackage
import VCPEContainer
import VCPEDatapath
import VCPESystem

/// The forwarder as processes: a supervisor on the host that restarts the worker when it
/// dies, and the worker, in an OCI container. Both are `vcpe forwarder ROLE STATE`, found
/// through /proc by that command line. While no worker runs, the classifier namespaces
/// forward nothing (forwarding is off in them): the data path fails closed.
public struct ForwarderProcess: Sendable {
    public let paths: ForwarderPaths
    public let state: String
    /// The vcpe executable; nil where only the client side is used (no process to start).
    public let executable: String?

    public init(state: String, executable: String?) {
        self.state = state
        self.executable = executable
        paths = ForwarderPaths(state: state)
    }

    /// Bundles beside the state they serve.
    public var containers: ContainerRuntime { ContainerRuntime(bundles: state + "/containers") }

    /// One forwarder per state directory, so the id carries a digest of its path.
    public var containerID: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for b in state.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return "vcpe-forwarder-" + String(h >> 32, radix: 16)
    }

    /// The worker's container: a network namespace of its own (empty), no capability at
    /// all, and not root: the supervisor's broker makes each chain's sockets inside the
    /// chain's namespace and loads and attaches its flow cache, and the worker only uses
    /// what it is handed (packet sockets, the flow map). It reads the forwarder directory
    /// (chains, settings, the broker's socket) and writes only its own `run/`; no bpffs.
    /// seccomp lets `bpf` through for the map's updates and lookups.
    func workerSpec(_ executable: String, _ settings: ForwarderSettings) -> ContainerSpec {
        var spec = ContainerSpec(id: containerID, arguments: [executable, "forwarder", Role.run.rawValue, state],
                                 capabilities: Self.workerCapabilities, limits: settings.limits)
        spec.user = Self.workerUser
        spec.allowedSyscalls = ["bpf"]
        spec.environment = ["\(BrokerAccess.environmentKey)=\(paths.broker)"]
        spec.mounts = ContainerSpec.programMounts(executable, sameAsCaller: true) + [
            .init(paths.directory, writable: false),
            .init(paths.run, writable: true),
        ]
        // Sockets for every chain; a hard limit above the host's own needs a capability it lacks.
        var limit = rlimit()
        spec.openFiles = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(min(limit.rlim_max, 1 << 16)) : 1024
        return spec
    }

    public static let workerCapabilities: [String] = []
    /// The worker's user and group: no account's, so it owns nothing on the host but its
    /// `run/` directory, and the broker's socket lets only it (and root) connect.
    public static let workerUser = ContainerSpec.User(uid: 64_512, gid: 64_512)

    public enum Role: String, Sendable { case supervise, run }

    /// Live processes by role.
    public func processes() -> [Role: [pid_t]] {
        var out: [Role: [pid_t]] = [:]
        for pid in ProcessTable.find(program: "vcpe", lastArgument: state) {
            guard let args = ProcessTable.arguments(of: pid), args.count == 4, args[1] == "forwarder",
                  let role = Role(rawValue: args[2]) else { continue }
            // A supervisor is root's: a process another user named so (the worker, from its
            // container, or anyone) would otherwise be taken for it and keep it from starting.
            if role == .supervise, !ProcessTable.runsAsRoot(pid) { continue }
            out[role, default: []].append(pid)
        }
        return out
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The worker's words (a refusal, its log) as root says them: bounded and quoted, so no
    /// control character reaches a terminal or a log line.
    public static func quoted(_ text: some StringProtocol) -> String { String(text.prefix(512)).debugDescription }

    /// Whether the supervisor runs another vcpe than `executable` (the binary was replaced,
    /// as an upgrade does): its messages may not be this build's, and apply restarts it.
    public var runsAnotherBuild: Bool { processes()[.supervise]?.contains(where: runsAnotherBuild) ?? false }

    func runsAnotherBuild(_ pid: pid_t) -> Bool {
        guard let executable else { return false }
        var running = stat(), mine = stat()
        // Only root's process can be the supervisor: one another user named so is no reason
        // to stop the forwarder.
        guard ProcessTable.runsAsRoot(pid), stat("/proc/\(pid)/exe", &running) == 0, stat(executable, &mine) == 0 else { return false }
        return running.st_dev != mine.st_dev || running.st_ino != mine.st_ino
    }

    /// Starts the supervisor unless one of this build runs (one of another is stopped first),
    /// and waits until the worker answers.
    public func ensureRunning(timeout: Duration = .seconds(10)) throws -> ForwarderReport {
        let log = { SafeFile.tail(paths.log).flatMap { String(decoding: $0, as: UTF8.self).split(separator: "\n").last }.map { "; its log ends: \(Self.quoted($0))" } ?? "" }
        if runsAnotherBuild, let executable {
            // The old build keeps running unless this one can start: a container runs only a
            // trusted program, and the runtime and directory must be there.
            try containers.trust.verify(executable, for: containerID)
            try paths.prepare()
            _ = try containers.executable(for: containerID)
            stop()
        }
        if processes()[.supervise]?.isEmpty ?? true {
            guard let executable else { throw Failure(description: "the forwarder is not running and no vcpe executable is known to start it") }
            try paths.prepare()
            // A missing runtime is said now, not after a timeout.
            _ = try containers.executable(for: containerID)
            let started = Date()
            let deadline = ContinuousClock.now + timeout
            if !awaitAgentStart(until: deadline) {
                try withLifecycleLock(wait: true) {
                    // Another vcpe may have started one while this waited for the lock.
                    if processes()[.supervise]?.isEmpty ?? true {
                        try spawnDetached(executable, ["forwarder", Role.supervise.rawValue, state])
                    }
                }
            }
            // A worker that ends before it answers (a runtime that refuses the container,
            // say) is said at once too: the supervisor records every end.
            while ContinuousClock.now < deadline {
                if let answer = try? request(.stats, timeout: .milliseconds(200)) { return answer }
                if let r = supervisorRecord(), r.lastExitAt >= started {
                    throw Failure(description: "the forwarder ended as it started (\(r.lastExit))\(log())")
                }
            }
        }
        do { return try request(.stats, timeout: timeout) } catch {
            throw Failure(description: "\(error)\(log())")
        }
    }

    /// While an agent runs for this state, it starts the supervisor (as its own child, a
    /// chain file being there): waits for that. False when no agent runs (or it went away
    /// while waiting): the caller starts a detached supervisor as without an agent.
    func awaitAgentStart(until deadline: ContinuousClock.Instant) -> Bool {
        let agent = AgentPresence(state: state)
        while agent.isRunning {
            if !(processes()[.supervise]?.isEmpty ?? true) { return true }
            guard ContinuousClock.now < deadline else { return true }
            usleep(50_000)
        }
        return !(processes()[.supervise]?.isEmpty ?? true)
    }

    /// Sends a request, retrying while the worker is (re)starting.
    public func request(_ request: ControlRequest, timeout: Duration = .seconds(10)) throws -> ForwarderReport {
        // A request this side cannot send (a name that is not a customer's) is not retried.
        let line = try request.line()
        let deadline = ContinuousClock.now + timeout
        var last: any Error = Failure(description: "no answer")
        while ContinuousClock.now < deadline {
            let reply: ControlReply
            do {
                // What is left of the request's time bounds the whole answer (a scrape asks with 500 ms).
                let stream = try UnixStream(connectingTo: paths.socket, timeout: min(.seconds(10), max(deadline - .now, .milliseconds(1))))
                // The socket is in the worker's directory: the answer counts only from the user
                // that directory belongs to (the worker's; root's when a forwarder runs by
                // hand), never from whatever socket a link there points at.
                let peer = try stream.peer()
                var st = stat()
                guard lstat(paths.run, &st) == 0, peer.uid == st.st_uid else {
                    throw Failure(description: "\(paths.socket) is answered by uid \(peer.uid), not the forwarder's")
                }
                try stream.write(line)
                reply = try ControlReply.decode(stream.read(until: "\n", limit: ControlReply.maxLine + 1))
            } catch {
                last = error
                usleep(20_000)
                continue
            }
            // The worker understood the line and refused it: asking again gets the same answer.
            // Its words are the worker's: bounded and quoted before root says them.
            guard let report = reply.report else {
                throw Failure(description: "the forwarder refused \(request) at \(paths.socket): \(Self.quoted(reply.error ?? "no report"))")
            }
            return report
        }
        throw Failure(description: "the forwarder did not answer \(request) at \(paths.socket): \(last)")
    }

    /// The running worker's report, or nil when none answers at once.
    public func report() -> ForwarderReport? {
        guard !(processes()[.run]?.isEmpty ?? true) else { return nil }
        return try? request(.stats, timeout: .milliseconds(500))
    }

    /// What the supervisor last recorded, if it ever restarted the worker.
    public func supervisorRecord() -> SupervisorRecord? {
        guard let data = FileManager.default.contents(atPath: paths.supervisor) else { return nil }
        return try? JSONDecoder().decode(SupervisorRecord.self, from: data)
    }

    /// Stops the supervisor first (so nothing restarts), then the worker and its container.
    /// Under the lifecycle lock, so an agent does not start a supervisor half-way through
    /// (whose broker socket this would then remove), and marked as deliberate for it.
    public func stop() {
        withLifecycleLock(wait: true) {
            let running = processes()
            for pid in running[.supervise] ?? [] { ProcessTable.terminate(pid) }
            for pid in running[.run] ?? [] { ProcessTable.terminate(pid) }
            _ = try? containers.remove(containerID, unbundled: !(running[.run] ?? []).isEmpty)
            unlink(paths.socket)
            unlink(paths.broker)
            if !(running[.supervise] ?? []).isEmpty { try? SafeFile.writeAtomically(Array("\(getpid())\n".utf8), to: paths.stopped, mode: 0o644) }
        }
    }

    /// Runs `body` holding `forwarder/lifecycle.lock`, which every start and stop of the
    /// supervisor takes. Without `wait`, nil when another process holds it. With no
    /// forwarder directory yet, there is nothing to start or stop against: runs unlocked.
    @discardableResult
    public func withLifecycleLock<T>(wait: Bool, _ body: () throws -> T) rethrows -> T? {
        let fd = open(paths.lifecycleLock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        if wait {
            while flock(fd, LOCK_EX) != 0 && Errno.lastCall == .interrupted {}
        } else if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            return nil
        }
        return try body()
    }

    /// The worker's container, as its runtime and cgroup report it.
    public func container() -> ContainerInfo? { containers.info(containerID) }

    /// The supervisor's loop: runs the worker, restarts it when it ends (waiting longer after
    /// each quick failure), and ends when no chain is left to steer.
    public func supervise() -> Never {
        guard let executable else { exit(1) }
        var restarts = 0
        unlink(paths.supervisor)
        var backoff = Duration.milliseconds(100)
        // The worker's way into chains' namespaces, for as long as this process runs.
        let broker = NamespaceBroker(paths: paths)
        let brokerThread = Thread { _ = try? broker.serve() }
        brokerThread.name = "namespace broker"
        brokerThread.start()
        while true {
            // Only when no chain is configured at all: a file that cannot be read is its
            // customer's problem, which the worker reports.
            if paths.customers().isEmpty {
                _ = try? containers.remove(containerID)
                unlink(paths.broker)
                unlink(paths.socket)
                exit(0)
            }
            // In root's directory, and never through a link.
            let log = (try? SafeFile.openAppend(paths.log)) ?? -1
            let started = ContinuousClock.now
            let pid: pid_t
            do {
                try paths.prepare()
                try FlowCache.ensureFilesystem()
                pid = try containers.startAttached(workerSpec(executable, try paths.loadSettings()), log: log >= 0 ? log : nil)
            } catch {
                if log >= 0 {
                    _ = "vcpe forwarder supervise: \(error)\n".withCString { write(log, $0, strlen($0)) }
                    close(log)
                }
                sleep(1)
                continue
            }
            if log >= 0 { close(log) }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && Errno.lastCall == .interrupted {}
            restarts += 1
            let record = SupervisorRecord(restarts: restarts, lastExit: "\(ExitStatus(waitStatus: status))",
                                          lastExitAt: Date())
            if let data = try? JSONEncoder().encode(record) { try? SafeFile.writeAtomically(Array(data), to: paths.supervisor, mode: 0o644) }
            backoff = ContinuousClock.now - started > .seconds(10) ? .milliseconds(100) : min(backoff * 2, .seconds(5))
            usleep(UInt32(backoff / .microseconds(1)))
        }
    }
}

/// What the supervisor records each time the worker ends.
public struct SupervisorRecord: Sendable, Codable {
    public var restarts: Int
    public var lastExit: String
    public var lastExitAt: Date
}

extension ForwarderSettings {
    /// The worker container's cgroup limits.
    public var limits: ContainerLimits { ContainerLimits(memoryBytes: memoryBytes, pids: pids) }
}
