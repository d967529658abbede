import CNftnl
import VCPESystem

/// A change to one table, committed with others in a single transaction.
public enum TableChange: Sendable, Hashable {
    /// Create the table, or replace everything in it: at no moment is it empty or half-built.
    case replace(NftTable)
    /// Delete the table; one that does not exist is fine.
    case remove(family: NftFamily, name: String)
}

extension NftSocket {
    /// Commits all changes as one kernel transaction: all of them apply or none does.
    /// With `expectedGeneration`, a ruleset changed by anyone since that generation was read
    /// is reported (`KernelError.isConcurrentChange`) instead of overwritten.
    /// Named counters keep their values across a replace unless `resetCounters`.
    public func commit(_ changes: [TableChange], expectedGeneration: UInt32? = nil, resetCounters: Bool = false) throws(KernelError) {
        var batch = Batch(socket: self, expectedGeneration: expectedGeneration)
        var setID: UInt32 = 1
        for change in changes {
            switch change {
            case .replace(let t):
                let kept = resetCounters || t.counters.isEmpty ? [:] : try counterValues(family: t.family, table: t.name)
                // Ensure it exists so that the delete cannot fail, then rebuild it from nothing.
                addTable(t.family, t.name, &batch)
                deleteTable(t.family, t.name, &batch)
                addTable(t.family, t.name, comment: t.comment, &batch)
                addContents(t, keptCounters: kept, setID: &setID, &batch)
            case .remove(let family, let name):
                addTable(family, name, &batch)
                deleteTable(family, name, &batch)
            }
        }
        try batch.commit(what: "commit of \(changes.count) table change\(changes.count == 1 ? "" : "s")")
    }

    public func replaceTable(_ t: NftTable, expectedGeneration: UInt32? = nil) throws(KernelError) {
        try commit([.replace(t)], expectedGeneration: expectedGeneration)
    }

    public func removeTable(family: NftFamily, name: String) throws(KernelError) {
        try commit([.remove(family: family, name: name)])
    }

    // MARK: - Messages

    private func addTable(_ family: NftFamily, _ name: String, comment: String? = nil, _ batch: inout Batch) {
        batch.add(NFT_MSG_NEWTABLE, family: family.value, flags: NLM_F_CREATE, object: "table \(family.rawValue) \(name)") { nlh in
            let t = nftnl_table_alloc()!
            defer { nftnl_table_free(t) }
            nftnl_table_set_str(t, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            nftnl_table_set_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue), UInt32(family.value))
            if let comment, let buf = nftnl_udata_buf_alloc(UInt32(NFT_USERDATA_MAXLEN)) {
                defer { nftnl_udata_buf_free(buf) }
                if nftnl_udata_put_strz(buf, UInt8(NFTNL_UDATA_TABLE_COMMENT.rawValue), comment) {
                    nftnl_table_set_data(t, UInt16(NFTNL_TABLE_USERDATA.rawValue), nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf))
                }
            }
            nftnl_table_nlmsg_build_payload(nlh, t)
        }
    }

    private func deleteTable(_ family: NftFamily, _ name: String, _ batch: inout Batch) {
        batch.add(NFT_MSG_DELTABLE, family: family.value, flags: 0, object: "table \(family.rawValue) \(name)") { nlh in
            let t = nftnl_table_alloc()!
            defer { nftnl_table_free(t) }
            nftnl_table_set_str(t, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            nftnl_table_set_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue), UInt32(family.value))
            nftnl_table_nlmsg_build_payload(nlh, t)
        }
    }

    private func addContents(_ t: NftTable, keptCounters: [String: CounterValue], setID: inout UInt32, _ batch: inout Batch) {
        let where_ = "in table \(t.family.rawValue) \(t.name)"
        for name in t.counters {
            batch.add(NFT_MSG_NEWOBJ, family: t.family.value, flags: NLM_F_CREATE, object: "counter \(name) \(where_)") { nlh in
                let o = nftnl_obj_alloc()!
                defer { nftnl_obj_free(o) }
                nftnl_obj_set_str(o, UInt16(NFTNL_OBJ_TABLE), t.name)
                nftnl_obj_set_str(o, UInt16(NFTNL_OBJ_NAME), name)
                nftnl_obj_set_u32(o, UInt16(NFTNL_OBJ_TYPE), UInt32(NFT_OBJECT_COUNTER))
                nftnl_obj_set_u32(o, UInt16(NFTNL_OBJ_FAMILY), UInt32(t.family.value))
                if let v = keptCounters[name] {
                    nftnl_obj_set_u64(o, UInt16(NFTNL_OBJ_CTR_PKTS), v.packets)
                    nftnl_obj_set_u64(o, UInt16(NFTNL_OBJ_CTR_BYTES), v.bytes)
                }
                nftnl_obj_nlmsg_build_payload(nlh, o)
            }
        }
        for s in t.sets {
            addSet(s, table: t, id: setID, anonymous: false, &batch)
            setID += 1
        }
        for c in t.chains {
            batch.add(NFT_MSG_NEWCHAIN, family: t.family.value, flags: NLM_F_CREATE, object: "chain \(c.name) \(where_)") { nlh in
                let ch = nftnl_chain_alloc()!
                defer { nftnl_chain_free(ch) }
                nftnl_chain_set_str(ch, UInt16(NFTNL_CHAIN_TABLE.rawValue), t.name)
                nftnl_chain_set_str(ch, UInt16(NFTNL_CHAIN_NAME.rawValue), c.name)
                nftnl_chain_set_u32(ch, UInt16(NFTNL_CHAIN_FAMILY.rawValue), UInt32(t.family.value))
                if let b = c.base {
                    nftnl_chain_set_str(ch, UInt16(NFTNL_CHAIN_TYPE.rawValue), b.type.rawValue)
                    nftnl_chain_set_u32(ch, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), b.hook.number)
                    nftnl_chain_set_s32(ch, UInt16(NFTNL_CHAIN_PRIO.rawValue), b.priority)
                    if let p = b.policy { nftnl_chain_set_u32(ch, UInt16(NFTNL_CHAIN_POLICY.rawValue), UInt32(p == .accept ? NF_ACCEPT : NF_DROP)) }
                    if let d = b.device { nftnl_chain_set_str(ch, UInt16(NFTNL_CHAIN_DEV.rawValue), d) }
                }
                nftnl_chain_nlmsg_build_payload(nlh, ch)
            }
        }
        // Rules after every chain exists, so jumps to later chains resolve.
        var compiler = RuleCompiler(table: t, firstSetID: setID)
        for c in t.chains {
            for (i, rule) in c.rules.enumerated() {
                let r = compiler.compile(rule, chain: c.name)
                defer { nftnl_rule_free(r) }
                for (set, id) in compiler.anonymousSets { addSet(set, table: t, id: id, anonymous: true, &batch) }
                let label = "rule \(i) (\(rule.comment ?? rule.nftText(family: t.family))) of chain \(c.name) \(where_)"
                batch.add(NFT_MSG_NEWRULE, family: t.family.value, flags: NLM_F_CREATE | NLM_F_APPEND, object: label) { nlh in
                    nftnl_rule_nlmsg_build_payload(nlh, r)
                }
            }
        }
        setID = compiler.setIDsUsedUpTo
    }

    /// NEWSET with the attributes, then the elements in chunks that fit a message.
    private func addSet(_ s: NftSet, table t: NftTable, id: UInt32, anonymous: Bool, _ batch: inout Batch) {
        let object = anonymous ? "anonymous set of \(s.elements.count) elements in table \(t.name)" : "set \(s.name) in table \(t.name)"
        batch.add(NFT_MSG_NEWSET, family: t.family.value, flags: NLM_F_CREATE, object: object) { nlh in
            let set = SetBuilder.build(s, table: t, id: id, anonymous: anonymous)
            defer { nftnl_set_free(set) }
            nftnl_set_nlmsg_build_payload(nlh, set)
        }
        let keys = SetBuilder.elementKeys(s)
        for start in stride(from: 0, to: keys.count, by: 2048) {
            let chunk = keys[start..<min(keys.count, start + 2048)]
            batch.add(NFT_MSG_NEWSETELEM, family: t.family.value, flags: NLM_F_CREATE, object: "elements of \(object)") { nlh in
                let set = SetBuilder.build(s, table: t, id: id, anonymous: anonymous, elements: chunk)
                defer { nftnl_set_free(set) }
                nftnl_set_elems_nlmsg_build_payload(nlh, set)
            }
        }
    }
}
