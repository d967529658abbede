/// The part of the OCI runtime specification (config.json, version 1.0) vcpe writes.
struct OCIConfig: Encodable {
    var ociVersion = "1.0.2"
    var process: Process
    var root = Root(path: OCIBundle.rootfsName, readonly: true)
    var hostname: String
    var mounts: [Mount]
    var linux: Linux

    struct Process: Encodable {
        var terminal = false
        var user = User()
        var args: [String]
        var env: [String]
        var cwd = "/"
        var capabilities: Capabilities
        var rlimits: [Rlimit]
        var noNewPrivileges = true
    }

    struct User: Encodable { var uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32] = [] }

    /// The same set everywhere: the process cannot gain one it was not given. A process
    /// that is not root keeps its capabilities across exec only as ambient ones.
    struct Capabilities: Encodable {
        var bounding: [String], effective: [String], permitted: [String]
        var inheritable: [String] = [], ambient: [String] = []
        init(_ names: [String], root: Bool) {
            let caps = names.map { "CAP_" + $0 }
            bounding = caps; effective = caps; permitted = caps
            if !root { inheritable = caps; ambient = caps }
        }
    }

    struct Rlimit: Encodable { var type: String, hard: UInt64, soft: UInt64 }
    struct Root: Encodable { var path: String, readonly: Bool }
    struct Mount: Encodable { var destination: String, type: String, source: String, options: [String] }

    struct Linux: Encodable {
        var namespaces: [Namespace]
        var devices: [Device]
        var resources: Resources
        var cgroupsPath: String
        var maskedPaths = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                           "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
        var readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        var seccomp: Seccomp
    }

    struct Namespace: Encodable {
        var type: String
        var path: String?
    }

    struct Device: Encodable {
        var path: String, type = "c", major: Int64, minor: Int64, fileMode = 0o666, uid = 0, gid = 0
    }

    struct Resources: Encodable {
        var devices: [DeviceRule]
        var memory: Memory
        var pids: Pids
    }

    struct DeviceRule: Encodable {
        var allow: Bool, type: String?, major: Int64?, minor: Int64?, access = "rwm"
    }

    struct Memory: Encodable { var limit: Int64 }
    struct Pids: Encodable { var limit: Int64 }

    struct Seccomp: Encodable {
        var defaultAction: String
        var architectures: [String]
        var syscalls: [Rule]
        struct Rule: Encodable {
            var names: [String], action: String, errnoRet: UInt32?
            var args: [Argument]? = nil
        }
        /// A condition on one argument (SCMP_CMP_MASKED_EQ: `value` is the mask, `valueTwo` the result).
        struct Argument: Encodable { var index: Int, value: UInt64, valueTwo: UInt64, op: String }
    }
}

extension OCIConfig {
    /// The largest file a service process may write (its log): 64 MiB.
    static let maxFileBytes = 64 << 20

    /// /dev/null, zero, full, random, urandom, tty: what every process may expect.
    static let standardDevices: [(Int64, Int64)] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)]

    init(_ spec: ContainerSpec, cgroupsPath: String) {
        let deviceRules = [DeviceRule(allow: false, type: nil, major: nil, minor: nil)]
            + (Self.standardDevices + spec.devices.map { ($0.major, $0.minor) }).map { DeviceRule(allow: true, type: "c", major: $0.0, minor: $0.1) }
        process = Process(user: User(uid: spec.user.uid, gid: spec.user.gid),
                          args: spec.arguments, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + spec.environment,
                          capabilities: Capabilities(spec.capabilities, root: spec.user.uid == 0),
                          rlimits: [Rlimit(type: "RLIMIT_NOFILE", hard: UInt64(spec.openFiles), soft: UInt64(spec.openFiles)),
                                    // Its standard error is a file root keeps (the log): bounded.
                                    Rlimit(type: "RLIMIT_FSIZE", hard: UInt64(Self.maxFileBytes), soft: UInt64(Self.maxFileBytes))])
        hostname = String(spec.id.prefix(64))
        // A fresh /proc for its PID namespace, /dev with only what it may use, /sys and
        // /usr read-only, a small /tmp; the rest is what the service names.
        mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=1024k"]),
            Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            Mount(destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro", "nosuid", "nodev"]),
            Mount(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=1777", "size=16m"]),
        ] + spec.mounts.map { m in
            Mount(destination: m.path, type: "bind", source: m.source,
                  options: [m.followsHost ? "rbind" : "bind", m.writable ? "rw" : "ro", "nosuid", "nodev"] + (m.followsHost ? ["rslave"] : []))
        }
        var namespaces = ["pid", "ipc", "uts", "mount"].map { Namespace(type: $0, path: nil) }
        namespaces.append(Namespace(type: "network", path: spec.networkNamespace))
        linux = Linux(namespaces: namespaces, devices: spec.devices.map { Device(path: $0.path, major: $0.major, minor: $0.minor) },
                      resources: Resources(devices: deviceRules, memory: Memory(limit: spec.limits.memoryBytes), pids: Pids(limit: spec.limits.pids)),
                      cgroupsPath: cgroupsPath, seccomp: SeccompProfile.config(allowing: spec.allowedSyscalls))
    }
}
