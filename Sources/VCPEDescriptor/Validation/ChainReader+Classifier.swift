extension ChainReader {
    func readClassifier(_ v: Value, paths: [Path]) -> Classifier? {
        guard let o = v.object(keys: ["default", "rules", "flowCache"]) else { return nil }
        let names = paths.map(\.name)
        var defaultPath: String?
        if let dv = o.required("default", "the path taken when no rule matches"), let s = dv.string("a path name") {
            if names.contains(s) { defaultPath = s } else {
                dv.error("no path named \"\(s)\"\(suggestion(for: s, among: names)); defined paths: \(listing(names))")
            }
        }
        var rules: [(rule: ClassifierRule, at: Value)] = []
        var ok = true
        var flowCache = true
        if let fv = o["flowCache"] {
            if let b = fv.bool() { flowCache = b } else { ok = false }
        }
        if let rv = o["rules"], let items = rv.array() {
            for item in items {
                guard let r = readClassifierRule(item, pathNames: names) else { ok = false; continue }
                if let other = rules.first(where: { $0.rule.name == r.name }) {
                    item.error("rule name \"\(r.name)\" is used at \(other.at.pointer) already")
                    ok = false
                } else if let other = rules.first(where: { $0.rule.priority == r.priority }) {
                    item.error("priority \(r.priority) is used by rule \"\(other.rule.name)\" already; priorities decide which rule wins, so they must differ")
                    ok = false
                }
                rules.append((r, item))
            }
        }
        // Lowest priority number first; a rule fully covered by an earlier one never matches.
        rules.sort { $0.rule.priority < $1.rule.priority }
        for (j, later) in rules.enumerated() {
            if let earlier = rules[..<j].first(where: { $0.rule.match.covers(later.rule.match) }) {
                later.at.warning("rule \"\(later.rule.name)\" is shadowed by rule \"\(earlier.rule.name)\" (priority \(earlier.rule.priority)): it can never match")
            }
        }
        guard ok, let defaultPath else { return nil }
        return Classifier(defaultPath: defaultPath, rules: rules.map(\.rule), flowCache: flowCache)
    }

    func readClassifierRule(_ v: Value, pathNames: [String]) -> ClassifierRule? {
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
                if pathNames.contains(s) { target = .path(s) } else {
                    p.error("no path named \"\(s)\"\(suggestion(for: s, among: pathNames)); defined paths: \(listing(pathNames))")
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
