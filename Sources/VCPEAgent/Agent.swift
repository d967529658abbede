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
    /// Used on the scrape queue only.
    private nonisolated(unsafe) let reader: CounterReader
    /// Scrapes run here, one at a time, off the HTTP event loop.
    private let scrapes = DispatchQueue(label: "vcpe.scrape")
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
        let containers = forwarder.containers
        reader = CounterReader(forwarder: forwarder, wireguard: WireGuard.driver(containers: containers))
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
        let server = try MetricsServer(host: options.host, port: options.port) { [self] path, answer in
            // A scrape reads the kernel: on its own queue, never on the event loop (health
            // answers meanwhile).
            if path == "/metrics" {
                scrapes.async { answer(.init(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: self.scrape())) }
            } else {
                answer(respond(path))
            }
        }
        defer { server.close() }
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

        loop.onForget = { [self] in
            let left = catalog.snapshot
            scrapes.async { self.reader.forget(allBut: left) }
        }
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

    /// The answer to a path other than /metrics.
    private func respond(_ path: String) -> MetricsServer.Response {
        switch path {
        case "/healthz":
            // The loop is alive: it looked at the state recently, or waits for the lock.
            let beat = loop.heartbeat.load(ordering: .relaxed)
            let stale = ReconcileLoop.now() - beat
            let limit = max(Int64(options.interval.components.seconds) * 3, 120)
            return beat == 0 || stale < limit
                ? .init(status: .ok, body: Array("ok\n".utf8))
                : .init(status: .serviceUnavailable, body: Array("reconcile loop silent for \(stale) s\n".utf8))
        case "/readyz":
            return loop.ready.load(ordering: .relaxed)
                ? .init(status: .ok, body: Array("ready\n".utf8))
                : .init(status: .serviceUnavailable, body: Array("reconciling the customers on record\n".utf8))
        default:
            return .init(status: .notFound, body: Array("not found: /metrics, /healthz, /readyz\n".utf8))
        }
    }

    /// The exposition: the agent's own counters, then what the kernel, the forwarder and
    /// the daemons count, then how the scrape went.
    private func scrape() -> [UInt8] {
        let began = ContinuousClock.now
        let entries = catalog.snapshot
        var out: [UInt8] = []
        out.reserveCapacity(64 << 10)
        metrics.emit(into: &out)
        reader.forget(allBut: entries)
        let (families, errors) = reader.read(entries)
        var build = Exposition.Family("vcpe_build_info", .gauge, labels: ["version", "commit"], help: "1, labelled with the agent's version and commit.")
        build.add([options.version, options.commit], 1.0)
        var meta = [build, Exposition.Family("vcpe_scrape_errors", .gauge, labels: [], help: "Reads that failed in this scrape (a namespace or daemon that did not answer)."),
                    Exposition.Family("vcpe_scrape_duration_seconds", .gauge, labels: [], help: "How long this scrape took to read every counter.")]
        meta[1].add([], Double(errors))
        let took = ContinuousClock.now - began
        meta[2].add([], Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18)
        Exposition.write(families + meta, into: &out)
        return out
    }
}
