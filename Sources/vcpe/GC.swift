import ArgumentParser
import Foundation
import VCPEController

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove the bridges delete retired (renamed vx-*, down, without ports, recorded in the state).",
        discussion: "delete starts this in the background; run it by hand if that was interrupted."
    )

    @OptionGroup var state: StateOptions

    func run() throws {
        // Under the lock, and only the links the state recorded as retired.
        let removed = try state.lockedReconciler().removeRetiredLinks()
        print(removed.isEmpty ? "nothing to remove" : "removed \(removed.joined(separator: ", "))")
    }
}
