/// What one service process needs from its container; `OCIConfig` turns it into the
/// runtime's config.json.
public struct ContainerSpec: Sendable, Equatable {
    /// The runtime's container id (also the bundle's directory name).
    public var id: String
    /// argv; the first is an absolute path that the container's mounts make visible.
    public var arguments: [String]
    public var environment: [String] = []
    /// A network namespace file to join (the service's namespace), or nil for a new, empty one.
    public var networkNamespace: String?
    /// Capability names without the CAP_ prefix ("NET_ADMIN"): the only ones the process gets.
    public var capabilities: [String]
    /// System calls the service needs that the seccomp profile refuses everyone else.
    public var allowedSyscalls: Set<String> = []
    public var limits: ContainerLimits
    /// Host paths visible at the same path inside. /usr is always there, read-only.
    public var mounts: [Mount] = []
    /// Character devices the process may open (their cgroup rule and the node in /dev).
    public var devices: [Device] = []
    public var openFiles = 1024
    /// The user the process runs as; a service that needs capabilities gets them as
    /// ambient ones when it is not root.
    public var user = User.root

    public init(id: String, arguments: [String], capabilities: [String], limits: ContainerLimits) {
        self.id = id
        self.arguments = arguments
        self.capabilities = capabilities
        self.limits = limits
    }

    public struct Mount: Sendable, Equatable {
        /// Where the process sees it.
        public var path: String
        /// The host's directory or file: `path` unless it is shown elsewhere.
        public var source: String
        public var writable: Bool
        /// Mounts made under the host path later show up inside (namespace files, bpffs).
        public var followsHost: Bool

        public init(_ path: String, from source: String? = nil, writable: Bool = false, followsHost: Bool = false) {
            self.path = path
            self.source = source ?? path
            self.writable = writable
            self.followsHost = followsHost
        }
    }

    public struct User: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public init(uid: UInt32, gid: UInt32) {
            self.uid = uid
            self.gid = gid
        }
        public static let root = User(uid: 0, gid: 0)
    }

    public struct Device: Sendable, Equatable {
        public var path: String
        public var major: Int64
        public var minor: Int64

        /// /dev/net/tun, for daemons that make TUN devices.
        public static let tun = Device(path: "/dev/net/tun", major: 10, minor: 200)
    }
}

/// The cgroup limits of a container.
public struct ContainerLimits: Sendable, Hashable, Codable, CustomStringConvertible {
    public var memoryBytes: Int64
    public var pids: Int64

    public init(memoryBytes: Int64, pids: Int64) {
        self.memoryBytes = memoryBytes
        self.pids = pids
    }

    public var description: String { "memory \(ContainerLimits.format(bytes: memoryBytes)), \(pids) pids" }

    /// Bytes in the largest binary unit that divides them ("128 MiB").
    public static func format(bytes: Int64) -> String {
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] where bytes % (1 << shift) == 0 && bytes >= 1 << shift {
            return "\(bytes >> shift) \(unit)"
        }
        return "\(bytes) B"
    }
}

/// A container as its runtime reports it, with what its cgroup says.
public struct ContainerInfo: Sendable, Codable, Equatable {
    public var id: String
    /// The runtime that runs it ("runc").
    public var runtime: String
    /// The runtime's word: "created", "running", "paused", "stopped".
    public var state: String
    /// The init process as the host sees it (0 once stopped).
    public var pid: Int32
    public var bundle: String
    /// From the memory cgroup, when the process runs.
    public var memoryBytes: Int64?
    public var limits: ContainerLimits?
}

/// A runtime that is missing or refuses a container: which container, what went wrong.
public struct ContainerError: Error, Sendable, CustomStringConvertible {
    public var id: String
    public var message: String

    public init(_ id: String, _ message: String) {
        self.id = id
        self.message = message
    }

    public var description: String { "container \(id): \(message)" }
}
