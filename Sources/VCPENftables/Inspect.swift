import CNftnl
import VCPESystem

public struct CounterValue: Sendable, Hashable {
    public var packets: UInt64
    public var bytes: UInt64

    public init(packets: UInt64, bytes: UInt64) {
        self.packets = packets
        self.bytes = bytes
    }
}

public struct TableInfo: Sendable, Hashable {
    public var family: NftFamily
    public var name: String
    public var handle: UInt64
    public var comment: String?

    public init(family: NftFamily, name: String, handle: UInt64 = 0, comment: String? = nil) {
        self.family = family
        self.name = name
        self.handle = handle
        self.comment = comment
    }
}

public struct ChainInfo: Sendable, Hashable {
    public var name: String
    public var handle: UInt64
    /// Base chains only.
    public var type: String?
    public var hook: UInt32?
    public var priority: Int32?
    public var policy: BaseChain.Policy?
}

/// A rule as the kernel holds it.
public struct RuleState: Sendable, Hashable {
    public var chain: String
    public var handle: UInt64
    public var comment: String?
    public var expressions: Int
    /// From an anonymous `counter` in the rule.
    public var counter: CounterValue?
    /// Named counters the rule feeds.
    public var counterNames: [String]
}

extension NftSocket {
    public func tables() throws(KernelError) -> [TableInfo] {
        var out: [TableInfo] = []
        try request(type: UInt16(NFT_MSG_GETTABLE.rawValue), family: 0, flags: UInt16(NLM_F_DUMP), what: "list tables") { nlh in
            let t = nftnl_table_alloc()!
            defer { nftnl_table_free(t) }
            guard nftnl_table_nlmsg_parse(nlh, t) >= 0,
                  let family = NftFamily(value: nftnl_table_get_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue))) else { return }
            var comment: String?
            var len: UInt32 = 0
            if nftnl_table_is_set(t, UInt16(NFTNL_TABLE_USERDATA.rawValue)),
               let data = nftnl_table_get_data(t, UInt16(NFTNL_TABLE_USERDATA.rawValue), &len) {
                comment = userDataString(UnsafeRawBufferPointer(start: data, count: Int(len)), type: UInt8(NFTNL_UDATA_TABLE_COMMENT.rawValue))
            }
            out.append(TableInfo(family: family, name: String(cString: nftnl_table_get_str(t, UInt16(NFTNL_TABLE_NAME.rawValue))),
                                 handle: nftnl_table_get_u64(t, UInt16(NFTNL_TABLE_HANDLE.rawValue)), comment: comment))
        }
        return out
    }

    public func chains(family: NftFamily, table: String) throws(KernelError) -> [ChainInfo] {
        var out: [ChainInfo] = []
        try tolerateMissingTable { () throws(KernelError) in
            try request(type: UInt16(NFT_MSG_GETCHAIN.rawValue), family: family.value, flags: UInt16(NLM_F_DUMP), what: "list chains of \(table)") { nlh in
                let c = nftnl_chain_alloc()!
                defer { nftnl_chain_free(c) }
                guard nftnl_chain_nlmsg_parse(nlh, c) >= 0,
                      String(cString: nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_TABLE.rawValue))) == table else { return }
                let isBase = nftnl_chain_is_set(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue))
                let hasPolicy = nftnl_chain_is_set(c, UInt16(NFTNL_CHAIN_POLICY.rawValue))
                out.append(ChainInfo(
                    name: String(cString: nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_NAME.rawValue))),
                    handle: nftnl_chain_get_u64(c, UInt16(NFTNL_CHAIN_HANDLE.rawValue)),
                    type: isBase ? String(cString: nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_TYPE.rawValue))) : nil,
                    hook: isBase ? nftnl_chain_get_u32(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)) : nil,
                    priority: isBase ? nftnl_chain_get_s32(c, UInt16(NFTNL_CHAIN_PRIO.rawValue)) : nil,
                    policy: isBase && hasPolicy ? (nftnl_chain_get_u32(c, UInt16(NFTNL_CHAIN_POLICY.rawValue)) == UInt32(NF_ACCEPT) ? .accept : .drop) : nil))
            }
        }
        return out
    }

    public func rules(family: NftFamily, table: String) throws(KernelError) -> [RuleState] {
        var out: [RuleState] = []
        try tolerateMissingTable { () throws(KernelError) in
            try request(type: UInt16(NFT_MSG_GETRULE.rawValue), family: family.value, flags: UInt16(NLM_F_DUMP), what: "list rules of \(table)",
                        build: { nlh in
                            let r = nftnl_rule_alloc()!
                            defer { nftnl_rule_free(r) }
                            nftnl_rule_set_str(r, UInt16(NFTNL_RULE_TABLE.rawValue), table)
                            nftnl_rule_nlmsg_build_payload(nlh, r)
                        }) { nlh in
                let r = nftnl_rule_alloc()!
                defer { nftnl_rule_free(r) }
                guard nftnl_rule_nlmsg_parse(nlh, r) >= 0 else { return }
                out.append(Self.ruleState(r))
            }
        }
        return out
    }

    /// Named counters of a table with their values; empty when the table does not exist.
    public func counterValues(family: NftFamily, table: String) throws(KernelError) -> [String: CounterValue] {
        var out: [String: CounterValue] = [:]
        try tolerateMissingTable { () throws(KernelError) in
            try request(type: UInt16(NFT_MSG_GETOBJ.rawValue), family: family.value, flags: UInt16(NLM_F_DUMP), what: "list counters of \(table)",
                        build: { nlh in
                            let o = nftnl_obj_alloc()!
                            defer { nftnl_obj_free(o) }
                            nftnl_obj_set_str(o, UInt16(NFTNL_OBJ_TABLE), table)
                            nftnl_obj_set_u32(o, UInt16(NFTNL_OBJ_TYPE), UInt32(NFT_OBJECT_COUNTER))
                            nftnl_obj_nlmsg_build_payload(nlh, o)
                        }) { nlh in
                let o = nftnl_obj_alloc()!
                defer { nftnl_obj_free(o) }
                guard nftnl_obj_nlmsg_parse(nlh, o) >= 0,
                      String(cString: nftnl_obj_get_str(o, UInt16(NFTNL_OBJ_TABLE))) == table,
                      nftnl_obj_get_u32(o, UInt16(NFTNL_OBJ_TYPE)) == UInt32(NFT_OBJECT_COUNTER) else { return }
                out[String(cString: nftnl_obj_get_str(o, UInt16(NFTNL_OBJ_NAME)))] =
                    CounterValue(packets: nftnl_obj_get_u64(o, UInt16(NFTNL_OBJ_CTR_PKTS)), bytes: nftnl_obj_get_u64(o, UInt16(NFTNL_OBJ_CTR_BYTES)))
            }
        }
        return out
    }

    /// A dump of a table that does not exist answers ENOENT: that is an empty answer here.
    private func tolerateMissingTable(_ body: () throws(KernelError) -> Void) throws(KernelError) {
        do {
            try body()
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
    }

    static func ruleState(_ r: OpaquePointer) -> RuleState {
        var counter: CounterValue?
        var names: [String] = []
        var count = 0
        let it = nftnl_expr_iter_create(r)!
        defer { nftnl_expr_iter_destroy(it) }
        while let e = nftnl_expr_iter_next(it) {
            count += 1
            switch String(cString: nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_NAME))) {
            case "counter":
                counter = CounterValue(packets: nftnl_expr_get_u64(e, UInt16(NFTNL_EXPR_CTR_PACKETS)),
                                       bytes: nftnl_expr_get_u64(e, UInt16(NFTNL_EXPR_CTR_BYTES)))
            case "objref":
                if let n = nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_OBJREF_IMM_NAME)) { names.append(String(cString: n)) }
            default: break
            }
        }
        var comment: String?
        var len: UInt32 = 0
        if nftnl_rule_is_set(r, UInt16(NFTNL_RULE_USERDATA.rawValue)),
           let data = nftnl_rule_get_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), &len) {
            comment = userDataString(UnsafeRawBufferPointer(start: data, count: Int(len)), type: UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue))
        }
        return RuleState(chain: String(cString: nftnl_rule_get_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue))),
                         handle: nftnl_rule_get_u64(r, UInt16(NFTNL_RULE_HANDLE.rawValue)),
                         comment: comment, expressions: count, counter: counter, counterNames: names)
    }
}

/// A NUL-terminated string from nft's user data TLVs (type, length, value).
func userDataString(_ b: UnsafeRawBufferPointer, type wanted: UInt8) -> String? {
    var i = 0
    while i + 2 <= b.count {
        let type = b[i], l = Int(b[i + 1])
        guard i + 2 + l <= b.count else { return nil }
        if type == wanted { return String(decoding: b[(i + 2)..<(i + 2 + l)].prefix { $0 != 0 }, as: UTF8.self) }
        i += 2 + l
    }
    return nil
}
