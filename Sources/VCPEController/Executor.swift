import Logging
import VCPEPolicy
import VCPENet

/// Carries out a plan on a host. Each step that succeeded is remembered with its inverse;
/// when a step fails, the inverses run in reverse order, so the customer is back where it
/// was, and the error says which step failed. Each object makes and removes itself
/// (`HostObjectKind`); the host is the kernel's, or a test's model of it.
public final class Executor {
    /// The content behind objects that carry only a digest (nftables tables, WireGuard
    /// devices, chains on the forwarder): the desired one, and the previously applied one
    /// to restore on rollback.
    let desired: Desired
    let previous: Desired
    private let host: any HostKernel
    /// Every step done, failed or undone is one line.
    private let logger: Logger

    public init(desired: Desired, previous: Desired, host: any HostKernel, logger: Logger = Logger(label: "vcpe")) {
        self.desired = desired
        self.previous = previous
        self.host = host
        self.logger = logger
    }

    public struct Failure: Error, CustomStringConvertible {
        public var action: PlanAction
        public var error: any Error
        /// Errors met while rolling back; empty when the rollback was clean.
        public var rollbackErrors: [String]

        public var description: String {
            "\(action.verb.rawValue) \(action.object.summary) failed: \(error)"
                + (rollbackErrors.isEmpty ? "; rolled back" : "; rollback incomplete (\(rollbackErrors.joined(separator: "; "))), the next apply repairs it")
        }
    }

    /// Runs every action; on failure rolls back and throws `Failure`. A failed action
    /// leaves nothing of itself (each kind's create undoes its own first steps), so only
    /// the actions done before it are undone: the plan may have been made on a host read
    /// wrongly, and undoing the failed one could take away what was there after all.
    public func run(_ plan: Plan) throws {
        var done: [PlanAction] = []
        for action in plan.actions {
            do {
                try perform(action, content: desired)
                logger.info("step", metadata: Self.metadata(plan.customer, action))
                done.append(action)
            } catch {
                // Notice: the command's own one-line error says it. A rollback that could not
                // undo everything is a warning: the host is left half-changed.
                logger.notice("step failed", metadata: Self.metadata(plan.customer, action).merging(["error": "\(error)"]) { a, _ in a })
                let errors = rollBack(done, customer: plan.customer)
                logger.log(level: errors.isEmpty ? .info : .warning, errors.isEmpty ? "rolled back" : "rollback incomplete",
                           metadata: ["customer": "\(plan.customer)", "undone": "\(done.count)", "failed": "\(errors.count)"])
                throw Failure(action: action, error: error, rollbackErrors: errors)
            }
        }
    }

    static func metadata(_ customer: String, _ action: PlanAction) -> Logger.Metadata {
        var m: Logger.Metadata = ["customer": "\(customer)", "verb": "\(action.verb.rawValue)",
                                  "kind": "\(type(of: action.object.kind).kindName)", "object": "\(action.object.id)"]
        // The service whose namespace the object is in ("host" for the host's own).
        m["service"] = "\(action.object.namespace.flatMap { KernelNames.parseNamespace($0)?.service } ?? "host")"
        if let drift = action.current?.drift { m["drift"] = "\(drift.rawValue)" }
        return m
    }

    private func rollBack(_ done: [PlanAction], customer: String) -> [String] {
        var errors: [String] = []
        for action in done.reversed() {
            let inverse = action.inverse
            do {
                try perform(inverse, content: previous)
                logger.info("undo", metadata: Self.metadata(customer, inverse))
            } catch {
                logger.warning("undo failed", metadata: Self.metadata(customer, inverse).merging(["error": "\(error)"]) { a, _ in a })
                errors.append("\(inverse.verb.rawValue) \(inverse.object.summary): \(error)")
            }
        }
        return errors
    }

    private func perform(_ action: PlanAction, content: Desired) throws {
        switch action.verb {
        case .create: try action.object.create(on: host, content)
        case .remove: try action.object.remove(from: host, content)
        case .update:
            guard let current = action.current else { throw StateError("an update of \(action.object.summary) without its current state") }
            try action.object.update(from: current, on: host, content)
        }
    }
}
