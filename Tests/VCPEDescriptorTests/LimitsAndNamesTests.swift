import Foundation
import Testing
import VCPETestSupport
import VCPENet
@testable import VCPEDescriptor

/// Counts past vcpe's limits and names that would take other customers' objects are refused
/// by `validate`, each with the limit (or the reason) in the message.
@Suite struct LimitsAndNamesTests {
    func errors(_ text: String) -> [Diagnostic] { ChainDecoder.validate(text).errors }

    func expectLimit(_ text: String, at pointer: String, _ fragment: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let e = errors(text)
        let d = e.first { $0.pointer.description == pointer && $0.message.contains(fragment) }
        #expect(d != nil, "no \"\(fragment)\" at \(pointer): \(e.prefix(5))", sourceLocation: sourceLocation)
        if let d { #expect(d.location.line > 1, "\(d)", sourceLocation: sourceLocation) }
    }

    static func key(_ i: Int) -> String { Base64.encode((0..<32).map { UInt8(truncatingIfNeeded: i >> ($0 % 4 * 8)) ^ UInt8($0) }) }

    @Test func pathLimitKeepsRoutingTablesAndRulePrioritiesInRange() {
        // Path i routes by table 100 + i and rules 1000 + i / 1500 + i (VCPEController).
        #expect(100 + Limits.paths - 1 < 253)
        #expect(1000 + Limits.paths - 1 < 1500 && 1500 + Limits.paths - 1 < 2000)
        let paths = (0..<65).map { #""p\#($0)": ["rt"]"# }.joined(separator: ",")
        let text = chainText(paths: "{ \(paths) }", extra: #""classifier": { "default": "p0" }"#)
        expectLimit(text, at: "/paths", "at most 64 paths (got 65)")
        let ok = (0..<64).map { #""p\#($0)": ["rt"]"# }.joined(separator: ",")
        #expect(ChainDecoder.validate(chainText(paths: "{ \(ok) }", extra: #""classifier": { "default": "p0" }"#)).errors.isEmpty)
    }

    @Test func servicesHopsAndTransitLinks() {
        let fws = (0..<33).map { #""f\#($0)": { "type": "firewall" }"# }.joined(separator: ",")
        expectLimit(chainText(services: "{ \(fws), \"rt\": { \"type\": \"router\" } }"), at: "/services", "at most 32 services (got 34)")
        let hops = (0..<17).map { #""f\#($0)""# }.joined(separator: ",")
        let few = (0..<17).map { #""f\#($0)": { "type": "firewall" }"# }.joined(separator: ",")
        expectLimit(chainText(services: "{ \(few), \"rt\": { \"type\": \"router\" } }", paths: #"{ "a": [\#(hops), "rt"] }"#),
                    at: "/paths/a", "at most 16 services per path (got 18)")
        // 20 paths of 14 hops: within the path and hop limits, past the transit links.
        let s13 = (0..<13).map { #""f\#($0)": { "type": "firewall" }"# }.joined(separator: ",")
        let h13 = (0..<13).map { #""f\#($0)""# }.joined(separator: ",")
        let p20 = (0..<20).map { #""p\#($0)": [\#(h13), "rt"]"# }.joined(separator: ",")
        let text = chainText(services: "{ \(s13), \"rt\": { \"type\": \"router\" } }", paths: "{ \(p20) }", extra: #""classifier": { "default": "p0" }"#)
        expectLimit(text, at: "/paths", "at most 256 transit links per customer (got 280")
        #expect(Limits.transitLinks(paths: [3, 2], steered: false) == 3 && Limits.transitLinks(paths: [3, 2], steered: true) == 5)
    }

    @Test func rulesForwardsPeersAllowedIPsAndAttachments() {
        let rules = (0..<1025).map { #"{ "name": "r\#($0)", "action": "accept" }"# }.joined(separator: ",")
        expectLimit(chainText(services: #"{ "fw": { "type": "firewall", "rules": [\#(rules)] }, "rt": { "type": "router" } }"#),
                    at: "/services/fw/rules", "at most 1024 rules per firewall (got 1025)")
        let fwd = (0..<1025).map { #"{ "proto": "tcp", "port": \#($0 + 1), "to": "192.168.1.5" }"# }.joined(separator: ",")
        expectLimit(chainText(services: #"{ "fw": { "type": "firewall" }, "rt": { "type": "router", "portForwards": [\#(fwd)] } }"#),
                    at: "/services/rt/portForwards", "at most 1024 port forwards (got 1025)")
        func vpn(_ peers: [String]) -> String {
            chainText(services: #"{ "vpn": { "type": "vpn", "wireguard": { "address": "10.255.255.2/32", "listenPort": 51820, "peers": [\#(peers.joined(separator: ","))] } }, "rt": { "type": "router" } }"#,
                      paths: #"{ "a": ["vpn", "rt"] }"#)
        }
        let peers = (0..<257).map { #"{ "name": "p\#($0)", "publicKey": "\#(Self.key($0))", "allowedIPs": ["10.\#($0 / 256).\#($0 % 256).0/24"] }"# }
        expectLimit(vpn(peers), at: "/services/vpn/wireguard/peers", "at most 256 peers (got 257)")
        let ips = (0..<257).map { #""10.1.\#($0 % 256).\#($0 / 256)/32""# }.joined(separator: ",")
        expectLimit(vpn([#"{ "name": "p", "publicKey": "\#(Self.key(1))", "allowedIPs": [\#(ips)] }"#]),
                    at: "/services/vpn/wireguard/peers/0/allowedIPs", "at most 256 allowed IPs per peer (got 257)")
        let five = (0..<5).map { p in
            #"{ "name": "p\#(p)", "publicKey": "\#(Self.key(p))", "allowedIPs": [\#((0..<206).map { #""10.\#(p).\#($0).0/24""# }.joined(separator: ","))] }"#
        }
        expectLimit(vpn(five), at: "/services/vpn/wireguard/peers", "at most 1024 allowed IPs for all peers together (got 1030)")
        let attach = (0..<65).map { #""eth\#($0)""# }.joined(separator: ",")
        expectLimit(chainText(lan: #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.1.1", "attach": [\#(attach)] }"#),
                    at: "/lan/attach", "at most 64 attached interfaces (got 65)")
    }

    @Test func classifierRulesAreCountedBeforeAndAfterExpansion() {
        func classifier(_ rules: [String]) -> String {
            chainText(paths: #"{ "a": ["fw", "rt"], "b": ["rt"] }"#, extra: #""classifier": { "default": "a", "rules": [\#(rules.joined(separator: ","))] }"#)
        }
        let many = (0..<4097).map { #"{ "name": "r\#($0)", "priority": \#($0), "match": { "proto": "tcp", "dport": \#($0 + 1) }, "path": "b" }"# }
        expectLimit(classifier(many), at: "/classifier/rules", "at most 4096 classifier rules (got 4097)")
        // 500 sources x 501 destinations = 250,500 engine rules from one descriptor rule.
        let src = (0..<500).map { #""10.\#($0 / 256).\#($0 % 256).0/24""# }.joined(separator: ",")
        let dst = (0..<501).map { #""172.16.\#($0 / 256).\#($0 % 256)/32""# }.joined(separator: ",")
        let big = #"{ "name": "big", "priority": 1, "match": { "src": [\#(src)], "dst": [\#(dst)] }, "path": "b" }"#
        expectLimit(classifier([big]), at: "/classifier/rules", "at most 250000 classifier rules after expansion (got 250500)")
        // Mixed families pair only within a family, as the expansion does.
        var m = ClassifierRule.Match()
        m.src = [IPPrefix("10.0.0.0/8")!, IPPrefix("2001:db8::/32")!, IPPrefix("192.0.2.0/24")!]
        m.dst = [IPPrefix("10.1.0.0/16")!, IPPrefix("2001:db8:1::/48")!]
        m.sport = [PortRange(1), PortRange(2)]
        #expect(Limits.engineRules(of: m) == (2 * 1 + 1 * 1) * 2)
        #expect(Limits.engineRules(of: ClassifierRule.Match()) == 1)
        // Overflow is seen, not wrapped: 2^16 of each list is 2^64 combinations.
        var huge = ClassifierRule.Match()
        huge.src = Array(repeating: IPPrefix("10.0.0.0/8")!, count: 1 << 16)
        huge.dst = huge.src
        huge.sport = Array(repeating: PortRange(1), count: 1 << 16)
        huge.dport = huge.sport
        #expect(Limits.engineRules(of: huge) == nil)
    }

    // MARK: - Names

    @Test func vcpesOwnInterfaceNamesAndLoopbackCannotBeAttachedOrBeTheSegment() {
        for name in ["vb-other", "vl-other", "vw-other", "vx-00000000000a", "wg-other", "vcpe-x", "lo"] {
            let lan = chainText(lan: #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.1.1", "attach": ["eth1", "\#(name)"] }"#)
            let e = errors(lan)
            let d = e.first { $0.pointer.description == "/lan/attach/1" }
            #expect(d?.message.contains("cannot be attached") == true, "\(name): \(e)")
            #expect(d?.location.line == 4, "\(name): \(e)")
            let wan = chainText(wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.1", "segment": "\#(name)" }"#)
            let w = errors(wan).first { $0.pointer.description == "/wan/segment" }
            #expect(w?.message.contains("cannot be the WAN segment") == true, "\(name): \(errors(wan))")
        }
        #expect(errors(chainText(lan: #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.1.1", "attach": ["eth1", "br-lan", "lo0", "vbx"] }"#)).isEmpty)
        // The interface name rules stay.
        for bad in ["a/b", "a b", ".", "..", "abcdefghijklmnop", ""] {
            #expect(errors(chainText(wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.1", "segment": "\#(bad)" }"#))
                .contains { $0.pointer.description == "/wan/segment" }, "\(bad)")
        }
    }

    @Test func twoCustomersWithOneWANAddressOnOneSegmentAreAnError() {
        let a = chainText()
        let b = chainText().replacing("\"acme\"", with: "\"other\"")
        let c = chainText(wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.1", "segment": "wan1" }"#).replacing("\"acme\"", with: "\"third\"")
        let results = ChainDecoder.validate(files: [("a.json", Array(a.utf8)), ("b.json", Array(b.utf8)), ("c.json", Array(c.utf8))])
        #expect(results[0].isValid && results[2].isValid, "\(results[0].diagnostics) \(results[2].diagnostics)")
        #expect(!results[1].isValid)
        let d = results[1].errors.first
        #expect(d?.pointer.description == "/wan/address" && d?.location == SourceLocation(line: 5, column: 23), "\(results[1].errors)")
        #expect(d?.message.contains("customer \"acme\"") == true && d?.message.contains("a.json") == true, "\(String(describing: d))")
        // The same customer in two files is an error too.
        let again = ChainDecoder.validate(files: [("a.json", Array(a.utf8)), ("a2.json", Array(a.utf8))])
        #expect(again[1].errors.contains { $0.pointer.description == "/customer" && $0.message.contains("a.json") }, "\(again[1].errors)")
        // The pure form: one list per file.
        let cross = ChainDecoder.crossCheck([("a.json", ChainDecoder.validate(a)), ("b.json", ChainDecoder.validate(b))])
        #expect(cross.count == 2 && cross[0].isEmpty && cross[1].count == 1)
    }
}
