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
        try requireRoot()
        let removed = try Reconciler.removeRetiredLinks()
        print(removed.isEmpty ? "nothing to remove" : "removed \(removed.joined(separator: ", "))")
    }
}
