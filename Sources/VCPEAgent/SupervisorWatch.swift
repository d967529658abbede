import Foundation
import Logging
import VCPEForwarder
import VCPESystem

/// The forwarder's supervisor under the agent: started as the agent's child whenever a
/// chain is to be steered and none runs, restarted when it dies. One that runs already (a
/// previous agent's, or one `apply` started before the agent) is adopted, not replaced: it
/// is in a session of its own, so it and the chains it steers outlive an agent that is
/// killed or restarted.
final class SupervisorWatch: @unchecked Sendable {
    private let forwarder: ForwarderProcess
    private let executable: String
    private let metrics: AgentMetrics
    private let logger: Logger
    private var child: pid_t?
    /// Whether a supervisor was running at the last look (one that vanishes while chains
    /// are still to be steered is restarted, and counted).
    private var running = false
    /// The supervisor's record of worker restarts, at the last look.
    private var workerRestarts: Int?
    /// The deliberate-stop file as last seen.
    private lazy var lastStop: [Int]? = Self.stamp(forwarder.paths.stopped)

    private static func stamp(_ path: String) -> [Int]? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return [Int(st.st_ino), st.st_mtim.tv_sec, st.st_mtim.tv_nsec]
    }

    init(forwarder: ForwarderProcess, executable: String, metrics: AgentMetrics, logger: Logger) {
        self.forwarder = forwarder
        self.executable = executable
        self.metrics = metrics
        self.logger = logger
    }

    /// One look: reap, start or adopt, count. Called every 200 ms by the agent's watch thread.
    func tick() {
        if let c = child {
            var status: Int32 = 0
            let r = waitpid(c, &status, WNOHANG)
            if r == c {
                logger.info("forwarder supervisor ended", metadata: ["pid": "\(c)", "status": "\(ExitStatus(waitStatus: status))"])
                child = nil
            } else if r < 0 {
                child = nil  // reaped already (a stop in this process waits for what it kills)
            }
        }
        noteDeliberateStop()
        let supervisors = forwarder.processes()[.supervise] ?? []
        if supervisors.isEmpty {
            if forwarder.paths.customers().isEmpty {
                running = false
            } else {
                // Not while another process starts or stops one: next look.
                forwarder.withLifecycleLock(wait: false) {
                    // Looked at again under the lock: a stop that ended since the look above counts.
                    noteDeliberateStop()
                    if forwarder.processes()[.supervise]?.isEmpty ?? true { start() }
                }
            }
        } else {
            if !running && supervisors.first != child {
                logger.info("forwarder supervisor adopted", metadata: ["pid": "\(supervisors[0])"])
            }
            running = true
        }
        countWorkerRestarts()
    }

    /// A deliberate stop (configure, an upgrade) is not a death: the start after it is no restart.
    private func noteDeliberateStop() {
        let stop = Self.stamp(forwarder.paths.stopped)
        if stop != lastStop {
            lastStop = stop
            running = false
        }
    }

    private func start() {
        do {
            let pid = try spawnChild(executable, ["forwarder", ForwarderProcess.Role.supervise.rawValue, forwarder.state], stderr: 2)
            if running {
                metrics.forwarderRestarted()
                logger.notice("forwarder supervisor restarted", metadata: ["pid": "\(pid)"])
            } else {
                logger.info("forwarder supervisor started", metadata: ["pid": "\(pid)"])
            }
            child = pid
            running = true
            workerRestarts = nil  // its record is read afresh: the file may still be the previous one's
        } catch {
            logger.error("forwarder supervisor did not start", metadata: ["error": "\(error)"])
        }
    }

    /// The supervisor's record counts its worker's restarts since it started; a new
    /// supervisor starts its count again.
    private func countWorkerRestarts() {
        guard let record = forwarder.supervisorRecord() else { return }
        defer { workerRestarts = record.restarts }
        guard let before = workerRestarts else { return }  // adopted: its past is not this agent's to count
        let delta = record.restarts >= before ? record.restarts - before : record.restarts
        if delta > 0 {
            metrics.forwarderRestarted(delta)
            logger.notice("forwarder worker restarted", metadata: ["restarts": "\(record.restarts)", "last": "\(record.lastExit)"])
        }
    }
}
