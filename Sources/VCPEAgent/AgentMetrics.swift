import Foundation
import Prometheus
import Synchronization

/// The agent's own counters, kept in swift-prometheus' registry: what it did (reconciles,
/// repairs, restarts) and how long applies took. A customer's series go with the customer.
final class AgentMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let applyDuration: DurationHistogram
    private let forwarderRestarts: Counter
    private struct PerCustomer {
        var inSync: Gauge
        var repairs: Counter
        var reconciles: [ReconcileResult: Counter] = [:]
    }
    private let customers = Mutex<[String: PerCustomer]>([:])

    enum ReconcileResult: String, CaseIterable, Sendable {
        /// The host matched the descriptor.
        case unchanged
        /// Drift was found and repaired.
        case repaired
        /// The reconcile failed (rolled back); retried with backoff.
        case failed
    }

    /// `vcpe_NAME_UNIT`, with its help text.
    static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vcpe", metricName: name, unitName: unit, helpText: help)
    }
    static var inSync: MetricNameDescriptor { name("customer_in_sync", "", "1 if the customer's last reconcile left the host matching its descriptor, else 0.") }
    static var reconciles: MetricNameDescriptor { name("reconcile", "total", "Reconciles of a customer by the agent, by result: unchanged, repaired or failed.") }
    static var repairs: MetricNameDescriptor { name("drift_repairs", "total", "Changes the agent made to repair a customer's drift (one per plan action).") }

    init() {
        applyDuration = registry.makeDurationHistogram(
            descriptor: Self.name("apply_duration", "seconds", "How long the agent took to reconcile (observe, plan, apply) one customer."),
            buckets: [.milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                      .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)])
        forwarderRestarts = registry.makeCounter(
            descriptor: Self.name("forwarder_restarts", "total", "Restarts of the forwarder: its worker by the supervisor, or the supervisor by the agent."))
    }

    func observeApply(_ d: Duration) { applyDuration.record(d) }
    func forwarderRestarted(_ n: Int = 1) { if n > 0 { forwarderRestarts.increment(by: Int64(n)) } }

    /// Records a customer's reconcile: its result, and the actions a repair took.
    func reconciled(_ customer: String, _ result: ReconcileResult, repairs: Int = 0) {
        customers.withLock { all in
            var c = all[customer] ?? PerCustomer(
                inSync: registry.makeGauge(descriptor: Self.inSync, labels: [("customer", customer)]),
                repairs: registry.makeCounter(descriptor: Self.repairs, labels: [("customer", customer)]))
            for r in ReconcileResult.allCases where c.reconciles[r] == nil {
                // Every result from the start, so a rate over "failed" is 0 rather than absent.
                c.reconciles[r] = registry.makeCounter(descriptor: Self.reconciles, labels: [("customer", customer), ("result", r.rawValue)])
            }
            c.reconciles[result]!.increment()
            c.inSync.set(to: result == .failed ? 0 : 1)
            if repairs > 0 { c.repairs.increment(by: Int64(repairs)) }
            all[customer] = c
        }
    }

    /// A deleted customer: its series go.
    func forget(_ customer: String) {
        customers.withLock { all in
            guard let c = all.removeValue(forKey: customer) else { return }
            registry.unregisterGauge(c.inSync)
            registry.unregisterCounter(c.repairs)
            for counter in c.reconciles.values { registry.unregisterCounter(counter) }
        }
    }

    func emit(into out: inout [UInt8]) { registry.emit(into: &out) }
}
