import Foundation
import VCPENet
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// What a steered chain's data path holds of its namespace: sockets made in there (a packet
/// socket belongs to the namespace it was made in, whoever holds it later) and the flow
/// map. Making them takes the privileges (setns, raw sockets, loading and attaching eBPF);
/// holding them takes none.
package struct ChainSockets {
    package var ring: Int32
    package var ports: [PacketPort.Opened]
    package var flows: Int32?
    /// Why the chain has no flow cache, if it wanted one.
    package var problem: String?

    package init(ring: Int32, ports: [PacketPort.Opened], flows: Int32?, problem: String?) {
        self.ring = ring
        self.ports = ports
        self.flows = flows
        self.problem = problem
    }

    package var descriptors: [Int32] { [ring] + ports.map(\.fd) + (flows.map { [$0] } ?? []) }

    /// Inside the chain's namespace: the ports, the flow cache loaded and attached (or
    /// taken off if the chain has none), the ring with the cache's miss filter.
    package static func open(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int) throws -> ChainSockets {
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

/// How the forwarder reaches chains' namespaces: itself (run as root, as the benchmarks do:
/// `DirectAccess`) or through the broker its supervisor runs on the host (VCPEForwarder's
/// `BrokerAccess`), so that the forwarder's container needs no capability at all.
package protocol NamespaceAccess: Sendable {
    func open(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int) throws -> ChainSockets
    /// Takes a customer's flow cache off its classifier namespace's interfaces (the
    /// namespace may be gone: fine) and unpins its map.
    func removeCache(customer: String, namespace: String, interfaces: [Int32])
}

package struct DirectAccess: NamespaceAccess {
    package init() {}

    package func open(_ config: SteeringConfig, ringFrames: Int, flowEntries: Int) throws -> ChainSockets {
        try ChainSockets.open(config, ringFrames: ringFrames, flowEntries: flowEntries)
    }

    package func removeCache(customer: String, namespace: String, interfaces: [Int32]) {
        _ = try? NetworkNamespace.perform(in: namespace) { FlowCache.detach(interfaces: interfaces) }
        FlowCache.unpin(customer)
    }
}

extension PacketPort.Opened {
    package init(interface: String, fd: Int32, ifindex: Int32, mac bytes: [UInt8]) {
        self.init(interface: interface, fd: fd, ifindex: ifindex,
                  mac: bytes.count == 6 ? MAC(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]) : .zero)
    }
}
