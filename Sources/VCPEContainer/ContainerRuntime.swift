import Foundation
import SystemPackage
import VCPESystem

/// An OCI runtime (runc by default; crun, runsc or Kata's runtime by name or path) run as
/// a program, the way runtimes are meant to be used. Bundles live under `bundles`, one
/// directory per container id, so what vcpe started can always be found and removed.
public struct ContainerRuntime: Sendable {
    /// Environment variable that names the runtime when no option does.
    public static let environmentKey = "VCPE_OCI_RUNTIME"
    public static let defaultName = "runc"

    /// As configured: a name looked up on PATH, or a path.
    public let name: String
    public let bundles: String

    /// `name`, else `$VCPE_OCI_RUNTIME`, else runc.
    public init(name: String? = nil, bundles: String) {
        self.name = name ?? ProcessInfo.processInfo.environment[Self.environmentKey].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultName
        self.bundles = bundles
    }

    /// The runtime's executable, or an error that says what to install.
    public func executable(for id: String) throws(ContainerError) -> String {
        if name.contains("/") {
            guard access(name, X_OK) == 0 else { throw ContainerError(id, "OCI runtime \(name) is not an executable file") }
            return name
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for dir in dirs where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        throw ContainerError(id, "OCI runtime \"\(name)\" not found on PATH" + (name == Self.defaultName ? " (Debian: apt-get install runc)" : "")
                                 + "; choose one with --runtime or $\(Self.environmentKey)")
    }

    func bundle(_ id: String) -> OCIBundle { OCIBundle(directory: "\(bundles)/\(id)") }

    /// The digests containers' programs must have: beside the bundles, in the state directory.
    public var trust: ProgramTrust { ProgramTrust(file: URL(fileURLWithPath: bundles).deletingLastPathComponent().path + "/trust.json") }

    /// Starts the container in the background and returns once its process runs. A
    /// container of the same id goes first. On failure nothing of it is left.
    @discardableResult
    public func start(_ spec: ContainerSpec) throws -> ContainerInfo {
        let runtime = try prepare(spec)
        let b = bundle(spec.id)
        let log = open(b.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw KernelError.lastCall("open", b.log) }
        let status: Int32
        do {
            // Detached: the runtime hands its standard streams to the process, so stderr is
            // a file (a pipe would stay open for the container's whole life).
            let pid = try spawnChild(runtime, ["run", "--detach", "--bundle", b.directory, spec.id], stderr: log)
            close(log)
            status = try waitForExit(pid, runtime)
        } catch {
            close(log)
            _ = try? remove(spec.id)
            throw error
        }
        if status == 0, let info = info(spec.id), info.state == "running" { return info }
        let why = b.lastLogLine ?? "no message"
        _ = try? remove(spec.id)
        throw ContainerError(spec.id, "\(runtime) run " + (status == 0 ? "started nothing that runs" : "exited \(status)") + ": \(why)")
    }

    /// Starts the container in the foreground: returns the runtime's pid, which ends when
    /// the container's process does (the caller waits for it). stderr goes to `log`.
    public func startAttached(_ spec: ContainerSpec, log: Int32?) throws -> pid_t {
        let runtime = try prepare(spec)
        return try spawnChild(runtime, ["run", "--bundle", bundle(spec.id).directory, spec.id], stderr: log)
    }

    /// Removes what an earlier container of this id left, then writes its bundle.
    private func prepare(_ spec: ContainerSpec) throws -> String {
        let runtime = try executable(for: spec.id)
        // The platform's image check: only a program whose digest was recorded runs.
        if let program = spec.arguments.first { try trust.verify(program, for: spec.id) }
        // The runtime may know the id though its bundle is gone (removed by hand, or a crash
        // between the two): it would refuse to run another container of that id.
        try remove(spec.id, unbundled: true)
        try FileManager.default.createDirectory(atPath: bundles, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try bundle(spec.id).write(spec, runtime: runtime)
        return runtime
    }

    /// The container as its runtime sees it, with its cgroup's figures; nil when it has no
    /// bundle here or its runtime does not know it.
    public func info(_ id: String) -> ContainerInfo? {
        let b = bundle(id)
        guard let runtime = b.recordedRuntime,
              let r = try? runProgram(runtime, ["state", id], captureOutput: true), r.status == 0,
              let state = try? JSONDecoder().decode(RuntimeState.self, from: Data(r.stdout.utf8)) else { return nil }
        let live = state.status == "running" || state.status == "paused"
        return ContainerInfo(id: id, runtime: URL(fileURLWithPath: runtime).lastPathComponent, state: state.status,
                             pid: live ? state.pid : 0, bundle: state.bundle ?? b.directory,
                             memoryBytes: live ? cgroup(id).memoryUsage : nil, limits: live ? cgroup(id).limits : nil)
    }

    func cgroup(_ id: String) -> Cgroup { Cgroup(group: OCIBundle.cgroupsPath(id)) }

    /// The limits in force for a running container, read from its cgroup (no runtime call).
    public func limits(_ id: String) -> ContainerLimits? { cgroup(id).limits }

    /// Changes a running container's limits in place.
    public func update(_ id: String, _ limits: ContainerLimits) throws {
        let runtime = try bundle(id).recordedRuntime ?? executable(for: id)
        let r = try runProgram(runtime, ["update", "--memory", "\(limits.memoryBytes)", "--pids-limit", "\(limits.pids)", id])
        guard r.status == 0 else { throw ContainerError(id, "\(runtime) update exited \(r.status): \(lastLine(r.stderr) ?? "no message")") }
    }

    /// Kills and deletes the container and removes its bundle; fine when neither is there.
    /// True if there was something to remove. Without a bundle the runtime is asked only
    /// when `unbundled` says a container may still run (its process was seen): the many
    /// services that never had one cost no runtime call.
    @discardableResult
    public func remove(_ id: String, unbundled: Bool = false) throws -> Bool {
        let b = bundle(id)
        let bundled = FileManager.default.fileExists(atPath: b.directory)
        guard bundled || unbundled else { return false }
        // The runtime that made it, else (none recorded, or uninstalled since) the configured
        // one, which may share its state (a wrapper around it); else the caller stops what runs.
        let candidates = [b.recordedRuntime, try? executable(for: id)].compactMap { $0 }
        if let runtime = candidates.first(where: { access($0, X_OK) == 0 }) {
            // A runtime that never knew the id (its start failed) may say so: only a
            // container that is still there after the delete is an error.
            let r = try runProgram(runtime, ["delete", "--force", id])
            if r.status != 0, (try? runProgram(runtime, ["state", id]))?.status == 0 {
                throw ContainerError(id, "\(runtime) delete exited \(r.status): \(lastLine(r.stderr) ?? "no message")")
            }
        }
        if bundled { try FileManager.default.removeItem(atPath: b.directory) }
        return bundled
    }

    /// The last line the runtime or the container's process wrote to its log, if any.
    public func lastLogLine(of id: String) -> String? { bundle(id).lastLogLine }

    private struct RuntimeState: Decodable {
        var pid: Int32
        var status: String
        var bundle: String?
    }
}

/// The last line with something on it: what a program said last, for error messages.
func lastLine(_ text: String) -> String? {
    text.split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init)
}
