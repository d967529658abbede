import VCPENet
extension ChainReader {
    func readClassifier(_ v: Value, paths: [Path]) -> Classifier? {
        guard let o = v.object(keys: ["default", "rules", "flowCache"]) else { return nil }
        let names = paths.map(\.name)
        let nameSet = Set(names)
        var defaultPath: String?
        if let dv = o.required("default", "the path taken when no rule matches"), let s = dv.string("a path name") {
            if nameSet.contains(s) { defaultPath = s } else {
                dv.error("no path named \"\(s)\"\(sink.suggestion(for: s, among: names)); defined paths: \(listing(names))")
            }
        }
        var rules: [(rule: ClassifierRule, at: Value)] = []
        var ok = true
        var flowCache = true
        if let fv = o["flowCache"] {
            if let b = fv.bool() { flowCache = b } else { ok = false }
        }
        let rulesV = o["rules"]
        var engineRules = 0
        if let rv = rulesV, let items = rv.array() {
            if items.count > Limits.classifierRules {
                rv.error("at most \(Limits.classifierRules) classifier rules (got \(items.count))")
                ok = false
            }
            var byName: [String: Int] = [:], byPriority: [Int: Int] = [:]
            for item in items {
                guard let r = readClassifierRule(item, pathNames: names, pathSet: nameSet) else { ok = false; continue }
                if let other = byName[r.name] {
                    item.error("rule name \"\(r.name)\" is used at \(rules[other].at.pointer) already")
                    ok = false
                } else if let other = byPriority[r.priority] {
                    item.error("priority \(r.priority) is used by rule \"\(rules[other].rule.name)\" already; priorities decide which rule wins, so they must differ")
                    ok = false
                }
                if byName[r.name] == nil { byName[r.name] = rules.count }
                if byPriority[r.priority] == nil { byPriority[r.priority] = rules.count }
                // Counted without expanding, saturating: the sum only has to pass the limit.
                let n = Limits.engineRules(of: r.match) ?? Int.max
                engineRules = engineRules > Int.max - n ? Int.max : engineRules + n
                rules.append((r, item))
            }
            if engineRules > Limits.classifierEngineRules {
                rv.error("at most \(Limits.classifierEngineRules) classifier rules after expansion (got \(engineRules == Int.max ? "more than \(Int.max)" : String(engineRules))): a rule with lists becomes one rule per combination of its src, dst, sport and dport entries")
                ok = false
            }
        }
        // Lowest priority number first; a rule fully covered by an earlier one never matches.
        rules.sort { $0.rule.priority < $1.rule.priority }
        checkShadowing(rules, at: rulesV)
        guard ok, let defaultPath else { return nil }
        return Classifier(defaultPath: defaultPath, rules: rules.map(\.rule), flowCache: flowCache)
    }

    /// Warns about rules an earlier rule covers (`rules` in priority order).
    ///
    /// Indexed: a rule with addresses can only be covered by an earlier rule whose list for
    /// that field is empty or holds a prefix containing the rule's first one; those are found
    /// by looking up the (at most 33 or 129) prefixes containing it, for src and for dst, and
    /// the smaller of the two candidate sets is compared. Bounded: at most
    /// `Limits.shadowCheckComparisons` element comparisons per file (a compared pair costs
    /// 1 + the products of its list lengths, an upper bound of what `covers` compares). Past
    /// it the remaining rules are not checked, and one warning says from which rule on;
    /// they are still valid.
    func checkShadowing(_ rules: [(rule: ClassifierRule, at: Value)], at rulesV: Value?) {
        var budget = Limits.shadowCheckComparisons
        func cost(_ a: ClassifierRule.Match, _ b: ClassifierRule.Match) -> Int {
            // Each product is at most about 10^11: the lists are bounded by the file size.
            1 + a.src.count * b.src.count + a.dst.count * b.dst.count
              + a.sport.count * b.sport.count + a.dport.count * b.dport.count
        }
        var src = PrefixIndex(), dst = PrefixIndex()
        var stamp = [Int](repeating: -1, count: rules.count)
        for (j, later) in rules.enumerated() {
            let m = later.rule.match
            // Candidates from the field that gives fewer; each earlier rule once (stamped).
            let (a, b) = (src.candidates(m.src), dst.candidates(m.dst))
            let (na, nb) = (a.reduce(0) { $0 + $1.count }, b.reduce(0) { $0 + $1.count })
            let lists = na <= nb ? a : b
            budget -= min(na, nb)
            var candidates: [Int] = []
            for list in lists { for i in list where stamp[i] != j { stamp[i] = j; candidates.append(i) } }
            candidates.sort()
            var found: (rule: ClassifierRule, at: Value)?
            for i in candidates {
                let e = rules[i].rule.match
                guard e.proto == .any || e.proto == m.proto, e.dscp == nil || e.dscp == m.dscp else { budget -= 1; continue }
                budget -= cost(e, m)
                if budget < 0 { break }
                if e.covers(m) { found = rules[i]; break }
            }
            if budget < 0 {
                if let rulesV {
                    rulesV.warning("shadowing checked for the first \(j) rules only (by priority; from rule \"\(later.rule.name)\" on it is not): the check is bounded to \(Limits.shadowCheckComparisons) comparisons per file")
                }
                return
            }
            if let earlier = found {
                later.at.warning("rule \"\(later.rule.name)\" is shadowed by rule \"\(earlier.rule.name)\" (priority \(earlier.rule.priority)): it can never match")
            }
            src.insert(j, m.src)
            dst.insert(j, m.dst)
        }
    }

    func readClassifierRule(_ v: Value, pathNames: [String], pathSet: Set<String>) -> ClassifierRule? {
        guard let o = v.object(keys: ["name", "priority", "match", "path", "action", "description"]) else { return nil }
        _ = o["description"]?.string()
        var ok = true
        var name = ""
        if let nv = o.required("name", "the rule's name"), let s = nv.string() {
            if nv.name(s, maxLength: KernelNames.maxRuleName, what: "a rule name") { name = s } else { ok = false }
        } else { ok = false }
        let priority = o.required("priority", "a number 0-65535; lower wins")?.integer(in: 0...65535, "a priority 0-65535")
        var target: ClassifierRule.Target?
        switch (o["path"], o["action"]) {
        case (let p?, nil):
            if let s = p.string("a path name") {
                if pathSet.contains(s) { target = .path(s) } else {
                    p.error("no path named \"\(s)\"\(sink.suggestion(for: s, among: pathNames)); defined paths: \(listing(pathNames))")
                }
            }
        case (nil, let a?):
            if let s = a.string("\"drop\"") {
                if s == "drop" { target = .drop } else { a.error("expected \"drop\" (or give a \"path\" instead), got \"\(s)\"") }
            }
        case (_?, let a?):
            a.error("a rule has either \"path\" or \"action\", not both")
        case (nil, nil):
            v.error("missing \"path\" (the path to steer to) or \"action\": \"drop\"")
        }
        var match = ClassifierRule.Match()
        if let mv = o.required("match", "the fields to match: src, dst, proto, sport, dport, dscp"),
           let m = mv.object(keys: ["src", "dst", "proto", "sport", "dport", "dscp"]) {
            if let s = m["src"] { if let p = prefixes(s) { match.src = p } else { ok = false } }
            if let s = m["dst"] { if let p = prefixes(s) { match.dst = p } else { ok = false } }
            var protoKnown = true
            if let s = m["proto"] { if let p = s.word(IPProtocolMatch.self) { match.proto = p } else { ok = false; protoKnown = false } }
            if let s = m["sport"] { if let p = ports(s) { match.sport = p } else { ok = false } }
            if let s = m["dport"] { if let p = ports(s) { match.dport = p } else { ok = false } }
            if let s = m["dscp"] { if let n = s.integer(in: 0...63, "a DSCP value 0-63") { match.dscp = UInt8(n) } else { ok = false } }
            for key in ["sport", "dport"] where m[key] != nil && !match.proto.hasPorts && protoKnown {
                m[key]!.error("ports need \"proto\": \"tcp\" or \"udp\"")
                ok = false
            }
        } else { ok = false }
        guard ok, let priority, let target else { return nil }
        return ClassifierRule(name: name, priority: priority, match: match, target: target)
    }
}

/// Earlier rules by the prefixes of one field, for the shadow check.
struct PrefixIndex {
    /// Rules whose list is empty (any address): they may cover anything.
    private var any: [Int] = []
    private var byPrefix: [IPPrefix: [Int]] = [:]

    mutating func insert(_ rule: Int, _ prefixes: [IPPrefix]) {
        if prefixes.isEmpty { any.append(rule); return }
        for p in prefixes { byPrefix[p.canonical, default: []].append(rule) }
    }

    /// Lists holding every earlier rule that may cover a rule with `prefixes` in this field:
    /// a covering rule's list is empty or contains the first prefix.
    func candidates(_ prefixes: [IPPrefix]) -> [[Int]] {
        guard let first = prefixes.first else { return [any] }
        var out = [any]
        for length in 0...first.length {
            if let rules = byPrefix[IPPrefix(first.network.masked(to: length), length)] { out.append(rules) }
        }
        return out
    }
}
