import Foundation
import VCPESystem

/// A process's memory and pid limits and memory use, read from its cgroups (v1 controllers
/// where mounted, else the unified v2 hierarchy): what the kernel enforces, whichever
/// runtime set it.
enum Cgroup {
    static let root = "/sys/fs/cgroup"

    static func memoryUsage(of pid: Int32) -> Int64? {
        guard let (v1, dir) = directory(of: pid, controller: "memory") else { return nil }
        return number(dir + (v1 ? "/memory.usage_in_bytes" : "/memory.current"))
    }

    static func limits(of pid: Int32) -> ContainerLimits? {
        guard let (v1, memDir) = directory(of: pid, controller: "memory"), let (_, pidsDir) = directory(of: pid, controller: "pids") else { return nil }
        return limits(memoryFile: memDir + (v1 ? "/memory.limit_in_bytes" : "/memory.max"), pidsFile: pidsDir + "/pids.max")
    }

    /// The limits of a cgroup by its path (the bundle's cgroupsPath), without asking the
    /// runtime or finding the process: what apply compares, for every VPN customer.
    static func limits(ofGroup group: String) -> ContainerLimits? {
        let v1 = "\(root)/memory\(group)/memory.limit_in_bytes"
        if FileManager.default.fileExists(atPath: v1) { return limits(memoryFile: v1, pidsFile: "\(root)/pids\(group)/pids.max") }
        return limits(memoryFile: "\(root)\(group)/memory.max", pidsFile: "\(root)\(group)/pids.max")
    }

    private static func limits(memoryFile: String, pidsFile: String) -> ContainerLimits? {
        guard let memory = number(memoryFile), let pids = number(pidsFile) else { return nil }
        return ContainerLimits(memoryBytes: memory, pids: pids)
    }

    /// The controller's directory for the process, and whether it is a v1 hierarchy.
    private static func directory(of pid: Int32, controller: String) -> (Bool, String)? {
        guard pid > 0, let text = readKernelFile("/proc/\(pid)/cgroup").map({ String(decoding: $0, as: UTF8.self) }) else { return nil }
        var unified: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[1].split(separator: ",").contains(Substring(controller)) { return (true, "\(root)/\(controller)\(parts[2])") }
            if parts[0] == "0" && parts[1].isEmpty { unified = String(parts[2]) }
        }
        guard let unified, FileManager.default.fileExists(atPath: "\(root)/cgroup.controllers") else { return nil }
        return (false, root + unified)
    }

    /// A cgroup file's number; "max" (v2's no limit) is Int64.max.
    private static func number(_ path: String) -> Int64? {
        guard let s = readKernelFile(path).map { String(decoding: $0, as: UTF8.self) }?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        return s == "max" ? Int64.max : Int64(s)
    }
}
