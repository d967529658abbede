import ArgumentParser
import Foundation
import Logging
import Synchronization
import VCPEContainer
import VCPEController
import VCPEDescriptor
import VCPESystem

struct StateOptions: ParsableArguments {
    @Option(name: .long, help: "Where vcpe keeps its state (default: $VCPE_STATE_DIR or /var/lib/vcpe).")
    var stateDir: String = ProcessInfo.processInfo.environment["VCPE_STATE_DIR"] ?? StateStore.defaultDirectory

    @Option(name: .long, help: "The OCI runtime that runs service processes: a name on PATH or a path, e.g. runc, crun, runsc (default: $VCPE_OCI_RUNTIME or runc).")
    var runtime: String?

    /// The store, locked against other vcpe processes for as long as it lives.
    func lockedReconciler() throws -> Reconciler {
        try requireRoot()
        // Before anything is read, made or waited for: a bad log setting is refused first.
        try bootstrapLogging()
        // Read by the container runtime here and by the forwarder's supervisor, which inherits it.
        if let runtime { setenv(ContainerRuntime.environmentKey, runtime, 1) }
        let store = try StateStore(directory: stateDir)
        try store.lock { printError("vcpe: waiting for another vcpe process to finish") }
        let reconciler = Reconciler(store: store, logger: Logger(label: "vcpe"))
        reconciler.executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        // Retired bridges are removed by `vcpe gc` in its own process, so delete returns at once.
        reconciler.reapInBackground = {
            let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            try spawnDetached(exe, ["gc", "--state-dir", store.directory.path])
        }
        return reconciler
    }
}

/// swift-log's handler, once per process: one line an event on stderr, `VCPE_LOG_FORMAT`
/// text (logfmt, the default) or json, at `VCPE_LOG`'s level (trace ... critical; default
/// warning). A value that is neither is an error, not a silent default.
func bootstrapLogging() throws {
    let env = ProcessInfo.processInfo.environment
    guard let format = LineLogHandler.Format(rawValue: env["VCPE_LOG_FORMAT"] ?? "text") else {
        printError("vcpe: VCPE_LOG_FORMAT is \(env["VCPE_LOG_FORMAT"]!.debugDescription), not text or json")
        throw ExitCode(1)
    }
    guard let level = Logger.Level(rawValue: env["VCPE_LOG"] ?? "warning") else {
        printError("vcpe: VCPE_LOG is \(env["VCPE_LOG"]!.debugDescription), not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        throw ExitCode(1)
    }
    loggingOnce.withLock { done in
        guard !done else { return }
        // A reader that went away (a closed pipe) is an error of the write, not the end of vcpe.
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, format: format)
            handler.logLevel = level
            return handler
        }
        done = true
    }
}

private let loggingOnce = Mutex(false)

/// Commands that work on namespaces and netlink stop here unless run as root.
func requireRoot() throws {
    guard geteuid() == 0 else {
        printError("vcpe: this command works on namespaces and netlink and needs root")
        throw ExitCode(1)
    }
}

/// Validates every file; prints the diagnostics; returns the chains only if all are valid
/// (and no customer appears twice), each with the very text that was validated.
func loadChains(_ files: [String]) throws -> [(chain: Chain, text: String)] {
    var out: [(Chain, String)] = []
    var failed = false
    for loaded in DescriptorFile.load(files) {
        let r = loaded.result
        for d in r.diagnostics { printError(d.formatted(file: loaded.path)) }
        guard let chain = r.chain, r.isValid else { failed = true; continue }
        out.append((chain, loaded.text))
    }
    if failed { throw ExitCode(1) }
    return out
}
