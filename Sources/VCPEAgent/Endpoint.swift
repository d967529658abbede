import Dispatch
import Synchronization
import VCPEForwarder
import VCPEWireGuard

/// What the agent answers over HTTP: /metrics (assembled on a queue of its own, one scrape
/// at a time, shared by every request that came while it ran), /healthz and /readyz.
final class Endpoint: Sendable {
    enum Route: String {
        case metrics = "/metrics"
        case healthz = "/healthz"
        case readyz = "/readyz"
    }

    struct Build: Sendable {
        var version: String
        var commit: String
    }

    private let catalog: Catalog
    private let metrics: AgentMetrics
    private let loop: ReconcileLoop
    private let interval: Duration
    private let build: Build
    /// Used on the scrape queue only.
    private nonisolated(unsafe) let reader: CounterReader
    private let scrapes = DispatchQueue(label: "vcpe.scrape")
    /// Who waits for the scrape in flight; nil when none runs.
    private let waiting = Mutex<[@Sendable (MetricsServer.Response) -> Void]?>(nil)

    init(catalog: Catalog, metrics: AgentMetrics, loop: ReconcileLoop, interval: Duration, build: Build, reader: CounterReader) {
        (self.catalog, self.metrics, self.loop, self.interval, self.build, self.reader) = (catalog, metrics, loop, interval, build, reader)
    }

    /// Answers one request; called on the event loop, which it never blocks.
    func answer(_ path: String, _ reply: @escaping @Sendable (MetricsServer.Response) -> Void) {
        switch Route(rawValue: path) {
        case .metrics: scrape(then: reply)
        case .healthz: reply(health)
        case .readyz:
            reply(loop.ready.load(ordering: .relaxed)
                  ? .init(status: .ok, body: Array("ready\n".utf8))
                  : .init(status: .serviceUnavailable, body: Array("reconciling the customers on record\n".utf8)))
        case nil:
            reply(.init(status: .notFound, body: Array("not found: /metrics, /healthz, /readyz\n".utf8)))
        }
    }

    /// The loop is alive: it looked at the state recently, or waits for the lock.
    private var health: MetricsServer.Response {
        let beat = loop.heartbeat.load(ordering: .relaxed)
        let stale = ReconcileLoop.now() - beat
        let limit = max(Int64(interval.components.seconds) * 3, 120)
        return beat == 0 || stale < limit
            ? .init(status: .ok, body: Array("ok\n".utf8))
            : .init(status: .serviceUnavailable, body: Array("reconcile loop silent for \(stale) s\n".utf8))
    }

    /// Joins the scrape in flight, or starts one: N clients at once cost one scrape.
    private func scrape(then reply: @escaping @Sendable (MetricsServer.Response) -> Void) {
        let first = waiting.withLock { w -> Bool in
            if w == nil { w = [reply]; return true }
            w!.append(reply)
            return false
        }
        guard first else { return }
        scrapes.async {
            let response = MetricsServer.Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: self.exposition())
            for r in self.waiting.withLock({ w in defer { w = nil }; return w ?? [] }) { r(response) }
        }
    }

    /// Lets go of namespaces no customer has any more (on the scrape queue, where the sockets live).
    func forgetGone() {
        let left = catalog.snapshot
        scrapes.async { self.reader.forget(allBut: left) }
    }

    /// Waits for the scrape in flight, if any (before the server goes away under its answer).
    func drain() { scrapes.sync {} }

    /// The agent's own counters, then what the kernel, the forwarder and the daemons count,
    /// then how the scrape went.
    private func exposition() -> [UInt8] {
        let began = ContinuousClock.now
        let entries = catalog.snapshot
        var out: [UInt8] = []
        out.reserveCapacity(64 << 10)
        metrics.emit(into: &out)
        // Sockets of customers gone were let go when the loop forgot them (forgetGone).
        let (families, errors) = reader.read(entries)
        var info = Exposition.Family("vcpe_build_info", .gauge, labels: ["version", "commit"], help: "1, labelled with the agent's version and commit.")
        info.add([build.version, build.commit], 1.0)
        var failed = Exposition.Family("vcpe_scrape_errors", .gauge, labels: [], help: "Reads that failed in this scrape (a namespace or daemon that did not answer in time).")
        failed.add([], Double(errors))
        var took = Exposition.Family("vcpe_scrape_duration_seconds", .gauge, labels: [], help: "How long this scrape took to read every counter.")
        let d = ContinuousClock.now - began
        took.add([], Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        Exposition.write(families + [info, failed, took], into: &out)
        return out
    }
}
