import ArgumentParser
import Foundation
import VCPEDatapath

/// The forwarder's processes, started by `apply` (not by hand): `supervise` restarts `run`.
struct ForwarderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forwarder",
        abstract: "Run the data path of chains with a classifier (started by apply).",
        shouldDisplay: false
    )

    @Argument(help: "supervise or run.") var role: String
    @Argument(help: "The state directory.") var state: String

    func run() throws {
        let process = ForwarderProcess(state: state, executable: try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        switch ForwarderProcess.Role(rawValue: role) {
        case .supervise?:
            process.supervise()
        case .run?:
            do {
                try ForwarderService(paths: process.paths).run()
            } catch {
                printError("vcpe forwarder: \(error)")
                throw ExitCode(1)
            }
        case nil:
            throw ValidationError("role is supervise or run")
        }
    }
}
