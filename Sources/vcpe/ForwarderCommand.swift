import VCPEForwarder
import ArgumentParser
import Foundation
import VCPEDatapath
import VCPEDescriptor
import VCPESystem

/// The forwarder that steers chains with a classifier: `apply` starts it; `configure`
/// chooses how it waits for packets.
struct ForwarderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forwarder",
        abstract: "The data path of chains with a classifier (started by apply).",
        subcommands: [Configure.self, Supervise.self, Run.self]
    )

    struct Configure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set how the forwarder polls, and restart it with the setting.",
            discussion: "By default it polls while packets flow and sleeps when idle. --busy-poll CPU spins on that CPU instead: the lowest latency, one core always busy. A restart takes a moment during which steered chains pass nothing."
        )

        @OptionGroup var state: StateOptions
        @Option(help: "Busy-poll, pinned to this CPU.") var busyPoll: Int?
        @Flag(help: "Sleep when idle (the default).") var sleepWhenIdle = false
        @Option(help: "Frames per ring, 64 KiB of kernel memory each, per interface of every steered chain.") var ringFrames: Int?
        @Option(help: "Microseconds to keep polling after the last packet before sleeping.") var spin: Int?
        @Option(help: "Flows each steered chain's kernel flow cache holds (least recently used go first).") var flowEntries: Int?
        @Option(help: "Seconds after which an idle cached flow is removed.") var flowIdle: Int?
        @Option(help: "Memory limit of the forwarder's container, e.g. 512MiB or 2GiB.") var memory: String?
        @Option(help: "Limit on the forwarder container's processes and threads.") var pids: Int?

        func validate() throws {
            if busyPoll != nil && sleepWhenIdle { throw ValidationError("--busy-poll and --sleep-when-idle exclude each other") }
            if let b = busyPoll, b < 0 || b >= ProcessInfo.processInfo.activeProcessorCount {
                throw ValidationError("--busy-poll \(b): this machine has CPUs 0-\(ProcessInfo.processInfo.activeProcessorCount - 1)")
            }
            if let r = ringFrames, !ForwarderSettings.ringFramesRange.contains(r) { throw ValidationError("--ring-frames is 2-4096") }
            if let s = spin, !(0...1_000_000).contains(s) { throw ValidationError("--spin is 0-1000000 microseconds") }
            // The kernel's hash maps take up to 2^28 buckets; the flag does not second-guess it.
            if let f = flowEntries, !ForwarderSettings.flowEntriesRange.contains(f) { throw ValidationError("--flow-entries is 16-1073741824") }
            if let i = flowIdle, !(1...86_400).contains(i) { throw ValidationError("--flow-idle is 1-86400 seconds") }
            if let m = memory, Resources.parseMemory(m).map({ (64 << 20)...(1 << 40) ~= $0 }) != true {
                throw ValidationError("--memory is a size like 512MiB or 2GiB, 64MiB-1024GiB; got \(m)")
            }
            if let p = pids, !(16...65_536).contains(p) { throw ValidationError("--pids is 16-65536") }
        }

        func run() throws {
            // Under the lock like every command that changes the host, with the runtime it names.
            let process = try state.lockedReconciler().forwarder
            var settings = try process.paths.loadSettings()
            if let b = busyPoll { settings.busyPoll = true; settings.cpu = b }
            if sleepWhenIdle { settings.busyPoll = false; settings.cpu = nil }
            if let r = ringFrames { settings.ringFrames = r }
            if let s = spin { settings.spinMicroseconds = s }
            if let f = flowEntries { settings.flowEntries = f }
            if let i = flowIdle { settings.flowIdleSeconds = i }
            if let m = memory.flatMap(Resources.parseMemory) { settings.memoryBytes = m }
            if let p = pids { settings.pids = Int64(p) }
            try process.paths.prepare()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try SafeFile.writeAtomically(Array(encoder.encode(settings)), to: process.paths.settings, mode: 0o644)
            // A new supervisor (with this command's runtime) starts a new worker, which reads
            // the settings; cached flows pass meanwhile.
            let workers = process.processes()[.run] ?? []
            if !process.processes().isEmpty {
                process.stop()
                if !process.paths.customers().isEmpty { _ = try process.ensureRunning() }
            }
            print("forwarder: " + (settings.busyPoll ? "busy-polling on CPU \(settings.cpu ?? 0)" : "sleeping when idle after \(settings.spinMicroseconds) µs")
                  + ", \(settings.ringFrames) frames per ring, \(settings.flowEntries) cached flows per chain (idle \(settings.flowIdleSeconds) s)"
                  + ", container \(settings.limits)" + (workers.isEmpty ? "" : "; restarted"))
        }
    }

    struct Supervise: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the forwarder and restart it when it ends.", shouldDisplay: false)
        @Argument(help: "The state directory.") var state: String

        func run() throws {
            ForwarderProcess(state: state, executable: try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).supervise()
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The forwarder itself.", shouldDisplay: false)
        @Argument(help: "The state directory.") var state: String

        func run() throws {
            // As a container's first process it gets no default action for SIGTERM: stop
            // on it as any process would.
            signal(SIGTERM) { _ in _exit(0) }
            do {
                try ForwarderService(paths: ForwarderPaths(state: state)).run()
            } catch {
                printError("vcpe forwarder: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
