import CNftnl
import VCPENet

/// Compiles model rules into libnftnl objects, expression by expression as `nft` 1.0 does,
/// so that `nft list` shows exactly what an operator would have written.
struct RuleCompiler {
    let table: NftTable
    /// Anonymous sets the last compiled rule needs, with their batch IDs: the batch
    /// creates them right before the rule.
    private(set) var anonymousSets: [(set: NftSet, id: UInt32)] = []
    private var nextSetID: UInt32

    init(table: NftTable, firstSetID: UInt32) {
        self.table = table
        self.nextSetID = firstSetID
    }

    /// The next free set ID, for whatever the batch adds after this table.
    var setIDsUsedUpTo: UInt32 { nextSetID }

    static let reg1 = UInt32(NFT_REG_1.rawValue)
    static let reg2 = UInt32(NFT_REG_1.rawValue + 1)
    static let verdictReg = UInt32(NFT_REG_VERDICT.rawValue)

    /// A new nftnl_rule for `rule` in `chain`; the caller frees it.
    mutating func compile(_ rule: NftRule, chain: String) -> OpaquePointer {
        anonymousSets = []
        let r = nftnl_rule_alloc()!
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_TABLE.rawValue), table.name)
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue), chain)
        nftnl_rule_set_u32(r, UInt16(NFTNL_RULE_FAMILY.rawValue), UInt32(table.family.value))
        var deps = Dependencies()
        for m in rule.matches { emit(m, into: r, deps: &deps) }
        for s in rule.statements { emit(s, into: r) }
        if let comment = rule.comment { setComment(comment, on: r) }
        return r
    }

    /// What this rule has matched already, so implicit dependencies are not repeated.
    struct Dependencies {
        var nfproto: IPAddress.Family?
        var l4proto: UInt8?
    }

    // MARK: - Matches

    private mutating func emit(_ m: Match, into r: OpaquePointer, deps: inout Dependencies) {
        switch m {
        case .iifname(let n): metaLoad(NFT_META_IIFNAME, r); cmp(.eq, ifname(n), r)
        case .oifname(let n): metaLoad(NFT_META_OIFNAME, r); cmp(.eq, ifname(n), r)
        case .iifnameIn(let ns): metaLoad(NFT_META_IIFNAME, r); lookupAnonymous(keyType: .ifname, elements: ns.map { .interface($0) }, r)
        case .oifnameIn(let ns): metaLoad(NFT_META_OIFNAME, r); lookupAnonymous(keyType: .ifname, elements: ns.map { .interface($0) }, r)
        case .nfproto(let f):
            l3Load(f, r)
            deps.nfproto = f
        case .l4proto(let p):
            metaLoad(NFT_META_L4PROTO, r); cmp(.eq, [p], r)
            deps.l4proto = p
        case .source(let v): address(v, offsetV4: 12, offsetV6: 8, r, &deps)
        case .destination(let v): address(v, offsetV4: 16, offsetV6: 24, r, &deps)
        case .sourcePort(let p, let v): port(p, v, offset: 0, r, &deps)
        case .destinationPort(let p, let v): port(p, v, offset: 2, r, &deps)
        case .icmpType(let t):
            l4Dependency(1, r, &deps); payload(NFT_PAYLOAD_TRANSPORT_HEADER, offset: 0, length: 1, r); cmp(.eq, [t], r)
        case .icmpv6Type(let t):
            l4Dependency(58, r, &deps); payload(NFT_PAYLOAD_TRANSPORT_HEADER, offset: 0, length: 1, r); cmp(.eq, [t], r)
        case .ctState(let states):
            let mask = states.reduce(UInt32(0)) { $0 | $1.bit }
            ctLoad(NFT_CT_STATE, r)
            bitwise(mask: host32(mask), xor: host32(0), r)
            cmp(.neq, host32(0), r)
        case .ctStatus(let bits):
            ctLoad(NFT_CT_STATUS, r)
            bitwise(mask: host32(bits.reduce(UInt32(0)) { $0 | $1.bit }), xor: host32(0), r)
            cmp(.neq, host32(0), r)
        case .ctMark(let v): ctLoad(NFT_CT_MARK, r); cmp(.eq, host32(v), r)
        case .mark(let v): metaLoad(NFT_META_MARK, r); cmp(.eq, host32(v), r)
        }
    }

    private func l3Dependency(_ f: IPAddress.Family, _ r: OpaquePointer, _ deps: inout Dependencies) {
        guard table.family == .inet || table.family == .netdev, deps.nfproto != f else { return }
        l3Load(f, r)
        deps.nfproto = f
    }

    /// `meta nfproto` in inet tables; netdev hooks see no L3 family yet, so there it is the
    /// frame's ethertype (`meta protocol`), as nft itself compiles it.
    private func l3Load(_ f: IPAddress.Family, _ r: OpaquePointer) {
        if table.family == .netdev {
            metaLoad(NFT_META_PROTOCOL, r); cmp(.eq, f == .v4 ? [0x08, 0x00] : [0x86, 0xDD], r)
        } else {
            metaLoad(NFT_META_NFPROTO, r); cmp(.eq, [f == .v4 ? 2 : 10], r)
        }
    }

    private func l4Dependency(_ p: UInt8, _ r: OpaquePointer, _ deps: inout Dependencies) {
        guard deps.l4proto != p else { return }
        metaLoad(NFT_META_L4PROTO, r); cmp(.eq, [p], r)
        deps.l4proto = p
    }

    private mutating func address(_ v: Match.AddressValue, offsetV4: UInt32, offsetV6: UInt32, _ r: OpaquePointer, _ deps: inout Dependencies) {
        let family = v.family
        l3Dependency(family, r, &deps)
        let offset = family == .v4 ? offsetV4 : offsetV6
        let width = UInt32(family == .v4 ? 4 : 16)
        switch v {
        case .prefix(let p):
            // Whole bytes: load only those. Otherwise load the address and mask it.
            if p.length > 0, p.length % 8 == 0 {
                let n = p.length / 8
                payload(NFT_PAYLOAD_NETWORK_HEADER, offset: offset, length: UInt32(n), r)
                cmp(.eq, Array(p.network.bytes[0..<n]), r)
            } else {
                payload(NFT_PAYLOAD_NETWORK_HEADER, offset: offset, length: width, r)
                bitwise(mask: IPPrefix(family == .v4 ? IPAddress(v4: ~0) : IPAddress(v6: ~0, ~0), p.length).network.bytes,
                        xor: [UInt8](repeating: 0, count: Int(width)), r)
                cmp(.eq, p.network.bytes, r)
            }
        case .anyOf(let ps):
            payload(NFT_PAYLOAD_NETWORK_HEADER, offset: offset, length: width, r)
            lookupAnonymous(keyType: family == .v4 ? .ipv4Address : .ipv6Address, elements: ps.map { .prefix($0) }, r)
        case .set(let name, _):
            payload(NFT_PAYLOAD_NETWORK_HEADER, offset: offset, length: width, r)
            lookup(name: name, id: nil, r)
        }
    }

    private mutating func port(_ p: TransportProtocol, _ v: Match.PortValue, offset: UInt32, _ r: OpaquePointer, _ deps: inout Dependencies) {
        l4Dependency(p.number, r, &deps)
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, offset: offset, length: 2, r)
        switch v {
        case .range(let range) where range.lo == range.hi: cmp(.eq, be16(range.lo), r)
        case .range(let range): cmp(.gte, be16(range.lo), r); cmp(.lte, be16(range.hi), r)
        case .anyOf(let rs): lookupAnonymous(keyType: .inetService, elements: rs.map { .ports($0) }, r)
        case .set(let name): lookup(name: name, id: nil, r)
        }
    }

    private mutating func lookupAnonymous(keyType: NftSet.KeyType, elements: [SetElement], _ r: OpaquePointer) {
        let id = nextSetID
        nextSetID += 1
        let set = NftSet(name: "__set%d", keyType: keyType, interval: elements.contains { !$0.isSingleValue }, elements: elements)
        anonymousSets.append((set, id))
        lookup(name: "__set%d", id: id, r)
    }

    // MARK: - Statements

    private func emit(_ s: Statement, into r: OpaquePointer) {
        switch s {
        case .counter: add(r, "counter") { _ in }
        case .namedCounter(let n):
            add(r, "objref") { e in
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_OBJREF_IMM_TYPE), UInt32(NFT_OBJECT_COUNTER))
                nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_OBJREF_IMM_NAME), n)
            }
        case .log(let prefix):
            add(r, "log") { e in if let prefix { nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOG_PREFIX), prefix) } }
        case .limit(let rate, let per, let burst):
            add(r, "limit") { e in
                nftnl_expr_set_u64(e, UInt16(NFTNL_EXPR_LIMIT_RATE), rate)
                nftnl_expr_set_u64(e, UInt16(NFTNL_EXPR_LIMIT_UNIT), per.seconds)
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_LIMIT_BURST), burst)
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_LIMIT_TYPE), UInt32(NFT_LIMIT_PKTS.rawValue))
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_LIMIT_FLAGS), 0)
            }
        case .setMark(let v):
            immediate(Self.reg1, host32(v), r)
            add(r, "meta") { e in
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_META_KEY), UInt32(NFT_META_MARK.rawValue))
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_META_SREG), Self.reg1)
            }
        case .setCtMark(let v):
            immediate(Self.reg1, host32(v), r)
            add(r, "ct") { e in
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CT_KEY), UInt32(NFT_CT_MARK.rawValue))
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CT_SREG), Self.reg1)
            }
        case .masquerade: add(r, "masq") { _ in }
        case .snat(let a, let p): nat(NFT_NAT_SNAT, a, p, r)
        case .dnat(let a, let p): nat(NFT_NAT_DNAT, a, p, r)
        case .accept: verdict(Int32(NF_ACCEPT), nil, r)
        case .drop: verdict(Int32(NF_DROP), nil, r)
        case .jump(let c): verdict(NFT_JUMP.rawValue, c, r)
        case .goto(let c): verdict(NFT_GOTO.rawValue, c, r)
        case .return: verdict(NFT_RETURN.rawValue, nil, r)
        case .reject(let kind):
            add(r, "reject") { e in
                switch kind {
                case .tcpReset:
                    nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_TCP_RST.rawValue))
                    nftnl_expr_set_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE), 0)
                case .portUnreachable where table.family == .inet || table.family == .netdev:
                    nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_ICMPX_UNREACH.rawValue))
                    nftnl_expr_set_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE), UInt8(NFT_REJECT_ICMPX_PORT_UNREACH.rawValue))
                case .portUnreachable:
                    nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_ICMP_UNREACH.rawValue))
                    nftnl_expr_set_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE), table.family == .ip6 ? 4 : 3)
                }
            }
        }
    }

    private func nat(_ type: nft_nat_types, _ a: IPAddress, _ port: UInt16?, _ r: OpaquePointer) {
        immediate(Self.reg1, a.bytes, r)
        if let port { immediate(Self.reg2, be16(port), r) }
        add(r, "nat") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_NAT_TYPE), type.rawValue)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_NAT_FAMILY), a.family == .v4 ? 2 : 10)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_NAT_REG_ADDR_MIN), Self.reg1)
            if port != nil {
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_NAT_REG_PROTO_MIN), Self.reg2)
                nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_NAT_FLAGS), UInt32(NF_NAT_RANGE_PROTO_SPECIFIED))
            }
        }
    }

    // MARK: - Expression builders

    enum CmpOp { case eq, neq, lte, gte }

    private func add(_ r: OpaquePointer, _ name: String, _ configure: (OpaquePointer) -> Void) {
        let e = nftnl_expr_alloc(name)!
        configure(e)
        nftnl_rule_add_expr(r, e)  // the rule owns it now
    }

    private func metaLoad(_ key: nft_meta_keys, _ r: OpaquePointer) {
        add(r, "meta") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_META_KEY), key.rawValue)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_META_DREG), Self.reg1)
        }
    }

    private func ctLoad(_ key: nft_ct_keys, _ r: OpaquePointer) {
        add(r, "ct") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CT_KEY), key.rawValue)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CT_DREG), Self.reg1)
        }
    }

    private func payload(_ base: nft_payload_bases, offset: UInt32, length: UInt32, _ r: OpaquePointer) {
        add(r, "payload") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_PAYLOAD_DREG), Self.reg1)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_PAYLOAD_BASE), base.rawValue)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_PAYLOAD_LEN), length)
        }
    }

    private func cmp(_ op: CmpOp, _ data: [UInt8], _ r: OpaquePointer) {
        let code: nft_cmp_ops = switch op {
        case .eq: NFT_CMP_EQ
        case .neq: NFT_CMP_NEQ
        case .lte: NFT_CMP_LTE
        case .gte: NFT_CMP_GTE
        }
        add(r, "cmp") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CMP_SREG), Self.reg1)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_CMP_OP), code.rawValue)
            data.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(NFTNL_EXPR_CMP_DATA), $0.baseAddress, UInt32($0.count)) }
        }
    }

    private func bitwise(mask: [UInt8], xor: [UInt8], _ r: OpaquePointer) {
        add(r, "bitwise") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_BITWISE_SREG), Self.reg1)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_BITWISE_DREG), Self.reg1)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_BITWISE_LEN), UInt32(mask.count))
            mask.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(NFTNL_EXPR_BITWISE_MASK), $0.baseAddress, UInt32($0.count)) }
            xor.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(NFTNL_EXPR_BITWISE_XOR), $0.baseAddress, UInt32($0.count)) }
        }
    }

    private func immediate(_ reg: UInt32, _ data: [UInt8], _ r: OpaquePointer) {
        add(r, "immediate") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_IMM_DREG), reg)
            data.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(NFTNL_EXPR_IMM_DATA), $0.baseAddress, UInt32($0.count)) }
        }
    }

    private func verdict(_ code: Int32, _ chain: String?, _ r: OpaquePointer) {
        add(r, "immediate") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_IMM_DREG), Self.verdictReg)
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: code))
            if let chain { nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_IMM_CHAIN), chain) }
        }
    }

    private func lookup(name: String, id: UInt32?, _ r: OpaquePointer) {
        add(r, "lookup") { e in
            nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_LOOKUP_SREG), Self.reg1)
            nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOOKUP_SET), name)
            if let id { nftnl_expr_set_u32(e, UInt16(NFTNL_EXPR_LOOKUP_SET_ID), id) }
        }
    }

    /// nft keeps comments in rule user data as a TLV (NFTNL_UDATA_RULE_COMMENT).
    private func setComment(_ comment: String, on r: OpaquePointer) {
        guard let buf = nftnl_udata_buf_alloc(UInt32(NFT_USERDATA_MAXLEN)) else { return }
        defer { nftnl_udata_buf_free(buf) }
        guard nftnl_udata_put_strz(buf, UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue), comment) else { return }
        nftnl_rule_set_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf))
    }

    // MARK: - Byte order

    /// An interface name as nft compares it: IFNAMSIZ bytes, zero padded.
    private func ifname(_ n: String) -> [UInt8] { SetElement.interface(n).key }
}

/// Host-order 32-bit values, as the kernel keeps marks and ct state.
func host32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

extension SetElement {
    var isSingleValue: Bool {
        switch self {
        case .prefix(let p): p.length == p.address.bitWidth
        case .ports(let r): r.lo == r.hi
        case .interface: true
        }
    }
}
