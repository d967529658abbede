import Foundation
import VCPEContainer
import VCPEDatapath
import VCPENet
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// The forwarder's supervisor, on the host with vcpe's privileges, makes what only they can
/// make for the forwarder's container: a chain's sockets and flow cache (`BrokerRequest.open`,
/// answered with one `BrokerReply` line and the descriptors), and takes a cache off
/// (`BrokerRequest.detach`). It decides from what only root writes (the chain files and settings in the
/// forwarder directory, which the worker can read but not write), serves only the worker's
/// user (and root), only configured customers' classifier namespaces and their own links,
/// reads at most one short line per connection, and several clients at once.
public struct NamespaceBroker: Sendable {
    let paths: ForwarderPaths
    let worker: ContainerSpec.User

    public init(paths: ForwarderPaths, worker: ContainerSpec.User = ForwarderProcess.workerUser) {
        self.paths = paths
        self.worker = worker
    }

    /// Connections served at once; more wait in the listen queue (or are closed when it is full).
    static let maxClients = 8
    /// A client that sends nothing for this long is dropped.
    static let clientTimeout = Duration.seconds(5)

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Serves requests, each connection on a thread of its own, until the process ends.
    public func serve() throws -> Never {
        let listener = try UnixListener(path: paths.broker, backlog: 32, group: worker.gid)
        let slots = DispatchSemaphore(value: Self.maxClients)
        while true {
            slots.wait()
            guard let client = try? listener.accept(timeout: Self.clientTimeout) else {
                slots.signal()
                continue
            }
            nonisolated(unsafe) let connection = client
            let thread = Thread { [self] in
                handle(connection)
                slots.signal()
            }
            thread.name = "broker client"
            thread.start()
        }
    }

    /// One connection: who it is, one bounded line, one answer.
    func handle(_ client: UnixStream) {
        let reply: BrokerReply
        var fds: [Int32]
        // The line is read (bounded) whoever asks, so that a refusal is an answer, not a
        // reset; it is parsed only for the worker's user and root.
        let received = Result { try client.readLine(receivingDescriptors: false, limit: BrokerRequest.maxLine).line }
        if let peer = try? client.peer(), peer.uid == 0 || peer.uid == worker.uid {
            switch received.flatMap({ l in Result { try BrokerRequest.decode(l) } }) {
            case .success(let request): (reply, fds) = answer(request, from: peer)
            case .failure(let error): (reply, fds) = (BrokerReply(error: "bad request: \(error)"), [])
            }
        } else {
            (reply, fds) = (BrokerReply(error: "refused: not the forwarder's user"), [])
        }
        let line: String
        do { line = try reply.line() } catch {
            // Descriptors go only with the answer that says what they are.
            for fd in fds { close(fd) }
            (line, fds) = (BrokerReply(error: "the reply could not be encoded: \(error)").lineOrError, [])
        }
        try? client.write(line, passing: fds)
        for fd in fds { close(fd) }
    }

    func answer(_ request: BrokerRequest, from peer: PeerCredentials) -> (BrokerReply, [Int32]) {
        switch request {
        case .open(let customer):
            guard peer.uid == 0 || withinBudget(peer.pid) else {
                return (BrokerReply(error: "refused: the forwarder holds more sockets and maps than its chains need"), [])
            }
            do {
                let config = try checkedConfig(customer)
                let settings = try paths.loadSettings()
                guard ForwarderSettings.ringFramesRange.contains(settings.ringFrames),
                      ForwarderSettings.flowEntriesRange.contains(settings.flowEntries) else {
                    return (BrokerReply(error: "settings out of range: \(settings.ringFrames) frames, \(settings.flowEntries) flow entries"), [])
                }
                let s = try ChainSockets.open(config, ringFrames: settings.ringFrames, flowEntries: settings.flowEntries)
                let ports = s.ports.map { p in
                    BrokerReply.Port(interface: p.interface, ifindex: p.ifindex, mac: withUnsafeBytes(of: p.mac.bytes) { Array($0) })
                }
                return (BrokerReply(ports: ports, cache: s.flows != nil, problem: s.problem), s.descriptors)
            } catch {
                return (BrokerReply(error: "\(error)"), [])
            }
        case .detach(let customer):
            // Only a cache apply no longer wants: a chain that is configured with one keeps it,
            // and so does one whose file cannot be read now.
            if access(paths.chain(customer), F_OK) == 0 {
                guard let config = try? paths.config(customer), !config.flowCache else {
                    return (BrokerReply(error: "\(customer) is configured with a flow cache (or its file cannot be read)"), [])
                }
            }
            let namespace = KernelNames.classifierNamespace(customer: customer)
            _ = try? NetworkNamespace.perform(in: namespace) { FlowCache.detach(interfaces: FlowCache.interfacesHere()) }
            FlowCache.unpin(customer)
            return (BrokerReply(), [])
        }
    }

    /// Whether the worker holds no more sockets and eBPF maps than its chains need, twice
    /// over (a chain re-opened holds its old ones until it is closed) and a few more: every
    /// open makes a ring (up to 256 MiB of the host's memory), so a worker that keeps asking
    /// without closing is refused.
    func withinBudget(_ pid: pid_t) -> Bool {
        let chains = paths.customers().compactMap { try? paths.config($0) }
        let sockets = 2 * chains.reduce(0) { $0 + 2 + $1.paths.count } + 16
        let maps = 2 * chains.count + 8
        var held = (sockets: 0, maps: 0)
        let dir = "/proc/\(pid)/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + fd) else { continue }
            if target.hasPrefix("socket:") { held.sockets += 1 } else if target.hasPrefix("anon_inode:bpf-map") { held.maps += 1 }
        }
        return held.sockets <= sockets && held.maps <= maps
    }

    /// The customer's chain file as apply wrote it, and only if it names that customer's own
    /// classifier namespace and links.
    func checkedConfig(_ customer: String) throws -> SteeringConfig {
        let config = try paths.config(customer)
        let expected = [KernelNames.lanInterface] + config.paths.map { KernelNames.pathOut($0.name) }
        guard config.customer == customer, config.namespace == KernelNames.classifierNamespace(customer: customer),
              [config.lan.interface] + config.paths.map(\.interface) == expected else {
            throw Failure(description: "\(paths.chain(customer)) does not describe \(customer)'s classifier namespace")
        }
        return config
    }

    /// One request to the broker at `path`: its answer and the descriptors that came with it.
    static func ask(_ path: String, _ request: BrokerRequest) throws -> (BrokerReply, [Int32]) {
        // The supervisor starts its broker beside the worker: wait for it a little.
        var connected: UnixStream?
        for attempt in 0..<250 {
            do { connected = try UnixStream(connectingTo: path, timeout: .seconds(10)); break } catch {
                guard attempt < 249, error.errno == .noSuchFileOrDirectory || error.errno == .connectionRefused else { throw error }
                usleep(20_000)
            }
        }
        let stream = connected!
        try stream.write(request.line())
        let (line, fds) = try stream.readLine(receivingDescriptors: true, limit: BrokerReply.maxLine)
        guard let reply = try? BrokerReply.decode(line) else {
            for fd in fds { close(fd) }
            throw Failure(description: "namespace broker at \(path): no answer to \(request.verb)")
        }
        return (reply, fds)
    }
}

/// The worker's way into chains' namespaces: the supervisor's broker, named in its environment.
struct BrokerAccess: NamespaceAccess {
    static let environmentKey = "VCPE_FORWARDER_BROKER"
    let path: String

    /// The broker named in the environment, else the worker's own privileges (run as root).
    static var current: any NamespaceAccess {
        ProcessInfo.processInfo.environment[environmentKey].map { BrokerAccess(path: $0) } ?? DirectAccess()
    }

    func open(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int) throws -> ChainSockets {
        // The broker sizes the ring and the map from the settings root wrote, not from us.
        let (reply, fds) = try NamespaceBroker.ask(path, .open(customer: config.customer))
        guard let ports = reply.ports, let hasCache = reply.cache, fds.count == 1 + ports.count + (hasCache ? 1 : 0) else {
            for fd in fds { close(fd) }
            throw NamespaceBroker.Failure(description: "namespace broker: open \(config.customer): \(reply.error ?? "a malformed answer")")
        }
        return ChainSockets(ring: fds[0],
                            ports: zip(ports, fds[1...]).map { PacketPort.Opened(interface: $0.interface, fd: $1, ifindex: $0.ifindex, mac: $0.mac) },
                            flows: hasCache ? fds.last : nil, problem: reply.problem)
    }

    func removeCache(customer: String, namespace: String, interfaces: [Int32]) {
        _ = try? NamespaceBroker.ask(path, .detach(customer: customer))
    }
}
