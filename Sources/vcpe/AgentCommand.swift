import ArgumentParser
import Foundation
import Logging
import VCPEAgent
import VCPEContainer
import VCPEController

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the host service: reconcile every customer now and every interval, run the forwarder, serve /metrics.",
        discussion: """
            Runs in the foreground until SIGTERM or SIGINT (as systemd runs a service). On start every customer \
            on record in the state directory is reconciled, so after a reboot every chain comes back; then \
            each is reconciled every interval (drift is repaired, logged and counted), and at once when \
            `vcpe apply` or `vcpe delete` changed it. A customer whose reconcile fails is retried with \
            backoff. HTTP on --metrics-address: /metrics (Prometheus text format), /healthz, /readyz. \
            Stopping the agent leaves the chains running (the forwarder and VPN daemons too): the next agent adopts them.
            """
    )

    @OptionGroup var state: StateOptions
    @Option(name: .long, help: "Where /metrics, /healthz and /readyz are served: HOST:PORT, [IPv6]:PORT (port 0: any free port, logged).")
    var metricsAddress = "127.0.0.1:9469"
    @Option(name: .long, help: "Seconds between reconciles of each customer (1 to 86400).")
    var reconcileInterval = 30
    @Option(name: .long, help: "Log lines as text (logfmt) or json (default: $VCPE_LOG_FORMAT or text). The level is $VCPE_LOG, info by default here.")
    var logFormat: String?

    func validate() throws {
        guard (1...86_400).contains(reconcileInterval) else {
            throw ValidationError("--reconcile-interval must be 1 to 86400 seconds (got \(reconcileInterval))")
        }
        guard Self.address(metricsAddress) != nil else {
            throw ValidationError("--metrics-address must be HOST:PORT or [IPv6]:PORT with a port of 0 to 65535 (got \(metricsAddress.debugDescription))")
        }
        if let logFormat, LineLogHandler.Format(rawValue: logFormat) == nil {
            throw ValidationError("--log-format must be text or json (got \(logFormat.debugDescription))")
        }
    }

    /// "host:port" or "[v6]:port".
    static func address(_ s: String) -> (host: String, port: Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains("["), !host.contains("]") else { return nil }
        return (host, port)
    }

    func run() throws {
        try requireRoot()
        // A daemon's lines are what an operator reads in the journal: steps and repairs show by default.
        if let logFormat { setenv("VCPE_LOG_FORMAT", logFormat, 1) }
        if getenv("VCPE_LOG") == nil { setenv("VCPE_LOG", "info", 1) }
        try bootstrapLogging()
        if let runtime = state.runtime { setenv(ContainerRuntime.environmentKey, runtime, 1) }
        let (host, port) = Self.address(metricsAddress)!
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let logger = Logger(label: "vcpe-agent")
        do {
            try Agent(options: .init(stateDirectory: state.stateDir, host: host, port: port,
                                     interval: .seconds(reconcileInterval), executable: executable, version: BuildInfo.version,
                                     commit: BuildInfo.commitLabel), logger: logger).run()
        } catch {
            printError("vcpe: agent: \(error)")
            throw ExitCode(1)
        }
    }
}
