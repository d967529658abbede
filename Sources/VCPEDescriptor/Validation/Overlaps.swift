import VCPENet
/// Overlapping prefixes found by sorting and one sweep, not by comparing every pair.
///
/// Two prefixes overlap only when one contains the other, so in (family, network, length)
/// order the prefixes still open at a point form a nested chain: at most 33 (IPv4) or 129
/// (IPv6) distinct ones. Equal prefixes share one entry of that chain, which keeps the
/// smallest index of each kind. The work is O(n log n + n * 129) for n prefixes.
///
/// `exclusive` items do not conflict with each other (a VPN's tunnel network and its peers'
/// allowed IPs may nest), only with the others. Each item is reported at most once, as the
/// later (higher index) of an overlapping pair, with one earlier or later partner; every
/// item that overlaps anything it conflicts with is in a reported pair.
func overlappingPrefixes(_ items: [(prefix: IPPrefix, exclusive: Bool)]) -> [(item: Int, other: Int)] {
    struct Open {
        var network: IPAddress
        var last: IPAddress
        var length: Int
        var firstAny: Int
        var firstPlain: Int?
    }
    let order = items.indices.sorted { a, b in
        let p = items[a].prefix, q = items[b].prefix
        return (p.network, p.length, a) < (q.network, q.length, b)
    }
    var stack: [Open] = []
    var reported = [Bool](repeating: false, count: items.count)
    var out: [(item: Int, other: Int)] = []
    func report(_ i: Int, _ j: Int) {
        let (later, earlier) = i > j ? (i, j) : (j, i)
        if !reported[later] {
            reported[later] = true
            out.append((later, earlier))
        } else if !reported[earlier], j > i {
            // The partner was reported already; this one still needs its own line.
            reported[i] = true
            out.append((i, j))
        }
    }
    for i in order {
        let p = items[i].prefix
        let network = p.network
        while let top = stack.last, !(top.network.family == network.family && top.network <= network && network <= top.last) {
            stack.removeLast()
        }
        // Every open entry contains this prefix; the innermost one it conflicts with is its partner.
        for entry in stack.reversed() {
            if let j = items[i].exclusive ? entry.firstPlain : entry.firstAny {
                report(i, j)
                break
            }
        }
        if let top = stack.last, top.network == network, top.length == p.length {
            if !items[i].exclusive, stack[stack.count - 1].firstPlain == nil { stack[stack.count - 1].firstPlain = i }
        } else {
            stack.append(Open(network: network, last: p.last, length: p.length, firstAny: i,
                              firstPlain: items[i].exclusive ? nil : i))
        }
    }
    return out.sorted { $0.item < $1.item }
}

/// Overlapping port ranges, by sorting and one sweep: each range that overlaps an earlier
/// listed one (in list order) is reported once, with one such partner. O(n log n).
func overlappingPortRanges(_ ranges: [PortRange]) -> [(item: Int, other: Int)] {
    // For each range, one overlapping range with a smaller index: sweep in `lo` order keeping
    // the ranges seen so far by `hi`; the smallest-index range reaching past `lo` is enough.
    let order = ranges.indices.sorted { (ranges[$0].lo, $0) < (ranges[$1].lo, $1) }
    var out: [(item: Int, other: Int)] = []
    var reported = Set<Int>()
    // The open range reaching furthest, and the earliest-listed open range: either pairs.
    var furthest: Int?
    for i in order {
        let r = ranges[i]
        if let f = furthest, ranges[f].hi >= r.lo {
            let (later, earlier) = f > i ? (f, i) : (i, f)
            if reported.insert(later).inserted { out.append((later, earlier)) }
            else if f > i, reported.insert(i).inserted { out.append((i, f)) }
            if r.hi > ranges[f].hi { furthest = i }
        } else {
            furthest = i
        }
    }
    return out.sorted { $0.item < $1.item }
}
