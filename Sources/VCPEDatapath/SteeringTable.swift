import CDatapath
import VCPEClassifier
import VCPENet

/// One customer's rules compiled for the data path: what each engine rule decides, and
/// the hit counters of the descriptor's rules. Immutable but for the counters; a rule
/// change builds a new table and swaps it in (see `Live`).
public final class SteeringTable: @unchecked Sendable {
    public static let drop: Int32 = -1

    let classifier: CompiledClassifier
    /// Per engine rule: the path index, or `drop`.
    let actions: UnsafeMutablePointer<Int32>
    /// Per engine rule: the descriptor rule it came from.
    let ruleOf: UnsafeMutablePointer<Int32>
    let defaultPath: Int32
    /// Descriptor rule names, then "default".
    public let counterNames: [String]
    /// Hits per descriptor rule, the default last. Written by the forwarding thread only.
    let hits: Counters
    /// Counts carried over from the tables this one replaced (by rule name), and those of
    /// cached flows that expired or were revalidated. The control thread's alone.
    var carried: [UInt64]
    /// Which table of its chain this is (1, 2, ...): cached flows name the table that decided them.
    var generation: UInt32 = 1

    public struct UnknownPath: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "no path named \"\(name)\" on the classifier's links" }
    }

    public init(_ config: SteeringConfig) throws {
        let names = config.paths.map(\.name)
        func index(_ path: String) throws -> Int32 {
            guard let i = names.firstIndex(of: path) else { throw UnknownPath(name: path) }
            return Int32(i)
        }
        var packetRules: [PacketRule] = []
        var actionList: [Int32] = [], ruleList: [Int32] = []
        for (r, rule) in config.rules.enumerated() {
            let action: Int32
            switch rule.target {
            case .drop: action = Self.drop
            case .path(let p): action = try index(p)
            }
            for pr in rule.match.packetRules {
                packetRules.append(pr)
                actionList.append(action)
                ruleList.append(Int32(r))
            }
        }
        classifier = try CompiledClassifier(packetRules)
        defaultPath = try index(config.defaultPath)
        actions = .allocate(capacity: max(1, actionList.count))
        actions.initialize(from: actionList, count: actionList.count)
        ruleOf = .allocate(capacity: max(1, ruleList.count))
        ruleOf.initialize(from: ruleList, count: ruleList.count)
        counterNames = config.rules.map(\.name) + ["default"]
        hits = Counters(count: counterNames.count)
        carried = [UInt64](repeating: 0, count: counterNames.count)
    }

    deinit {
        actions.deallocate()
        ruleOf.deallocate()
    }

    /// What the forwarder decides for each key, without counting: a path index or `drop`.
    /// For tests and tools; the data path classifies batches of rows instead.
    public func decisions(_ keys: [FlowKey]) -> [Int32] {
        classifier.classify(keys).map { r in r.map { actions[$0] } ?? defaultPath }
    }

    /// What this table decides for cached flows' keys (from the LAN): the counter index and
    /// the path or `drop`. The control thread's (it allocates).
    func decide(_ keys: [vc_flow_key]) -> [(counter: Int, action: Int32)] {
        let flows = keys.map { k in
            let ports = k.proto == 6 || k.proto == 17
            return FlowKey(src: IPAddress(v4: UInt32(bigEndian: k.src)), dst: IPAddress(v4: UInt32(bigEndian: k.dst)), proto: k.proto,
                           sport: ports ? UInt16(bigEndian: k.sport) : 0, dport: ports ? UInt16(bigEndian: k.dport) : 0, dscp: k.dscp)
        }
        return classifier.classify(flows).map { r in
            guard let r else { return (counterNames.count - 1, defaultPath) }
            return (Int(ruleOf[r]), actions[r])
        }
    }

    /// Rule name -> hits, including what the replaced tables counted.
    public var ruleHits: [(name: String, hits: UInt64)] {
        counterNames.indices.map { (counterNames[$0], carried[$0] + hits.value($0)) }
    }

    /// Takes over the counts of `old` (the table this one replaced, out of use).
    func carryCounts(from old: SteeringTable) {
        let previous = Dictionary(old.ruleHits.map { ($0.name, $0.hits) }, uniquingKeysWith: +)
        for (i, name) in counterNames.enumerated() { carried[i] = previous[name] ?? 0 }
    }
}
