import Foundation
import SystemPackage
import VCPEContainer
import VCPESystem

/// wireguard-go: one daemon per device, each in its own OCI container that joins the
/// service's namespace, spoken to on /var/run/wireguard/IFACE.sock. That directory is
/// shared by every namespace, so interface names must be unique on the host (vcpe's carry
/// the customer).
public struct UserspaceDriver: WireGuardDriver {
    public static let socketDirectory = "/var/run/wireguard"
    public static let program = "wireguard-go"
    public var name: String { "wireguard-go (userspace)" }
    let executable: String
    let containers: ContainerRuntime

    /// `executable`, else `$VCPE_WIREGUARD_GO`, else wireguard-go from the usual places.
    public init(executable: String? = nil, containers: ContainerRuntime) {
        self.executable = executable ?? getenv("VCPE_WIREGUARD_GO").map { String(cString: $0) } ?? Self.findExecutable()
        self.containers = containers
    }

    static func findExecutable() -> String {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] where access("\(dir)/\(program)", X_OK) == 0 {
            return "\(dir)/\(program)"
        }
        return "/usr/bin/\(program)"
    }

    public static func socketPath(_ interface: String) -> String { "\(socketDirectory)/\(interface).sock" }
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
        let path = Self.socketPath(interface)
        guard access(path, F_OK) == 0 else { return nil }
        guard let answer = try Self.exchange(path, UAPI.getRequest) else { return nil }  // a socket left by a dead daemon
        return try UAPI.parseGet(answer, configuredEndpoints: configuredEndpoints)
    }

    /// One request and its answer; nil when nothing listens on the socket.
    static func exchange(_ path: String, _ request: String) throws(SystemError) -> String? {
        let s: UnixStream
        do { s = try UnixStream(connectingTo: path) } catch {
            if error.errno == .connectionRefused || error.errno == .noSuchFileOrDirectory { return nil }
            throw error
        }
        try s.write(request)
        return try s.read(until: "\n\n")
    }

    /// The daemon's container: the service's namespace, its own PID, mount, UTS and IPC
    /// namespaces, NET_ADMIN alone (it makes a TUN device and sets it up), /dev/net/tun,
    /// the socket directory writable, everything else read-only.
    func spec(_ interface: String, in namespace: String, limits: ContainerLimits) -> ContainerSpec {
        var spec = ContainerSpec(id: Self.containerID(interface), arguments: [executable, interface], capabilities: ["NET_ADMIN"], limits: limits)
        // In the foreground the daemon is the container's process; the argument list stays
        // `wireguard-go IFACE`, which is how it is found.
        spec.environment = ["WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"]
        spec.networkNamespace = NetworkNamespace.path(namespace)
        spec.mounts = ContainerSpec.programMounts(executable, sameAsCaller: false) + [.init(Self.socketDirectory, writable: true)]
        spec.devices = [.tun]
        return spec
    }

    public func create(_ interface: String, in namespace: String, limits: ContainerLimits) throws {
        try remove(interface, in: nil)
        guard access(executable, X_OK) == 0 else {
            throw WireGuard.Failure(interface: interface, message: "\(executable) not found (Debian: apt-get install wireguard-go)")
        }
        try FileManager.default.createDirectory(atPath: Self.socketDirectory, withIntermediateDirectories: true)
        let id = Self.containerID(interface)
        let started: ContainerInfo
        do { started = try containers.start(spec(interface, in: namespace, limits: limits)) } catch {
            throw WireGuard.Failure(interface: interface, message: "\(error)")
        }
        // The socket is the daemon's word that the device is ready; while waiting, its
        // process (read from /proc, no runtime call) says whether it still tries.
        for _ in 0..<500 {
            if access(Self.socketPath(interface), F_OK) == 0 { return }
            guard ProcessTable.isAlive(started.pid) else { break }
            usleep(10_000)
        }
        let why = containers.lastLogLine(of: id) ?? "no message"
        _ = try? remove(interface, in: nil)
        throw WireGuard.Failure(interface: interface, message: "wireguard-go made no socket at \(Self.socketPath(interface)): \(why)")
    }

    public func configure(_ interface: String, in namespace: String, _ wanted: DeviceConfig, over current: DeviceConfig?) throws {
        guard let answer = try Self.exchange(Self.socketPath(interface), UAPI.setRequest(wanted, over: current)) else {
            throw WireGuard.Failure(interface: interface, message: "wireguard-go is not running")
        }
        let n = try UAPI.errno(ofAnswer: answer)
        if n != 0 { throw WireGuard.Failure(interface: interface, message: "set: \(Errno(rawValue: n)) (errno \(n))") }
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
        // A daemon killed hard leaves its socket file.
        if unlink(Self.socketPath(interface)) == 0 { return true }
        if errno != ENOENT { throw SystemError("unlink", Self.socketPath(interface), Errno(rawValue: errno)) }
        return hadContainer || !pids.isEmpty
    }
}
