import ArgumentParser
import Foundation
import VCPEController
import VCPEWireGuard

/// Records the digests of the programs vcpe runs in containers: a container starts only a
/// program whose file still has its recorded SHA-256.
struct Trust: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the SHA-256 of the programs vcpe runs in containers (after installing or upgrading them).",
        discussion: "Records vcpe itself (the forwarder's worker) and wireguard-go, and any PROGRAM given. A container whose program has no record, or another digest, does not start."
    )

    @OptionGroup var state: StateOptions
    @Argument(help: "More programs to trust (absolute paths).") var programs: [String] = []

    func run() throws {
        let reconciler = try state.lockedReconciler()
        let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var all = [own]
        let wg = UserspaceDriver(containers: reconciler.containers).executable
        if access(wg, X_OK) == 0 { all.append(wg) }
        for p in programs where !all.contains(p) {
            guard p.hasPrefix("/") else { throw ValidationError("\(p): give programs by absolute path") }
            all.append(p)
        }
        for (path, digest) in try reconciler.containers.trust.record(all) { print("\(digest)  \(path)") }
    }
}
