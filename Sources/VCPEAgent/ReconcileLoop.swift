import Foundation
import Logging
import Synchronization
import SystemPackage
import VCPEController
import VCPEDescriptor

/// The agent's loop: every customer in the state directory is reconciled (observed,
/// planned, applied with its stored descriptor) on start, again every interval, and at
/// once when `vcpe apply` or `delete` changed its record. A customer whose reconcile fails
/// is retried with backoff; the others go on. The state lock is taken per batch and let go
/// at least every couple of seconds, so `vcpe apply/delete` are never held up for long.
final class ReconcileLoop: @unchecked Sendable {
    struct Settings: Sendable {
        var stateDirectory: String
        var interval: Duration
        var executable: String
        /// How long one hold of the lock may last when others are due.
        var batchBudget: Duration = .seconds(2)
        /// The longest wait before a failed customer is tried again.
        var maxBackoff: Duration = .seconds(300)
    }

    /// A record file's identity: rewritten (renamed into place) means changed.
    struct Stamp: Equatable {
        var inode: UInt64
        var modified: Int
    }

    private struct Schedule {
        var stamp: Stamp?
        var due: ContinuousClock.Instant
        var failures = 0
    }

    private let settings: Settings
    private let metrics: AgentMetrics
    private let logger: Logger
    /// What the scrape reads: one entry per applied customer.
    let catalog: Catalog
    /// Called when customers went or changed, so the scrape lets go of namespaces they no longer have.
    var onForget: @Sendable () -> Void = {}
    private var schedules: [String: Schedule] = [:]
    /// Customers found at start and not yet reconciled once: ready when none is left.
    private var firstPass: Set<String>?
    let ready = Atomic<Bool>(false)
    /// Seconds (monotonic) of the loop's last sign of life; 0 while it waits for the lock.
    let heartbeat = Atomic<Int64>(0)

    init(settings: Settings, metrics: AgentMetrics, logger: Logger, catalog: Catalog) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.catalog = catalog
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec)
    }

    func run(stopping: borrowing Atomic<Bool>) {
        while !stopping.load(ordering: .relaxed) {
            heartbeat.store(Self.now(), ordering: .relaxed)
            scan()
            let now = ContinuousClock.now
            let due = schedules.filter { $0.value.due <= now }.sorted { ($0.value.due, $0.key) < ($1.value.due, $1.key) }.map(\.key)
            if !due.isEmpty { reconcile(due, stopping: stopping) }
            if firstPass?.isEmpty == true, !ready.load(ordering: .relaxed) {
                ready.store(true, ordering: .relaxed)
                logger.notice("ready", metadata: ["customers": "\(schedules.count)"])
            }
            // The directory is looked at every second: an apply by hand is taken up at once.
            let next = schedules.values.map(\.due).min() ?? now + .seconds(1)
            let wait = min(max(next - ContinuousClock.now, .milliseconds(10)), .seconds(1))
            var remaining = wait
            while remaining > .zero, !stopping.load(ordering: .relaxed) {
                let step = min(remaining, .milliseconds(100))
                usleep(UInt32(step / .microseconds(1)))
                remaining -= step
            }
        }
    }

    private var recordsDirectory: String { settings.stateDirectory + "/customers" }

    /// The customers on record now, each with its file's stamp; nil when the directory
    /// cannot be read (not "no customers": that would forget them all). Read without the
    /// lock: records are renamed into place, so a file seen is whole.
    private func records() -> [String: Stamp]? {
        let entries: [String]
        var st = stat()
        if lstat(recordsDirectory, &st) != 0 && Errno.lastCall == .noSuchFileOrDirectory {
            entries = []
        } else {
            do { entries = try FileManager.default.contentsOfDirectory(atPath: recordsDirectory) } catch {
                logger.error("state directory cannot be read", metadata: ["directory": "\(recordsDirectory)", "error": "\(error)"])
                return nil
            }
        }
        var out: [String: Stamp] = [:]
        for f in entries where f.hasSuffix(".json") {
            let customer = String(f.dropLast(5))
            out[customer] = stamp(customer)
        }
        return out
    }

    private func stamp(_ customer: String) -> Stamp? {
        var st = stat()
        guard lstat(recordsDirectory + "/" + customer + ".json", &st) == 0 else { return nil }
        return Stamp(inode: UInt64(st.st_ino), modified: st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec)
    }

    private func scan() {
        guard let found = records() else { return }
        if firstPass == nil { firstPass = Set(found.keys) }
        let now = ContinuousClock.now
        for (customer, stamp) in found {
            if var s = schedules[customer] {
                // Changed by someone else: taken up now, whatever its backoff.
                if s.stamp != stamp { s.due = now; s.failures = 0; s.stamp = stamp; schedules[customer] = s }
            } else {
                schedules[customer] = Schedule(stamp: stamp, due: now)
            }
        }
        let gone = schedules.keys.filter { found[$0] == nil }
        for customer in gone { forget(customer) }
    }

    private func forget(_ customer: String) {
        schedules[customer] = nil
        firstPass?.remove(customer)
        catalog.remove(customer)
        metrics.forget(customer)
        logger.info("customer gone from the state", metadata: ["customer": "\(customer)"])
        onForget()
    }

    /// Reconciles these customers under the lock, as many as fit in the budget; the rest
    /// stay due for the next turn.
    private func reconcile(_ customers: [String], stopping: borrowing Atomic<Bool>) {
        let store: StateStore
        do {
            store = try StateStore(directory: settings.stateDirectory)
            heartbeat.store(0, ordering: .relaxed)
            // One customer's unreadable record is its own failure, not everyone's.
            try store.lock(isolatingCustomers: true)
            heartbeat.store(Self.now(), ordering: .relaxed)
        } catch {
            heartbeat.store(Self.now(), ordering: .relaxed)
            // The whole state cannot be read: nobody can be reconciled until it is repaired.
            logger.error("state cannot be read", metadata: ["error": "\(error)"])
            for c in customers { failed(c, because: "\(error)") }
            return
        }
        defer { store.unlock() }
        let reconciler = Reconciler(store: store, logger: logger)
        reconciler.executable = settings.executable
        let start = ContinuousClock.now
        for customer in customers {
            if stopping.load(ordering: .relaxed) { return }
            if customer != customers.first, ContinuousClock.now - start > settings.batchBudget { break }
            heartbeat.store(Self.now(), ordering: .relaxed)
            firstPass?.remove(customer)
            if let why = store.unreadable[customer] {
                failed(customer, because: "its state cannot be read (repair or restore the file, or delete the customer): \(why)")
                continue
            }
            guard let record = store.record(customer) else {
                forget(customer)
                continue
            }
            guard let chain = store.lastApplied(customer) else {
                failed(customer, because: "its stored descriptor is not valid for this vcpe: apply a valid one, or delete the customer")
                continue
            }
            let began = ContinuousClock.now
            do {
                let result = try reconciler.apply(chain, descriptor: record.descriptor)
                metrics.observeApply(ContinuousClock.now - began)
                if result.actions > 0 {
                    logger.notice("repaired drift", metadata: ["customer": "\(customer)", "actions": "\(result.actions)",
                                                               "objects": "\(result.plan.actions.map { "\($0.verb) \($0.object.summary)" }.joined(separator: "; "))"])
                }
                metrics.reconciled(customer, result.actions > 0 ? .repaired : .unchanged, repairs: result.actions)
                schedules[customer] = Schedule(stamp: stamp(customer), due: ContinuousClock.now + settings.interval)
            } catch {
                metrics.observeApply(ContinuousClock.now - began)
                failed(customer, because: "\(error)")
            }
            catalog.set(CatalogEntry(chain))
        }
        // A customer whose services changed leaves namespaces the scrape may hold sockets in.
        onForget()
        // Bridges a delete retired, should its own removal have been interrupted.
        do { _ = try reconciler.removeRetiredLinks() } catch {
            logger.warning("retired links not removed", metadata: ["error": "\(error)"])
        }
    }

    private func failed(_ customer: String, because reason: String) {
        var s = schedules[customer] ?? Schedule(stamp: nil, due: .now)
        s.failures += 1
        let backoff = min(Duration.seconds(1) * (1 << min(s.failures - 1, 16)), settings.maxBackoff)
        s.due = ContinuousClock.now + backoff
        // The stamp is kept: a new apply by hand is taken up at once, backoff or not.
        schedules[customer] = s
        metrics.reconciled(customer, .failed)
        logger.error("reconcile failed", metadata: ["customer": "\(customer)", "error": "\(reason)", "attempt": "\(s.failures)",
                                                    "retryIn": "\(backoff.components.seconds)s"])
    }
}
