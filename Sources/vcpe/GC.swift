import ArgumentParser
import Foundation
import VCPEController

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove the bridges delete retired (renamed vx-*, down, without ports).",
        discussion: "delete starts this in the background; run it by hand if that was interrupted."
    )

    func run() throws {
        guard geteuid() == 0 else {
            printError("vcpe: this command works on netlink and needs root")
            throw ExitCode(1)
        }
        let removed = try Reconciler.removeRetiredLinks()
        print(removed.isEmpty ? "nothing to remove" : "removed \(removed.joined(separator: ", "))")
    }
}
