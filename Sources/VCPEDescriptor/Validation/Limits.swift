import VCPENet
/// Every count a descriptor is held to, in one place, so the layers below (the controller,
/// the datapath, the classifier compiler) can check against the same numbers.
/// Each is checked by `vcpe validate`, with a message naming the limit.
public enum Limits {
    /// Paths per chain. A steered chain's path `i` routes by table `100 + i` and policy rules
    /// of priority `1000 + i` and `1500 + i` (VCPEPolicy/DesiredState.swift). 64 keeps the
    /// tables at 100-163, clear of 253-255 (default, main, local), and the priorities inside
    /// the 1000-1999 vcpe owns without the two ranges meeting (that would allow up to 153).
    public static let paths = 64
    /// Services per chain: each one is a network namespace on the host.
    public static let services = 32
    /// Services on one path (each hop is a veth pair and a /31).
    public static let hopsPerPath = 16
    /// Transit links one chain needs (one /31 each from the host-wide 169.254.0.0/16 pool,
    /// 32768 /31s): 256 is under 1% of it, so at least 128 customers at the limit fit and no
    /// single customer can exhaust it. Counted as `Limits.transitLinks(of:)` does.
    public static let transitLinks = 256
    /// Rules of one firewall service.
    public static let firewallRules = 1024
    /// The router's port forwards.
    public static let portForwards = 1024
    /// Attached host interfaces on the LAN bridge.
    public static let attachInterfaces = 64
    /// WireGuard peers of the VPN service.
    public static let vpnPeers = 256
    /// Allowed IPs of one peer.
    public static let allowedIPsPerPeer = 256
    /// Allowed IPs of all peers together: each is a route in every path table plus main
    /// (up to 65 tables), so 1024 bounds the VPN's routes at 66560.
    public static let allowedIPsTotal = 1024
    /// Classifier rules as written in the descriptor.
    public static let classifierRules = 4096
    /// Classifier rules after expansion (`PacketMatch.packetRules`): the classifier
    /// compiler's own limit, so a valid descriptor always compiles.
    public static let classifierEngineRules = PacketMatch.maxEngineRules
    /// Diagnostics printed per file: the first ones, then one line saying how many more.
    public static let diagnosticsPerFile = 100
    /// Classifier shadowing is checked with at most this many element comparisons per file
    /// (a rule pair costs 1 + the products of its list lengths); past it, one warning says
    /// which rules were not checked.
    public static let shadowCheckComparisons = 2_000_000
    /// "Did you mean" hints: computed for the first few unknown names of a file only, for
    /// names and candidates of at most `suggestionNameLength` bytes and at most
    /// `suggestionCandidates` candidates, so the edit distance work is bounded.
    public static let suggestions = 20
    public static let suggestionNameLength = 32
    public static let suggestionCandidates = 64

    /// The transit links a chain's topology has: with a classifier (or several paths), one
    /// per hop of each path, from the classifier on; otherwise one between each two hops.
    public static func transitLinks(paths hopCounts: [Int], steered: Bool) -> Int {
        hopCounts.reduce(0) { $0 + (steered ? $1 : max(0, $1 - 1)) }
    }

    /// The engine rules a classifier rule expands to, computed without expanding; nil past
    /// `Int.max` (it is over every limit then).
    public static func engineRules(of match: ClassifierRule.Match) -> Int? {
        let s4 = match.src.count { $0.family == .v4 }, s6 = match.src.count - s4
        let d4 = match.dst.count { $0.family == .v4 }, d6 = match.dst.count - d4
        let addressPairs: Int?
        switch (match.src.isEmpty, match.dst.isEmpty) {
        case (true, true): addressPairs = 1
        case (true, false): addressPairs = match.dst.count
        case (false, true): addressPairs = match.src.count
        case (false, false):
            let (p4, o4) = s4.multipliedReportingOverflow(by: d4)
            let (p6, o6) = s6.multipliedReportingOverflow(by: d6)
            let (sum, o) = p4.addingReportingOverflow(p6)
            addressPairs = o4 || o6 || o ? nil : sum
        }
        guard var n = addressPairs else { return nil }
        for count in [match.sport.count, match.dport.count] {
            let (m, o) = n.multipliedReportingOverflow(by: max(1, count))
            if o { return nil }
            n = m
        }
        return n
    }
}
