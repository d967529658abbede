import VCPENet
/// Reads and validates one descriptor. Never throws and never stops at the first problem:
/// every error of the file is in the result.
public enum ChainDecoder {
    /// Larger files are refused before parsing: a descriptor is a few kilobytes.
    public static let maxFileSize = 1 << 20

    public static func validate(_ bytes: [UInt8], transitPool: IPPrefix = KernelNames.defaultTransitPool) -> ValidationResult {
        guard bytes.count <= maxFileSize else {
            return ValidationResult(chain: nil, diagnostics: [Diagnostic(.error, .root, .start,
                "the file is \(bytes.count) bytes; a descriptor may be at most \(maxFileSize) bytes (1 MiB)")])
        }
        let parsed: JSONParser.Result
        do {
            parsed = try JSONParser.parse(bytes)
        } catch {
            return ValidationResult(chain: nil, diagnostics: [Diagnostic(.error, error.pointer, error.location, "invalid JSON: \(error.message)")])
        }
        let sink = DiagnosticSink()
        for d in parsed.duplicateKeys {
            sink.add(Diagnostic(.error, d.pointer, d.location, "duplicate key \"\(d.pointer.tokens.last ?? "")\" (first at \(d.first)); each key may appear once"))
        }
        var reader = ChainReader(sink: sink, transitPool: transitPool)
        let root = Value(node: parsed.root, pointer: .root, sink: sink)
        let chain = reader.read(root)
        let diagnostics = sink.items.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        var result = ValidationResult(chain: sink.errorCount == 0 ? chain : nil, diagnostics: capped(diagnostics))
        for p in [JSONPointer(["customer"]), JSONPointer(["wan", "address"])] {
            if let node = parsed.root.node(at: p) { result.places[p] = node.location }
        }
        return result
    }

    /// The first `Limits.diagnosticsPerFile` diagnostics (in file order), then one line for
    /// the rest, at the first one left out: a broken generated file is not a flood.
    static func capped(_ all: [Diagnostic]) -> [Diagnostic] {
        guard all.count > Limits.diagnosticsPerFile else { return all }
        let rest = all[Limits.diagnosticsPerFile...]
        let errors = rest.count { $0.severity == .error }
        let first = rest[rest.startIndex]
        let more = Diagnostic(errors > 0 ? .error : .warning, first.pointer, first.location,
            "... \(rest.count) more (\(errors) errors, \(rest.count - errors) warnings) not shown: at most \(Limits.diagnosticsPerFile) are reported per file")
        return Array(all.prefix(Limits.diagnosticsPerFile)) + [more]
    }

    /// Validates several files as `vcpe validate` and `vcpe apply` see them: each on its own,
    /// then together (`crossCheck`). The cross-file errors go to the file they are found in.
    public static func validate(files: [(name: String, bytes: [UInt8])]) -> [ValidationResult] {
        var results = files.map { validate($0.bytes) }
        let extra = crossCheck(zip(files, results).map { (file: $0.name, result: $1) })
        for (i, more) in extra.enumerated() where !more.isEmpty {
            results[i].diagnostics += more
            results[i].chain = nil
        }
        return results
    }

    /// What no single file can show: two files of the same customer (the second would take
    /// the first one's kernel objects), two customers with the same WAN address on the same
    /// segment (both would answer ARP for it). Only valid results are compared; the error
    /// goes to the later file and names the earlier one. One list per file, in order.
    public static func crossCheck(_ files: [(file: String, result: ValidationResult)]) -> [[Diagnostic]] {
        var out = [[Diagnostic]](repeating: [], count: files.count)
        var customers: [String: Int] = [:]
        var wanAddresses: [WANKey: Int] = [:]
        for (i, f) in files.enumerated() {
            guard let chain = f.result.chain else { continue }
            func place(_ tokens: [String]) -> (JSONPointer, SourceLocation) {
                let p = JSONPointer(tokens)
                return (p, f.result.places[p] ?? .start)
            }
            if let j = customers[chain.customer] {
                let (p, loc) = place(["customer"])
                out[i].append(Diagnostic(.error, p, loc,
                    "customer \"\(chain.customer)\" is described in \(files[j].file) already; one file per customer"))
            } else {
                customers[chain.customer] = i
            }
            let key = WANKey(address: chain.wan.address.address, segment: chain.wan.segment)
            if let j = wanAddresses[key], let other = files[j].result.chain, other.customer != chain.customer {
                let (p, loc) = place(["wan", "address"])
                out[i].append(Diagnostic(.error, p, loc,
                    "WAN address \(key.address) on segment \"\(key.segment)\" is customer \"\(other.customer)\"'s already (\(files[j].file)); two chains cannot own one address"))
            } else if wanAddresses[key] == nil {
                wanAddresses[key] = i
            }
        }
        return out
    }

    struct WANKey: Hashable {
        var address: IPAddress
        var segment: String
    }

    public static func validate(_ text: String) -> ValidationResult { validate(Array(text.utf8)) }
}

/// The walk over one document. Sections live in extensions, one file each.
struct ChainReader {
    let sink: DiagnosticSink
    let transitPool: IPPrefix
    /// Addresses the chain claims, for overlap checks across sections.
    var claimed: [(prefix: IPPrefix, what: String, at: Value, vpn: Bool)] = []

    init(sink: DiagnosticSink, transitPool: IPPrefix) {
        self.sink = sink
        self.transitPool = transitPool
    }

    mutating func read(_ root: Value) -> Chain? {
        guard let o = root.object(keys: ["apiVersion", "customer", "lan", "wan", "services", "paths", "classifier", "description"]) else {
            return nil
        }
        if let v = o.required("apiVersion", "\"\(Chain.apiVersion)\""), let s = v.string(), s != Chain.apiVersion {
            v.error("expected \"\(Chain.apiVersion)\", got \"\(s)\"")
        }
        _ = o["description"]?.string()
        var customer: String?
        if let v = o.required("customer", "the customer's name"), let s = v.string() {
            if v.name(s, maxLength: KernelNames.maxCustomerName, what: "a customer name") { customer = s }
        }
        let lan = o.required("lan", "the customer LAN: subnet, gateway, attach").flatMap { readLAN($0) }
        let wan = o.required("wan", "the provider side: address, gateway, segment").flatMap { readWAN($0) }
        let servicesV = o.required("services", "the chain's services by name")
        let services = servicesV.flatMap { readServices($0, lan: lan) } ?? []
        // Paths are checked against every service the file defines, valid or not, so that
        // one broken service does not also break every path that names it.
        let defined = (servicesV?.map() ?? []).map { (name: $0.key, type: $0.value.node.typeField) }
        let pathsV = o.required("paths", "the service paths by name")
        let paths = pathsV.flatMap { readPaths($0, defined: defined) } ?? []
        var classifier: Classifier?
        if let v = o["classifier"] {
            classifier = readClassifier(v, paths: paths)
        } else if paths.count > 1, let pv = o["paths"] {
            pv.error("a chain with \(paths.count) paths needs a \"classifier\" to choose between them")
        }
        // Each transit link takes a /31 of the host-wide pool: one customer must not take it all.
        let steered = o["classifier"] != nil || paths.count > 1
        let transit = Limits.transitLinks(paths: paths.map(\.hops.count), steered: steered)
        if let pathsV, transit > Limits.transitLinks {
            pathsV.error("at most \(Limits.transitLinks) transit links per customer (got \(transit): one per hop of each path\(steered ? ", from the classifier on" : "")); each takes a /31 of the host's transit pool \(transitPool)")
        }
        checkOverlaps()
        let valid = Set(services.map(\.name))
        guard let customer, let lan, let wan, !services.isEmpty, !paths.isEmpty,
              paths.allSatisfy({ $0.hops.allSatisfy(valid.contains) }) else { return nil }
        return Chain(customer: customer, lan: lan, wan: wan, services: services, paths: paths, classifier: classifier)
    }

    // MARK: - LAN and WAN

    mutating func readLAN(_ v: Value) -> LAN? {
        guard let o = v.object(keys: ["subnet", "gateway", "attach"]) else { return nil }
        let subnetV = o.required("subnet", "the LAN's network, like \"192.168.1.0/24\"")
        let subnet = subnetV.flatMap { network($0, family: .v4) }
        let gateway = o.required("gateway", "the LAN address of the chain, like \"192.168.1.1\"").flatMap { a in
            address(a, family: .v4).flatMap { addr -> IPAddress? in
                guard let subnet else { return addr }
                return hostAddress(a, addr, in: subnet, what: "the gateway") ? addr : nil
            }
        }
        var attach: [String] = []
        var attached = Set<String>()
        if let a = o["attach"], let items = a.array() {
            if items.count > Limits.attachInterfaces {
                a.error("at most \(Limits.attachInterfaces) attached interfaces (got \(items.count))")
            }
            for item in items {
                guard let s = item.string("a host interface name") else { continue }
                if !KernelNames.isValidInterfaceName(s) {
                    item.error("expected a Linux interface name (1-15 bytes, no '/', ':' or white space), got \"\(s)\"")
                } else if let why = KernelNames.reservedHostInterface(s) {
                    item.error("\"\(s)\" cannot be attached: \(why)")
                } else if !attached.insert(s).inserted {
                    item.error("interface \"\(s)\" is listed twice")
                } else {
                    attach.append(s)
                }
            }
        }
        if let subnet, let subnetV { claimed.append((subnet, "the LAN subnet", subnetV, false)) }
        guard let subnet, let gateway else { return nil }
        return LAN(subnet: subnet, gateway: gateway, attach: attach)
    }

    mutating func readWAN(_ v: Value) -> WAN? {
        guard let o = v.object(keys: ["address", "gateway", "segment"]) else { return nil }
        let addrV = o.required("address", "the router's WAN address with prefix length, like \"203.0.113.10/24\"")
        let addr = addrV.flatMap { interfaceAddress($0, family: .v4) }
        let gateway = o.required("gateway", "the provider's gateway, like \"203.0.113.1\"").flatMap { g in
            address(g, family: .v4).flatMap { a -> IPAddress? in
                guard let addr else { return a }
                guard hostAddress(g, a, in: addr.canonical, what: "the gateway") else { return nil }
                if a == addr.address { g.error("expected the provider's gateway; \(a) is the WAN address itself") }
                return a
            }
        }
        var segment: String?
        if let s = o.required("segment", "the host bridge of the provider side"), let name = s.string() {
            if !KernelNames.isValidInterfaceName(name) {
                s.error("expected a Linux interface name (1-15 bytes, no '/', ':' or white space), got \"\(name)\"")
            } else if let why = KernelNames.reservedHostInterface(name) {
                s.error("\"\(name)\" cannot be the WAN segment: \(why)")
            } else {
                segment = name
            }
        }
        if let addr, let addrV { claimed.append((addr.canonical, "the WAN network", addrV, false)) }
        guard let addr, let gateway, let segment else { return nil }
        return WAN(address: addr, gateway: gateway, segment: segment)
    }

    // MARK: - Paths

    func readPaths(_ v: Value, defined: [(name: String, type: String?)]) -> [Path]? {
        guard let entries = v.map() else { return nil }
        if entries.isEmpty { v.error("expected at least one path") }
        if entries.count > Limits.paths {
            v.error("at most \(Limits.paths) paths (got \(entries.count)): each path takes a routing table and policy rules in its services")
        }
        let names = defined.map(\.name)
        var types: [String: String] = [:]
        for d in defined where types[d.name] == nil { types[d.name] = d.type ?? "service" }
        func type(_ s: String) -> String { types[s] ?? "service" }
        var paths: [Path] = []
        var onAPath = Set<String>()
        for (name, _, pv) in entries {
            guard pv.name(name, maxLength: KernelNames.maxPathName, what: "a path name") else { continue }
            guard let items = pv.array() else { continue }
            if items.isEmpty { pv.error("expected at least one service; a path ends at the router"); continue }
            if items.count > Limits.hopsPerPath {
                pv.error("at most \(Limits.hopsPerPath) services per path (got \(items.count))")
            }
            var hops: [String] = []
            var inPath = Set<String>()
            var ok = true
            for item in items {
                guard let s = item.string("a service name") else { ok = false; continue }
                if types[s] == nil {
                    item.error("no service named \"\(s)\"\(sink.suggestion(for: s, among: names)); defined services: \(listing(names))")
                    ok = false
                } else if !inPath.insert(s).inserted {
                    item.error("service \"\(s)\" appears twice in this path")
                    ok = false
                }
                hops.append(s)
            }
            if ok, let last = hops.last, type(last) != "router" {
                items.last!.error("expected the path to end at the router; \"\(last)\" is a \(type(last))")
                ok = false
            }
            if ok, let router = hops.dropLast().first(where: { type($0) == "router" }) {
                pv.error("the router \"\(router)\" must be the last service of the path")
                ok = false
            }
            if ok {
                paths.append(Path(name: name, hops: hops))
                onAPath.formUnion(hops)
            }
        }
        for s in names where !onAPath.contains(s) && paths.count == entries.count {
            sink.add(Diagnostic(.warning, JSONPointer(["services", s]), v.node.location,
                                "service \"\(s)\" is on no path: no traffic will cross it"))
        }
        return paths
    }

    // MARK: - Addresses

    func address(_ v: Value, family: IPAddress.Family?) -> IPAddress? {
        guard let s = v.string("an IP address") else { return nil }
        guard let a = IPAddress(s) else {
            v.error("expected an IP address like \"192.0.2.1\", got \"\(s)\"")
            return nil
        }
        if let family, a.family != family {
            v.error("expected an IPv\(family == .v4 ? 4 : 6) address, got \"\(s)\"")
            return nil
        }
        return a
    }

    /// A network in canonical form (no host bits set).
    func network(_ v: Value, family: IPAddress.Family? = nil) -> IPPrefix? {
        guard let s = v.string("a network in CIDR form") else { return nil }
        guard let p = IPPrefix(s, allowBare: family == nil) else {
            v.error("expected a network in CIDR form like \"192.168.1.0/24\", got \"\(s)\"")
            return nil
        }
        if let family, p.family != family {
            v.error("expected an IPv\(family == .v4 ? 4 : 6) network, got \"\(s)\"")
            return nil
        }
        guard p.isCanonical else {
            v.error("expected a canonical network: \"\(s)\" has host bits set; did you mean \"\(p.canonical)\"?")
            return nil
        }
        return p
    }

    /// An address with its prefix length: host bits are the host's, so they must not be the
    /// network or broadcast address.
    func interfaceAddress(_ v: Value, family: IPAddress.Family) -> IPPrefix? {
        guard let s = v.string("an address with prefix length") else { return nil }
        guard let p = IPPrefix(s), p.family == family else {
            v.error("expected an IPv\(family == .v4 ? 4 : 6) address with prefix length like \"203.0.113.10/24\", got \"\(s)\"")
            return nil
        }
        guard hostAddress(v, p.address, in: p.canonical, what: "the address") else { return nil }
        return p
    }

    func hostAddress(_ v: Value, _ a: IPAddress, in net: IPPrefix, what: String) -> Bool {
        guard net.contains(a) else {
            v.error("expected \(what) inside \(net), got \(a)")
            return false
        }
        if a.family == .v4, net.length <= 30, a == net.network || a == net.last {
            v.error("expected a host address; \(a) is the \(a == net.network ? "network" : "broadcast") address of \(net)")
            return false
        }
        return true
    }

    /// Port or range, or a list of them: `22`, `"137-139"`, `[80, "8000-8080"]`.
    func ports(_ v: Value) -> [PortRange]? {
        let items = v.oneOrMany()
        if case .array = v.node.kind, items.isEmpty { v.error("expected at least one port"); return nil }
        var out: [PortRange] = []
        for item in items {
            guard let r = portRange(item) else { return nil }
            out.append(r)
        }
        return out
    }

    func portRange(_ v: Value) -> PortRange? {
        switch v.node.kind {
        case .number:
            return v.integer(in: 0...65535, "a port 0-65535").map { PortRange(UInt16($0)) }
        case .string(let s):
            let parts = s.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            let nums = parts.compactMap { asciiDecimal(String(decoding: $0, as: UTF8.self), maxDigits: 5) }
            guard (1...2).contains(parts.count), nums.count == parts.count, let lo = nums.first, let hi = nums.last else {
                v.error("expected a port or a range \"low-high\", got \"\(s)\"")
                return nil
            }
            guard lo <= 65535, hi <= 65535 else {
                v.error("expected ports within 0-65535, got \"\(s)\"")
                return nil
            }
            guard lo <= hi else {
                v.error("expected an ordered range low-high, got \"\(s)\"; did you mean \"\(hi)-\(lo)\"?")
                return nil
            }
            return PortRange(UInt16(lo), UInt16(hi))
        default:
            v.error("expected a port number or a range \"low-high\", got \(v.node.shortText)")
            return nil
        }
    }

    /// CIDR or a list of them; a bare address means the single host.
    func prefixes(_ v: Value) -> [IPPrefix]? {
        let items = v.oneOrMany()
        if case .array = v.node.kind, items.isEmpty { v.error("expected at least one network"); return nil }
        var out: [IPPrefix] = []
        for item in items {
            guard let p = network(item) else { return nil }
            out.append(p)
        }
        return out
    }

    // MARK: - Overlaps

    /// Addresses inside one customer must not overlap; none may fall in the transit pool.
    /// The tunnel address may sit inside a peer's allowed IPs: that is usual WireGuard practice.
    /// Sorted and swept (`overlappingPrefixes`), not compared pairwise: a VPN may claim
    /// a thousand allowed IPs. Each claim is reported once, as the later of a pair.
    func checkOverlaps() {
        for (i, j) in overlappingPrefixes(claimed.map { ($0.prefix, $0.vpn) }) {
            let a = claimed[j], b = claimed[i]
            b.at.error("\(b.what) \(b.prefix) overlaps \(a.what) \(a.prefix) at \(a.at.pointer)")
        }
        for a in claimed {
            if a.prefix.overlaps(transitPool) {
                a.at.error("\(a.what) \(a.prefix) overlaps vcpe's transit pool \(transitPool); choose other addresses or another pool")
            }
        }
    }
}
