import Foundation
import VCPESystem

/// A container's limits and memory use, read from the cgroup the bundle names
/// (`cgroupsPath`), in the v1 controllers where they are mounted, else the unified v2
/// hierarchy: what the kernel enforces, with no runtime call and no process to find.
struct Cgroup {
    static let root = "/sys/fs/cgroup"
    let group: String

    /// v1: memory and pids are separate hierarchies; v2: one directory.
    private var v1: Bool { FileManager.default.fileExists(atPath: "\(Self.root)/memory\(group)/memory.limit_in_bytes") }
    private func memoryFile(_ v1Name: String, _ v2Name: String) -> String {
        v1 ? "\(Self.root)/memory\(group)/\(v1Name)" : "\(Self.root)\(group)/\(v2Name)"
    }

    var memoryUsage: Int64? { Self.number(memoryFile("memory.usage_in_bytes", "memory.current")) }

    var limits: ContainerLimits? {
        let pidsFile = v1 ? "\(Self.root)/pids\(group)/pids.max" : "\(Self.root)\(group)/pids.max"
        guard let memory = Self.number(memoryFile("memory.limit_in_bytes", "memory.max")), let pids = Self.number(pidsFile) else { return nil }
        return ContainerLimits(memoryBytes: memory, pids: pids)
    }

    /// A cgroup file's number; "max" (v2's no limit) is Int64.max.
    private static func number(_ path: String) -> Int64? {
        guard let bytes = readKernelFile(path) else { return nil }
        let s = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s == "max" ? Int64.max : Int64(s)
    }
}
