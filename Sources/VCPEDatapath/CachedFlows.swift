import CDatapath
import VCPEClassifier

/// The control thread's side of a chain's flow cache: what the kernel counted, flows that
/// idled out, flows whose decision a rule change altered. The forwarding thread only adds
/// entries (Forwarder.forward); everything here runs under the service's lock.
extension SteeredChain {
    struct FlowTotals {
        var flows = 0
        var packets: UInt64 = 0
        /// Per counter of the table in service.
        var rules: [UInt64]
        /// Per path: packets and bytes out, packets and bytes back (as `pathCounters`).
        var paths: [UInt64]
    }

    /// What the cached flows have counted so far (zeros without a cache).
    func flowTotals() -> FlowTotals {
        let table = controlReader.withCurrent { $0 }
        var totals = FlowTotals(rules: [UInt64](repeating: 0, count: table.counterNames.count),
                                paths: [UInt64](repeating: 0, count: config.paths.count * Self.perPath))
        guard let cache else { return totals }
        for (_, value) in cache.entries() {
            totals.flows += 1
            totals.packets &+= value.packets
            add(value, to: &totals.rules, &totals.paths)
        }
        return totals
    }

    /// Counts `value` where it belongs: its rule (from the LAN) and its path, out or back.
    private func add(_ value: vc_flow_value, to rules: inout [UInt64], _ paths: inout [UInt64]) {
        let back = value.rule == VC_FLOW_RETURN
        if !back, Int(value.rule) < rules.count { rules[Int(value.rule)] &+= value.packets }
        if Int(value.path) < config.paths.count {
            let c = Int(value.path) * Self.perPath + (back ? 2 : 0)
            paths[c] &+= value.packets
            paths[c + 1] &+= value.bytes
        }
    }

    /// Keeps the counts of flows leaving the cache: into `table`'s carried rule counts.
    private func carry(_ value: vc_flow_value, into table: SteeringTable) {
        carriedCached &+= value.packets
        add(value, to: &table.carried, &carriedPaths)
    }

    /// Removes flows idle for `idle` ns (the LRU map evicts on its own only when full).
    package func sweepFlows(now: UInt64, idle: UInt64) {
        guard let cache else { return }
        let table = controlReader.withCurrent { $0 }
        for (key, value) in cache.entries() where now > value.last_seen && now - value.last_seen > idle {
            cache.delete(key)
            carry(value, into: table)
        }
    }

    /// Brings cached flows in line with `table`, the rules now in service. Flows on links
    /// that no longer exist go. A flow from the LAN whose path (or drop) changes goes, with
    /// its return direction, so its next packet is classified afresh; one whose rule alone
    /// changed is recounted under it; the others are left alone. `previous` is the table the
    /// entries were decided by (nil after a restart: their counts are not carried).
    func revalidateFlows(with table: SteeringTable, previous: SteeringTable?) {
        guard let cache else { return }
        let indexes = Set(ports.map { UInt32(bitPattern: $0.ifindex) })
        let macs = Dictionary(ports.map { (UInt32(bitPattern: $0.ifindex), $0.mac) }, uniquingKeysWith: { a, _ in a })
        let lan = UInt32(bitPattern: self.lan.ifindex)
        var forward: [(key: vc_flow_key, value: vc_flow_value)] = []
        for entry in cache.entries() {
            // Interface indexes repeat in a namespace made anew; its interfaces' addresses do not.
            let source = withUnsafeBytes(of: entry.value.macs) { MAC(at: $0.baseAddress! + 6) }
            if !indexes.contains(entry.key.ifindex) || (entry.value.ifindex != 0 && macs[entry.value.ifindex] != source) {
                cache.delete(entry.key)
                if let previous { carry(entry.value, into: previous) }
            } else if entry.key.ifindex == lan && entry.value.generation != table.generation {
                forward.append(entry)
            }
        }
        let decisions = table.decide(forward.map(\.key))
        for ((key, value), decision) in zip(forward, decisions) {
            let was: Int32 = value.ifindex == 0 ? SteeringTable.drop : Int32(value.path)
            let sameRule = Int(value.rule) == decision.counter
                && (previous.map { Int(value.rule) < $0.counterNames.count && $0.counterNames[Int(value.rule)] == table.counterNames[decision.counter] } ?? true)
            if was == decision.action && sameRule { continue }
            // The entry as it is now: the kernel went on counting since the walk read it,
            // and what is carried must be what the update or delete below takes away.
            let current = cache.lookup(key) ?? value
            if let previous { carry(current, into: previous) }
            if was == decision.action {
                var recounted = current
                recounted.rule = UInt16(decision.counter)
                recounted.generation = table.generation
                recounted.packets = 0
                recounted.bytes = 0
                cache.update(key, recounted)
                continue
            }
            cache.delete(key)
            if was != SteeringTable.drop, Int(was) < paths.count {
                let back = HeaderParser.reversed(key, ifindex: paths[Int(was)].ifindex)
                if let gone = cache.lookup(back) {
                    cache.delete(back)
                    if let previous { carry(gone, into: previous) }
                }
            }
        }
    }
}
