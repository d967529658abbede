import Foundation
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// What a steered chain's data path holds of its namespace: sockets made in there (a packet
/// socket belongs to the namespace it was made in, whoever holds it later) and the flow
/// map. Making them takes the privileges (setns, raw sockets, loading and attaching eBPF);
/// holding them takes none.
struct ChainSockets {
    var ring: Int32
    var ports: [PacketPort.Opened]
    var flows: Int32?
    /// Why the chain has no flow cache, if it wanted one.
    var problem: String?

    var descriptors: [Int32] { [ring] + ports.map(\.fd) + (flows.map { [$0] } ?? []) }

    /// Inside the chain's namespace: the ports, the flow cache loaded and attached (or
    /// taken off if the chain has none), the ring with the cache's miss filter.
    static func open(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int) throws -> ChainSockets {
        let interfaces = [config.lan.interface] + config.paths.map(\.interface)
        return try NetworkNamespace.perform(in: config.namespace) {
            var ports: [PacketPort.Opened] = []
            do {
                for i in interfaces { ports.append(try PacketPort.open(interface: i)) }
            } catch {
                for p in ports { close(p.fd) }
                throw error
            }
            var cache: FlowCache?, problem: String?
            if config.flowCache {
                do {
                    cache = try FlowCache(customer: config.customer, interfaces: ports.map(\.ifindex), capacity: flowEntries)
                } catch {
                    problem = "\(error)"
                }
            }
            // Without a cache of its own (off, or it failed to load), whatever an earlier
            // forwarder left attached would forward beside userspace.
            if cache == nil {
                FlowCache.detach(interfaces: ports.map(\.ifindex))
                FlowCache.unpin(config.customer)
            }
            defer { cache?.close() }  // what it attached and pinned stays; the map goes by its own descriptor
            do {
                let ring = try PacketRing.openSocket(namespace: config.namespace, frames: ringFrames, filter: cache?.missFilter)
                return ChainSockets(ring: ring, ports: ports, flows: cache.map { dup($0.flows) }, problem: problem)
            } catch {
                for p in ports { close(p.fd) }
                throw error
            }
        }
    }
}

/// How the forwarder reaches chains' namespaces: itself (run as root, as the benchmarks do)
/// or through the broker its supervisor runs on the host, so that the forwarder's container
/// needs no capability at all.
enum NamespaceAccess {
    case direct
    case broker(path: String)

    static let environmentKey = "VCPE_FORWARDER_BROKER"

    /// The broker named in the environment, else direct.
    static var current: NamespaceAccess {
        ProcessInfo.processInfo.environment[environmentKey].map { .broker(path: $0) } ?? .direct
    }

    func open(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int) throws -> ChainSockets {
        switch self {
        case .direct:
            return try ChainSockets.open(config, ringFrames: ringFrames, flowEntries: flowEntries)
        case .broker(let path):
            let (reply, fds) = try NamespaceBroker.ask(path, "open \(config.customer) \(ringFrames) \(flowEntries)")
            guard let ports = reply.ports, let hasCache = reply.cache, fds.count == 1 + ports.count + (hasCache ? 1 : 0) else {
                for fd in fds { close(fd) }
                throw NamespaceBroker.Failure(description: "namespace broker: open \(config.customer): \(reply.error ?? "a malformed answer")")
            }
            return ChainSockets(ring: fds[0],
                                ports: zip(ports, fds[1...]).map { PacketPort.Opened(interface: $0.interface, fd: $1, ifindex: $0.ifindex, mac: $0.mac) },
                                flows: hasCache ? fds.last : nil, problem: reply.problem)
        }
    }

    /// Takes the flow cache off the interfaces (the namespace may be gone: fine).
    func detachCache(namespace: String, interfaces: [Int32]) {
        switch self {
        case .direct:
            _ = try? NetworkNamespace.perform(in: namespace) { FlowCache.detach(interfaces: interfaces) }
        case .broker(let path):
            _ = try? NamespaceBroker.ask(path, "detach \(namespace) " + interfaces.map(String.init).joined(separator: " "))
        }
    }
}

/// The forwarder's supervisor, on the host with vcpe's privileges, makes what only they can
/// make for the forwarder's container: a chain's sockets and flow cache (`open CUSTOMER
/// FRAMES ENTRIES`, answered with one JSON line and the descriptors), and takes a cache off
/// (`detach NAMESPACE IFINDEX...`). It serves only chains apply configured and classifier
/// namespaces, so the container cannot reach anything else through it.
public struct NamespaceBroker: Sendable {
    let paths: ForwarderPaths

    public init(paths: ForwarderPaths) { self.paths = paths }

    struct Reply: Codable {
        var error: String?
        var ports: [Port]?
        var cache: Bool?
        var problem: String?
    }

    struct Port: Codable {
        var interface: String
        var ifindex: Int32
        var mac: [UInt8]
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Serves requests one at a time until the process ends.
    public func serve() throws -> Never {
        let listener = try UnixListener(path: paths.broker)
        while true {
            guard let client = try? listener.accept(timeout: .seconds(30)) else { continue }
            guard let request = try? client.readLine(receivingDescriptors: false).line else { continue }
            let (reply, fds) = answer(request)
            let line = String(decoding: (try? JSONEncoder().encode(reply)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
            try? client.write(line, passing: fds)
            for fd in fds { close(fd) }
        }
    }

    func answer(_ request: String) -> (Reply, [Int32]) {
        let words = request.split(separator: " ").map(String.init)
        switch (words.first, words.count) {
        case ("open", 4):
            guard let frames = Int(words[2]), let entries = Int(words[3]), frames > 0, entries > 0 else {
                return (Reply(error: "bad request: \(request)"), [])
            }
            do {
                let config = try paths.config(words[1])  // only what apply configured
                let s = try ChainSockets.open(config, ringFrames: frames, flowEntries: entries)
                let ports = s.ports.map { p in Port(interface: p.interface, ifindex: p.ifindex, mac: withUnsafeBytes(of: p.mac.bytes) { Array($0) }) }
                return (Reply(ports: ports, cache: s.flows != nil, problem: s.problem), s.descriptors)
            } catch {
                return (Reply(error: "\(error)"), [])
            }
        case ("detach", _) where words.count >= 2 && words[1].hasPrefix("vcpe-") && words[1].hasSuffix(".classifier"):
            let interfaces = words.dropFirst(2).compactMap { Int32($0) }
            NamespaceAccess.direct.detachCache(namespace: words[1], interfaces: interfaces)
            return (Reply(), [])
        default:
            return (Reply(error: "bad request: \(request)"), [])
        }
    }

    /// One request to the broker at `path`: its answer and the descriptors that came with it.
    static func ask(_ path: String, _ request: String) throws -> (Reply, [Int32]) {
        // The supervisor starts its broker beside the worker: wait for it a little.
        var connected: UnixStream?
        for attempt in 0..<250 {
            do { connected = try UnixStream(connectingTo: path, timeout: .seconds(10)); break } catch {
                guard attempt < 249, error.errno == .noSuchFileOrDirectory || error.errno == .connectionRefused else { throw error }
                usleep(20_000)
            }
        }
        let stream = connected!
        try stream.write(request + "\n")
        let (line, fds) = try stream.readLine(receivingDescriptors: true)
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(line.utf8)) else {
            for fd in fds { close(fd) }
            throw Failure(description: "namespace broker at \(path): no answer to \(request.split(separator: " ").first ?? "")")
        }
        return (reply, fds)
    }
}

extension PacketPort.Opened {
    init(interface: String, fd: Int32, ifindex: Int32, mac bytes: [UInt8]) {
        self.init(interface: interface, fd: fd, ifindex: ifindex,
                  mac: bytes.count == 6 ? MAC(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]) : .zero)
    }
}
