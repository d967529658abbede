import Foundation
import VCPESystem

/// A container's directory: config.json, an empty read-only root with symlinks into the
/// host's /usr, the runtime that runs it, and the log of its standard error.
struct OCIBundle {
    static let rootfsName = "rootfs"
    /// Where the runtime puts the container's cgroups, in each hierarchy.
    static func cgroupsPath(_ id: String) -> String { "/vcpe/" + id }
    let directory: String

    var configPath: String { directory + "/config.json" }
    var rootfs: String { directory + "/" + Self.rootfsName }
    var runtimeRecord: String { directory + "/runtime" }
    var log: String { directory + "/container.log" }

    /// Writes the bundle; whatever was there before goes.
    func write(_ spec: ContainerSpec, runtime: String) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: directory)
        // The bundle's directory is root's alone; its root is the container's "/", which a
        // service that is not root must be able to search.
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try fm.createDirectory(atPath: rootfs, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        // Mount points; runc makes those of the service's own mounts.
        for dir in ["usr", "proc", "dev", "sys", "tmp", "run", "var", "etc"] {
            try fm.createDirectory(atPath: rootfs + "/" + dir, withIntermediateDirectories: true)
        }
        // runc gives a tmpfs the mode of the directory it is mounted on: /tmp is everyone's.
        chmod(rootfs + "/tmp", 0o1777)
        // Debian's merged /usr: programs and the loader are found where they always are.
        for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("var/run", "../run")] {
            try fm.createSymbolicLink(atPath: rootfs + "/" + link, withDestinationPath: target)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(OCIConfig(spec, cgroupsPath: Self.cgroupsPath(spec.id))).write(to: URL(fileURLWithPath: configPath))
        try Data(runtime.utf8).write(to: URL(fileURLWithPath: runtimeRecord))
    }

    /// The runtime recorded when the bundle was written.
    var recordedRuntime: String? {
        (try? String(contentsOfFile: runtimeRecord, encoding: .utf8)).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The last line the runtime or the process wrote, for error messages.
    var lastLogLine: String? {
        SafeFile.tail(log).flatMap { lastLine(String(decoding: $0, as: UTF8.self)) }
    }
}
