import Foundation
import SystemPackage
import VCPEContainer
import VCPEDatapath
import VCPENet
import VCPESystem

/// Where the forwarder and the controller meet: one directory under vcpe's state, root's
/// and read-only to the worker, with one directory inside that is the worker's own:
///   chains/CUSTOMER.json  what to steer (written by apply, removed by delete)
///   settings.json         ForwarderSettings (optional)
///   broker.sock           the supervisor's broker (root and the worker's group)
///   forwarder.log         what the worker wrote to stderr (opened by the supervisor)
///   supervisor.json       the supervisor's record of restarts
///   lifecycle.lock        held by whoever starts or stops the supervisor
///   stopped               rewritten by each deliberate stop
///   run/control.sock      the running worker's control socket (run/ is the worker's)
/// Nothing root opens lives in run/, and the worker can write nowhere else.
public struct ForwarderPaths: Sendable {
    public let directory: String
    public init(state: String) { directory = state + "/forwarder" }
    public var chains: String { directory + "/chains" }
    public func chain(_ customer: String) -> String { "\(chains)/\(customer).json" }
    public var settings: String { directory + "/settings.json" }
    /// The worker's own directory, the only place it may write.
    public var run: String { directory + "/run" }
    public var socket: String { run + "/control.sock" }
    public var log: String { directory + "/forwarder.log" }
    public var supervisor: String { directory + "/supervisor.json" }
    /// Taken by every start and stop of the supervisor (see ForwarderProcess.withLifecycleLock).
    public var lifecycleLock: String { directory + "/lifecycle.lock" }
    /// Rewritten by each deliberate stop, so an agent does not count the start after it as a restart.
    public var stopped: String { directory + "/stopped" }
    /// Where the supervisor makes namespace sockets for a forwarder in a container.
    public var broker: String { directory + "/broker.sock" }

    /// A chain file is at most this large (the descriptor that makes it is at most 1 MiB).
    static let configLimit = 16 << 20

    /// Makes the directories with their owners and modes: root's, readable by the worker
    /// (it reads chains and settings), and the worker's own `run/`.
    public func prepare(worker: ContainerSpec.User = ForwarderProcess.workerUser) throws(KernelError) {
        try SafeFile.ensureDirectory(directory, mode: 0o755)
        try SafeFile.ensureDirectory(chains, mode: 0o755)
        try SafeFile.ensureDirectory(run, mode: 0o700, owner: worker.uid, group: worker.gid)
    }

    /// The customers that have a chain file.
    public func customers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: chains)) ?? []).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// Every customer's configuration, each read on its own: one file that cannot be read
    /// is that customer's problem (said in `failed`), not the others'.
    public func configs() -> (configs: [SteeringConfig], failed: [String: String]) {
        var out: [SteeringConfig] = [], failed: [String: String] = [:]
        for c in customers() {
            do { out.append(try config(c)) } catch { failed[c] = "reading \(chain(c)): \(error)" }
        }
        return (out, failed)
    }

    /// One customer's configuration, as apply wrote it: a regular file, not followed if a
    /// link, of bounded size.
    public func config(_ customer: String) throws -> SteeringConfig {
        guard KernelNames.isValidName(customer, maxLength: KernelNames.maxCustomerName) else {
            throw NamespaceBroker.Failure(description: "not a customer name: \(customer.debugDescription)")
        }
        return try JSONDecoder().decode(SteeringConfig.self, from: Data(SafeFile.readRegular(chain(customer), limit: Self.configLimit)))
    }

    public func loadSettings() throws -> ForwarderSettings {
        let bytes: [UInt8]
        do { bytes = try SafeFile.readRegular(settings, limit: 1 << 16) } catch where error.errno == .noSuchFileOrDirectory {
            return ForwarderSettings()
        }
        return try JSONDecoder().decode(ForwarderSettings.self, from: Data(bytes))
    }
}

/// The forwarder's report, in its answer to every `ControlRequest`.
public struct ForwarderReport: Sendable, Codable {
    public var pid: Int32
    public var settings: ForwarderSettings
    public var chains: [ChainStats]
    /// Customers whose configuration could not be put in service, with the reason.
    public var failed: [String: String]
}

/// The forwarder process: the forwarding thread plus a control socket that reloads the
/// chain directory and reports counters: one `ControlRequest` line, one `ControlReply` line back.
public final class ForwarderService: @unchecked Sendable {
    let paths: ForwarderPaths
    let forwarder: Forwarder
    private let lock = NSLock()
    private var running: [String: SteeredChain] = [:]
    private var failed: [String: String] = [:]

    /// Chains' namespaces, entered here or through the supervisor's broker.
    let access = BrokerAccess.current

    public init(paths: ForwarderPaths) throws {
        self.paths = paths
        forwarder = try Forwarder(settings: paths.loadSettings())
    }

    /// Serves until killed.
    public func run() throws -> Never {
        let thread = Thread { [forwarder] in forwarder.run() }
        thread.name = "forwarding"
        thread.start()
        _ = reload()
        let sweeper = Thread { [self] in sweepForever() }
        sweeper.name = "flow sweeper"
        sweeper.start()
        // Run by hand (as root) nothing has made its directory yet; in its container it is mounted.
        if Glibc.access(paths.run, F_OK) != 0 { mkdir(paths.run, 0o700) }
        let listener = try UnixListener(path: paths.socket)
        while true {
            guard let client = try? listener.accept() else { continue }
            serve(client)
        }
    }

    /// Puts the chain directory in service: new chains get a ring, chains whose rules alone
    /// changed get the new rules swapped in live, removed ones are closed. With `customer`,
    /// only that customer's file is read (what apply asks for, once per customer), and its
    /// rings are checked against the interfaces that now carry their names: links that
    /// were re-created under the same names get new rings.
    public func reload(customer: String? = nil) -> [String: String] {
        lock.lock()
        defer { lock.unlock() }
        var next = running
        var errors = failed
        var configs: [SteeringConfig] = []
        if let customer {
            next[customer] = nil
            errors[customer] = nil
            if FileManager.default.fileExists(atPath: paths.chain(customer)) {
                do {
                    configs = [try paths.config(customer)]
                } catch {
                    errors[customer] = "reading \(paths.chain(customer)): \(error)"
                    if let current = running[customer] { next[customer] = current }
                }
            }
        } else {
            let read = paths.configs()
            configs = read.configs
            next = [:]
            errors = read.failed
            // A chain whose file went bad keeps what it ran before.
            for c in read.failed.keys { if let current = running[c] { next[c] = current } }
        }
        // Chains that need a new ring are opened side by side: each ring's setup waits for
        // an RCU grace period, and a restarted forwarder opens them all.
        var unchanged: [SteeringConfig] = [], changed: [SteeringConfig] = []
        for config in configs {
            if let current = running[config.customer], current.config.sameLinks(as: config), customer == nil || current.isCurrent() {
                unchanged.append(config)
            } else {
                changed.append(config)
            }
        }
        for config in unchanged {
            let current = running[config.customer]!
            do {
                if current.config != config { try current.replaceRules(config) }
            } catch {
                errors[config.customer] = "\(error)"
            }
            next[config.customer] = current
        }
        let frames = forwarder.settings.ringFrames, entries = forwarder.settings.flowEntries, access = access
        var replacing: [(new: SteeredChain, old: SteeredChain)] = []
        let fresh = changed
        let opened = (try? inParallel(fresh.count) { i in Result { try SteeredChain(fresh[i], ringFrames: frames, flowEntries: entries, access: access) } }) ?? []
        for (config, result) in zip(fresh, opened) {
            switch result {
            case .success(let chain):
                if let old = running[config.customer] { replacing.append((chain, old)) }
                next[config.customer] = chain
            case .failure(let error):
                errors[config.customer] = "\(error)"
                // Keep serving what worked before rather than nothing.
                if let current = running[config.customer] { next[config.customer] = current }
            }
        }
        forwarder.install(next.keys.sorted().map { next[$0]! })
        // The old chains are out of the forwarding thread's hands: their counts are final.
        for (new, old) in replacing { new.carryCounts(from: old) }
        let kept = Set(next.values.map(ObjectIdentifier.init))
        let dropped = running.values.filter { !kept.contains(ObjectIdentifier($0)) }
        running = next
        failed = errors
        // Out of the forwarding thread's hands now; each ring's close waits for a grace period.
        // A customer no longer steered, or no longer cached, loses its cache too.
        let cached = Set(next.values.filter { $0.cache != nil }.map(\.config.customer))
        _ = try? inParallel(dropped.count) { i in
            let chain = dropped[i]
            chain.close()
            if chain.cache != nil && !cached.contains(chain.config.customer) { chain.removeCache(via: access) }
        }
        return errors
    }

    /// Removes idle cached flows, a few times per idle period, for the life of the process.
    private func sweepForever() -> Never {
        let idle = UInt64(max(1, forwarder.settings.flowIdleSeconds)) * 1_000_000_000
        let interval = UInt32(min(max(idle / 4_000, 250_000), 10_000_000))  // µs
        while true {
            usleep(interval)
            lock.lock()
            let now = monotonicNanoseconds()
            for chain in running.values { chain.sweepFlows(now: now, idle: idle) }
            lock.unlock()
        }
    }

    public func report() -> ForwarderReport {
        lock.lock()
        defer { lock.unlock() }
        return ForwarderReport(pid: getpid(), settings: forwarder.settings,
                               chains: running.keys.sorted().map { running[$0]!.stats }, failed: failed)
    }

    /// One request line, one reply line back; a request that is not one is answered with why.
    private func serve(_ client: UnixStream) {
        let reply: ControlReply
        do {
            // The newline is read too: the bound is the request's.
            switch try ControlRequest.decode(client.read(until: "\n", limit: ControlRequest.maxLine + 1)) {
            case .reload(let customer): _ = reload(customer: customer)
            case .stats: break
            }
            reply = ControlReply(report: report())
        } catch {
            reply = ControlReply(error: "bad request: \(error)")
        }
        try? client.write(reply.lineOrError)
    }
}
