import SystemPackage
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// wireguard-go: one daemon per device, started inside the service's namespace, spoken to
/// on /var/run/wireguard/IFACE.sock. That directory is shared by every namespace, so
/// interface names must be unique on the host (vcpe's carry the customer).
public struct UserspaceDriver: WireGuardDriver {
    public static let socketDirectory = "/var/run/wireguard"
    public static let program = "wireguard-go"
    public var name: String { "wireguard-go (userspace)" }
    let executable: String

    /// `executable`, else `$VCPE_WIREGUARD_GO`, else wireguard-go from the usual places.
    public init(executable: String? = nil) {
        self.executable = executable ?? getenv("VCPE_WIREGUARD_GO").map { String(cString: $0) } ?? Self.findExecutable()
    }

    static func findExecutable() -> String {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] where access("\(dir)/\(program)", X_OK) == 0 {
            return "\(dir)/\(program)"
        }
        return "/usr/bin/\(program)"
    }

    public static func socketPath(_ interface: String) -> String { "\(socketDirectory)/\(interface).sock" }

    public func processID(of interface: String) -> pid_t? {
        ProcessTable.find(program: Self.program, lastArgument: interface).first
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

    public func create(_ interface: String, in namespace: String) throws {
        try remove(interface, in: nil)
        guard access(executable, X_OK) == 0 else {
            throw WireGuard.Failure(interface: interface, message: "\(executable) not found (Debian: apt-get install wireguard-go)")
        }
        // Without -f wireguard-go makes the device and the socket, hands them to a
        // background copy of itself and exits: status 0 means the device is ready.
        let r = try runProgram(executable, [interface], namespace: namespace)
        guard r.status == 0 else {
            let why = r.stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .last { !$0.isEmpty && !$0.hasPrefix("│") && !$0.hasPrefix("┌") && !$0.hasPrefix("└") } ?? "no message"
            throw WireGuard.Failure(interface: interface, message: "wireguard-go exited \(r.status): \(why)")
        }
        guard access(Self.socketPath(interface), F_OK) == 0 else {
            throw WireGuard.Failure(interface: interface, message: "wireguard-go started but made no socket at \(Self.socketPath(interface))")
        }
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

    private func stop(_ interface: String, _ pids: [pid_t]) throws -> Bool {
        for pid in pids where !ProcessTable.terminate(pid) {
            throw WireGuard.Failure(interface: interface, message: "wireguard-go pid \(pid) did not stop")
        }
        // A daemon killed hard leaves its socket file.
        if unlink(Self.socketPath(interface)) == 0 { return true }
        if errno != ENOENT { throw SystemError("unlink", Self.socketPath(interface), Errno(rawValue: errno)) }
        return !pids.isEmpty
    }
}
