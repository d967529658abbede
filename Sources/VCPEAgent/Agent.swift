import Dispatch
import Foundation
import Logging
import Synchronization
import VCPEController
import VCPEForwarder
import VCPESystem
import VCPEWireGuard

/// `vcpe agent`: the per-host service. It reconciles every customer on start (after a
/// reboot that rebuilds every chain from the state directory) and every interval, runs
/// the forwarder's supervisor, and serves /metrics, /healthz and /readyz.
public final class Agent: Sendable {
    public struct Options: Sendable {
        public var stateDirectory: String
        public var host: String
        public var port: Int
        public var interval: Duration
        /// The vcpe executable: it runs the forwarder.
        public var executable: String
        /// The build's version and commit, for the log and `vcpe_build_info`.
        public var version: String
        public var commit: String

        public init(stateDirectory: String, host: String, port: Int, interval: Duration, executable: String, version: String, commit: String) {
            (self.stateDirectory, self.host, self.port, self.interval, self.executable) = (stateDirectory, host, port, interval, executable)
            (self.version, self.commit) = (version, commit)
        }
    }

    private let options: Options
    private let logger: Logger
    private let metrics = AgentMetrics()
    private let catalog = Catalog()
    private let loop: ReconcileLoop
    private let watch: SupervisorWatch
    private let endpoint: Endpoint
    private let stopping = Atomic<Bool>(false)

    public init(options: Options, logger: Logger) throws {
        // The same checks as every command: a directory others could write is refused.
        let store = try StateStore(directory: options.stateDirectory)
        var o = options
        o.stateDirectory = store.directory.standardizedFileURL.path
        self.options = o
        self.logger = logger
        let forwarder = ForwarderProcess(state: o.stateDirectory, executable: o.executable)
        loop = ReconcileLoop(settings: ReconcileLoop.Settings(stateDirectory: o.stateDirectory, interval: o.interval, executable: o.executable),
                             metrics: metrics, logger: logger, catalog: catalog)
        watch = SupervisorWatch(forwarder: forwarder, executable: o.executable, metrics: metrics, logger: logger)
        endpoint = Endpoint(catalog: catalog, metrics: metrics, loop: loop, interval: o.interval,
                            build: .init(version: o.version, commit: o.commit),
                            reader: CounterReader(forwarder: forwarder, wireguard: WireGuard.driver(containers: forwarder.containers)))
    }

    /// Runs until SIGTERM or SIGINT: then finishes the customer being reconciled and
    /// returns. The forwarder and the VPN daemons stay: the chains keep running, and the
    /// next agent adopts them.
    public func run() throws {
        // A scrape keeps two or three sockets per customer: 1,000 customers pass the usual soft limit of 1,024.
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        let presence = try AgentPresence(state: options.stateDirectory).hold()
        defer { close(presence) }
        let server = try MetricsServer(host: options.host, port: options.port, route: endpoint.answer)
        defer {
            // No new request, then the scrape in flight answered, then the event loop goes.
            server.stopListening()
            endpoint.drain()
            server.close()
        }
        logger.notice("agent started", metadata: ["address": "\(options.host):\(server.port)", "stateDir": "\(options.stateDirectory)",
                                                  "interval": "\(options.interval.components.seconds)s", "version": "\(options.version)",
                                                  "commit": "\(options.commit)"])

        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let signals = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
        for s in signals {
            s.setEventHandler { [self] in
                logger.notice("agent stopping")
                stopping.store(true, ordering: .relaxed)
            }
            s.resume()
        }

        loop.onForget = { [endpoint] in endpoint.forgetGone() }
        let watcher = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                watch.tick()
                usleep(200_000)
            }
        }
        watcher.name = "supervisor watch"
        watcher.start()
        loop.run(stopping: stopping)
        for s in signals { s.cancel() }
        logger.notice("agent stopped")
    }
}
