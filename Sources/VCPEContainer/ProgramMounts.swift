import Foundation
import VCPESystem

extension ContainerSpec {
    /// Read-only mounts that make `executable` runnable inside: the file itself unless
    /// /usr (always mounted) holds it, and, for this process's own program, the shared
    /// libraries it has loaded from elsewhere (the Swift runtime under /opt, say).
    public static func programMounts(_ executable: String, sameAsCaller: Bool) -> [Mount] {
        var paths = [executable]
        if sameAsCaller, let maps = readKernelFile("/proc/self/maps").map({ String(decoding: $0, as: UTF8.self) }) {
            for line in maps.split(separator: "\n") {
                guard let slash = line.firstIndex(of: "/") else { continue }
                let path = String(line[slash...])
                if !path.hasSuffix(" (deleted)"), !paths.contains(path) { paths.append(path) }
            }
        }
        return paths.filter { !$0.hasPrefix("/usr/") }.map { Mount($0) }
    }
}
