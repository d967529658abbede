import CNetlink
import VCPENet
import VCPESystem

/// A policy routing rule: traffic that matches looks up `table`.
public struct RuleInfo: Sendable, Hashable, CustomStringConvertible {
    public var priority: UInt32
    public var table: UInt32
    public var inputInterface: String?
    public var fwmark: UInt32?
    public var fwmask: UInt32?
    public var source: IPPrefix?

    public init(priority: UInt32, table: UInt32, inputInterface: String? = nil, fwmark: UInt32? = nil,
                fwmask: UInt32? = nil, source: IPPrefix? = nil) {
        self.priority = priority
        self.table = table
        self.inputInterface = inputInterface
        self.fwmark = fwmark
        self.fwmask = fwmask
        self.source = source
    }

    public var description: String {
        "\(priority): " + (source.map { "from \($0) " } ?? "") + (inputInterface.map { "iif \($0) " } ?? "")
            + (fwmark.map { "fwmark \($0)" + (fwmask.map { "/\($0)" } ?? "") + " " } ?? "") + "lookup \(table)"
    }
}

extension RouteSocket {
    public func rules(family: IPAddress.Family = .v4) throws(KernelError) -> [RuleInfo] {
        try dump("rules", { rtnl_rule_alloc_cache(sock, family == .v4 ? AF_INET : AF_INET6, $0) }) { r in
            guard rtnl_rule_get_action(r) == UInt8(FR_ACT_TO_TBL) else { return nil }
            let mark = rtnl_rule_get_mark(r), mask = rtnl_rule_get_mask(r)
            let src = IPPrefix(nlAddress: rtnl_rule_get_src(r))
            return RuleInfo(priority: rtnl_rule_get_prio(r), table: rtnl_rule_get_table(r),
                            inputInterface: rtnl_rule_get_iif(r).map { String(cString: $0) },
                            fwmark: mark == 0 ? nil : mark, fwmask: mark == 0 || mask == UInt32.max ? nil : mask,
                            source: src.flatMap { $0.length == 0 ? nil : $0 })
        }
    }

    public func addRule(_ rule: RuleInfo, family: IPAddress.Family = .v4) throws(KernelError) {
        try withRule(rule, family: family) { r throws(KernelError) in
            try call("add rule", rule.description) { rtnl_rule_add(sock, r, NLM_F_CREATE | NLM_F_EXCL) }
        }
    }

    public func ensureRule(_ rule: RuleInfo, family: IPAddress.Family = .v4) throws -> EnsureResult {
        let have = try rules(family: family).filter { $0.priority == rule.priority }
        if have.contains(rule) { return .unchanged }
        if let other = have.first(where: { $0.inputInterface == rule.inputInterface && $0.fwmark == rule.fwmark && $0.source == rule.source }) {
            throw MismatchError(object: "rule \(rule.priority) \(place)", differences: ["it is \(other)"])
        }
        try addRule(rule, family: family)
        return .created
    }

    /// Deletes the rule; one that is gone is success.
    public func removeRule(_ rule: RuleInfo, family: IPAddress.Family = .v4) throws(KernelError) {
        do {
            try withRule(rule, family: family) { r throws(KernelError) in
                try call("delete rule", rule.description) { rtnl_rule_delete(sock, r, 0) }
            }
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
    }

    private func withRule(_ rule: RuleInfo, family: IPAddress.Family, _ body: (OpaquePointer) throws(KernelError) -> Void) throws(KernelError) {
        let r = rtnl_rule_alloc()!
        defer { rtnl_rule_put(r) }
        rtnl_rule_set_family(r, family == .v4 ? AF_INET : AF_INET6)
        rtnl_rule_set_prio(r, rule.priority)
        rtnl_rule_set_table(r, rule.table)
        rtnl_rule_set_action(r, UInt8(FR_ACT_TO_TBL))
        if let iif = rule.inputInterface { try call("set iif", iif) { rtnl_rule_set_iif(r, iif) } }
        if let m = rule.fwmark {
            rtnl_rule_set_mark(r, m)
            rtnl_rule_set_mask(r, rule.fwmask ?? UInt32.max)
        }
        if let s = rule.source {
            let a = s.nlAddress()
            defer { nl_addr_put(a) }
            try call("set source", s.description) { rtnl_rule_set_src(r, a) }
        }
        try body(r)
    }
}
