import Foundation
import SystemPackage
import VCPEContainer
import VCPESystem

/// wireguard-go: one daemon per device, each in its own OCI container that joins the
/// service's namespace and runs as a user of its own with NET_ADMIN alone. Each daemon
/// sees only its own socket directory (`/var/run/wireguard/vcpe/IFACE/`, shown to it as
/// /var/run/wireguard), so no daemon can reach another's socket; vcpe publishes a link
/// `/var/run/wireguard/IFACE.sock` to it, where `wg` looks.
public struct UserspaceDriver: WireGuardDriver {
    public static let socketDirectory = "/var/run/wireguard"
    /// Root's; one directory per daemon inside, the daemon's own.
    public static let daemonsDirectory = socketDirectory + "/vcpe"
    public static let program = "wireguard-go"
    /// No account's user: it owns its socket directory and nothing else on the host.
    public static let daemonUser = ContainerSpec.User(uid: 64_513, gid: 64_513)
    public var name: String { "wireguard-go (userspace)" }
    public let executable: String
    let containers: ContainerRuntime
    /// Chosen over the kernel's WireGuard (`VCPE_WIREGUARD=userspace`): wireguard-go refuses
    /// to start where the kernel has the module unless its environment says it is meant.
    public let forced: Bool
    public var hasDaemon: Bool { true }

    /// `executable`, else `$VCPE_WIREGUARD_GO`, else wireguard-go from the usual places.
    public init(executable: String? = nil, containers: ContainerRuntime, forced: Bool = false) {
        self.executable = executable ?? getenv("VCPE_WIREGUARD_GO").map { String(cString: $0) } ?? Self.findExecutable()
        self.containers = containers
        self.forced = forced
    }

    public func health(of interface: String, in namespace: String, state: DeviceState?) -> DeviceHealth {
        state == nil ? .notRunning : .running
    }

    static func findExecutable() -> String {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] where access("\(dir)/\(program)", X_OK) == 0 {
            return "\(dir)/\(program)"
        }
        return "/usr/bin/\(program)"
    }

    /// Where `wg` finds the daemon: a link root made to the daemon's own socket.
    public static func socketPath(_ interface: String) -> String { "\(socketDirectory)/\(interface).sock" }
    /// The daemon's own directory, and its socket in it: what vcpe talks to.
    public static func daemonDirectory(_ interface: String) -> String { "\(daemonsDirectory)/\(interface)" }
    public static func daemonSocket(_ interface: String) -> String { "\(daemonDirectory(interface))/\(interface).sock" }
    public static func containerID(_ interface: String) -> String { "vcpe-\(interface)" }

    public func processID(of interface: String) -> pid_t? {
        ProcessTable.find(program: Self.program, lastArgument: interface).first
    }

    public func container(of interface: String) -> ContainerInfo? { containers.info(Self.containerID(interface)) }
    public func limits(of interface: String) -> ContainerLimits? { containers.limits(Self.containerID(interface)) }

    public func setLimits(_ interface: String, _ limits: ContainerLimits) throws {
        guard let current = self.limits(of: interface), current != limits else { return }
        try containers.update(Self.containerID(interface), limits)
    }

    public func state(of interface: String, in namespace: String, configuredEndpoints: Set<[UInt8]>) throws -> DeviceState? {
        let path = Self.daemonSocket(interface)
        guard access(path, F_OK) == 0 else { return nil }
        guard let answer = try Self.exchange(interface, UAPI.getRequest) else { return nil }  // a socket left by a dead daemon
        return try UAPI.parseGet(answer, configuredEndpoints: configuredEndpoints)
    }

    /// One request to the interface's daemon and its answer; nil when nothing listens. The
    /// daemon can put anything in its directory, so the answer counts only from the
    /// daemon of that interface (its user, and its own `wireguard-go IFACE` process).
    static func exchange(_ interface: String, _ request: String) throws -> String? {
        let path = daemonSocket(interface)
        // Only a socket of the daemons' user, never through a link; the peer is checked below.
        var st = stat()
        if lstat(path, &st) == 0, st.st_mode & S_IFMT != S_IFSOCK || st.st_uid != daemonUser.uid {
            throw WireGuard.Failure(interface: interface, message: "\(path) is not \(interface)'s daemon's socket")
        }
        let s: UnixStream
        do { s = try UnixStream(connectingTo: path) } catch {
            if error.errno == .connectionRefused || error.errno == .noSuchFileOrDirectory { return nil }
            throw error
        }
        let peer = try s.peer()
        guard peer.uid == daemonUser.uid, let args = ProcessTable.arguments(of: peer.pid), args.count == 2, args[1] == interface else {
            throw WireGuard.Failure(interface: interface, message: "\(path) is answered by pid \(peer.pid) (uid \(peer.uid)), not \(interface)'s daemon")
        }
        try s.write(request)
        return try s.read(until: "\n\n", limit: 1 << 20)
    }

    /// The daemon's container: the service's namespace, its own PID, mount, UTS and IPC
    /// namespaces, NET_ADMIN alone (it makes a TUN device and sets it up), /dev/net/tun,
    /// the socket directory writable, everything else read-only.
    func spec(_ interface: String, in namespace: String, limits: ContainerLimits) -> ContainerSpec {
        var spec = ContainerSpec(id: Self.containerID(interface), arguments: [executable, interface], capabilities: ["NET_ADMIN"], limits: limits)
        // In the foreground the daemon is the container's process; the argument list stays
        // `wireguard-go IFACE`, which is how it is found.
        spec.environment = ["WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"]
        if forced { spec.environment.append("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1") }
        spec.networkNamespace = NetworkNamespace.path(namespace)
        spec.user = Self.daemonUser
        spec.mounts = ContainerSpec.programMounts(executable, sameAsCaller: false)
            + [.init(Self.socketDirectory, from: Self.daemonDirectory(interface), writable: true)]
        spec.devices = [.tun]
        return spec
    }

    public func create(_ interface: String, in namespace: String, limits: ContainerLimits) throws {
        try remove(interface, in: nil)
        guard access(executable, X_OK) == 0 else {
            throw WireGuard.Failure(interface: interface, message: "\(executable) not found (Debian: apt-get install wireguard-go)")
        }
        try SafeFile.ensureDirectory(Self.socketDirectory, mode: 0o755)
        try SafeFile.ensureDirectory(Self.daemonsDirectory, mode: 0o755)
        try SafeFile.ensureDirectory(Self.daemonDirectory(interface), mode: 0o700, owner: Self.daemonUser.uid, group: Self.daemonUser.gid)
        let id = Self.containerID(interface)
        let started: ContainerInfo
        do { started = try containers.start(spec(interface, in: namespace, limits: limits)) } catch {
            throw WireGuard.Failure(interface: interface, message: "\(error)")
        }
        // The socket is the daemon's word that the device is ready; while waiting, its
        // process (read from /proc, no runtime call) says whether it still tries.
        for _ in 0..<500 {
            if access(Self.daemonSocket(interface), F_OK) == 0 {
                // Where `wg` looks; root's directory, so no daemon can change the link.
                unlink(Self.socketPath(interface))
                symlink("vcpe/\(interface)/\(interface).sock", Self.socketPath(interface))
                return
            }
            guard ProcessTable.isAlive(started.pid) else { break }
            usleep(10_000)
        }
        let why = containers.lastLogLine(of: id) ?? "no message"
        _ = try? remove(interface, in: nil)
        throw WireGuard.Failure(interface: interface, message: "wireguard-go made no socket at \(Self.daemonSocket(interface)): \(why)")
    }

    public func configure(_ interface: String, in namespace: String, _ wanted: DeviceConfig, over current: DeviceConfig?) throws {
        guard let answer = try Self.exchange(interface, UAPI.setRequest(wanted, over: current)) else {
            throw WireGuard.Failure(interface: interface, message: "wireguard-go is not running")
        }
        let n = try UAPI.errno(ofAnswer: answer)
        if n != 0 { throw WireGuard.Failure(interface: interface, message: "set: \(Errno(code: n)) (errno \(n))") }
    }

    @discardableResult
    public func remove(_ interface: String, in namespace: String?) throws -> Bool {
        try stop(interface, ProcessTable.find(program: Self.program, lastArgument: interface))
    }

    public func removeAll(_ interfaces: [String]) throws -> [String] {
        let running = ProcessTable.find(program: Self.program, lastArguments: Set(interfaces))
        return try interfaces.filter { try stop($0, running[$0] ?? []) }
    }

    /// The container first (its runtime kills the daemon), then any daemon outside one.
    private func stop(_ interface: String, _ pids: [pid_t]) throws -> Bool {
        let hadContainer: Bool
        do { hadContainer = try containers.remove(Self.containerID(interface), unbundled: !pids.isEmpty) } catch {
            throw WireGuard.Failure(interface: interface, message: "\(error)")
        }
        for pid in pids where ProcessTable.isAlive(pid) && !ProcessTable.terminate(pid) {
            throw WireGuard.Failure(interface: interface, message: "wireguard-go pid \(pid) did not stop")
        }
        // A daemon killed hard leaves its socket file; the link and the directory go too.
        var removed = hadContainer || !pids.isEmpty
        for path in [Self.socketPath(interface), Self.daemonSocket(interface)] {
            if unlink(path) == 0 { removed = true; continue }
            let e = Errno.lastCall
            if e != .noSuchFileOrDirectory { throw KernelError("unlink", path, e) }
        }
        // Whatever the daemon left there for its successor goes with it.
        let directory = Self.daemonDirectory(interface)
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] { unlink(directory + "/" + f) }
        rmdir(directory)
        return removed
    }
}
