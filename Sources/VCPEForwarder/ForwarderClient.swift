import Foundation
import VCPEDatapath
import VCPENet
import VCPESystem

/// How the controller talks to the forwarder: chain files written and put in service, taken
/// off, and the running forwarder's report. A chain's file is what the forwarder reads on
/// every (re)start, so a restarted forwarder needs nobody to resume.
public final class ForwarderClient: ForwarderControl {
    public let forwarder: ForwarderProcess
    /// The forwarder's last report in this run (nil: not asked yet; .some(nil): not running).
    private var cached: ForwarderReport??
    /// Whether another build runs it, once asked in this run (ensure and remove may restart it).
    private var anotherBuild: Bool?

    public init(forwarder: ForwarderProcess) { self.forwarder = forwarder }

    /// The forwarder's report, asked once per run (nil: not running).
    public func report() -> ForwarderReport? {
        if let cached { return cached }
        let r = forwarder.report()
        cached = .some(r)
        return r
    }

    /// Writes the configuration and has the forwarder (started if need be) put it in service.
    /// On failure the file it replaced (or none) is put back and the forwarder told, so a
    /// failed step leaves nothing behind for the rollback to miss.
    public func ensure(_ config: SteeringConfig) throws {
        let path = forwarder.paths.chain(config.customer)
        let before = FileManager.default.contents(atPath: path)
        // Root's directory, readable by the worker, writable by root alone.
        try forwarder.paths.prepare()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try SafeFile.writeAtomically(Array(encoder.encode(config)), to: path, mode: 0o644)
        cached = nil
        anotherBuild = nil
        do {
            _ = try forwarder.ensureRunning()
            let report = try forwarder.request(.reload(customer: config.customer))
            cached = .some(report)
            if let reason = report.failed[config.customer] {
                throw ForwarderError("the forwarder could not steer \(config.customer): \(ForwarderProcess.quoted(reason))")
            }
            guard report.chains.contains(where: { $0.customer == config.customer && $0.digest == config.digest }) else {
                throw ForwarderError("the forwarder did not put \(config.customer)'s configuration in service")
            }
        } catch {
            if let before {
                try? SafeFile.writeAtomically(Array(before), to: path, mode: 0o644)
                cached = nil
                _ = try? forwarder.request(.reload(customer: config.customer), timeout: .seconds(5))
            } else {
                _ = try? remove(customers: [config.customer])
            }
            throw error
        }
    }

    /// Takes customers off the forwarder, and stops it when none is left. Returns those
    /// that were on it.
    @discardableResult
    public func remove(customers: [String]) throws -> Set<String> {
        var removed: Set<String> = []
        for c in customers where FileManager.default.fileExists(atPath: forwarder.paths.chain(c)) {
            try FileManager.default.removeItem(atPath: forwarder.paths.chain(c))
            removed.insert(c)
        }
        cached = nil
        anotherBuild = nil
        // The forwarder takes its flow cache off the links it drops; without a forwarder the
        // program goes with the namespace, and only the pinned maps would be left.
        defer { for c in customers { FlowCache.unpin(c) } }
        let running = !forwarder.processes().isEmpty
        guard running else { return removed }
        if (try? FileManager.default.contentsOfDirectory(atPath: forwarder.paths.chains))?.isEmpty ?? true {
            // Closed by the worker in parallel first: at exit the kernel would close its
            // sockets one by one, each waiting for an RCU grace period.
            _ = try? forwarder.request(.reload(customer: nil), timeout: .seconds(5))
            forwarder.stop()
        } else {
            // A forwarder of another build may not understand this one's request: it is
            // restarted with this build first (which drops the removed chains anyway).
            if forwarder.runsAnotherBuild { _ = try forwarder.ensureRunning() }
            // Returns once the forwarder has closed their sockets, which would otherwise
            // keep the namespaces (and their interfaces) alive.
            // One customer: only its file is read; several: one pass, their rings closed together.
            let report = try forwarder.request(.reload(customer: removed.count == 1 ? removed.first! : nil))
            cached = .some(report)
            if let left = report.chains.first(where: { removed.contains($0.customer) }) {
                throw ForwarderError("the forwarder still steers \(left.customer)")
            }
        }
        return removed
    }
}

/// The forwarder did not do what it was asked.
public struct ForwarderError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// What apply asks of the forwarder: `ForwarderClient` is the running one's; tests bring
/// a model of their own.
public protocol ForwarderControl: AnyObject {
    /// Writes the chain's file and has the forwarder put it in service.
    func ensure(_ config: SteeringConfig) throws
    /// Takes customers off; returns those that were on it.
    @discardableResult
    func remove(customers: [String]) throws -> Set<String>
}

/// What observation asks of the forwarder: what it runs for a customer, and the chain file
/// apply left. `ForwarderClient` asks the running one; tests bring a model of their own.
public protocol ForwarderObservation: AnyObject {
    func steering(_ customer: String) -> SteeringSeen
    /// The customer's chain file, if there is one (and it reads).
    func chainFile(_ customer: String) -> SteeringConfig?
    func hasChainFile(_ customer: String) -> Bool
    /// Whether the forwarder runs another vcpe build than this one.
    var runsAnotherBuild: Bool { get }
}

/// What the forwarder does for one customer.
public enum SteeringSeen: Sendable, Equatable {
    case notRunning
    case notLoaded
    /// Its configuration's digest, its rules (the default included), the interfaces it sends
    /// on with the index each had when it was opened.
    case running(digest: String, rules: Int, interfaces: [String: Int])
}

extension ForwarderClient: ForwarderObservation {
    public func steering(_ customer: String) -> SteeringSeen {
        guard let report = report() else { return .notRunning }
        guard let chain = report.chains.first(where: { $0.customer == customer }) else { return .notLoaded }
        return .running(digest: chain.digest, rules: chain.rules.count, interfaces: chain.interfaces)
    }

    public func chainFile(_ customer: String) -> SteeringConfig? { try? forwarder.paths.config(customer) }
    public func hasChainFile(_ customer: String) -> Bool { FileManager.default.fileExists(atPath: forwarder.paths.chain(customer)) }
    /// Asked once per run (it reads /proc), like the report.
    public var runsAnotherBuild: Bool {
        if let anotherBuild { return anotherBuild }
        let answer = forwarder.runsAnotherBuild
        anotherBuild = answer
        return answer
    }
}
