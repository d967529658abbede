import Foundation
import Testing
import VCPETestSupport
@testable import VCPEDescriptor
import VCPENet

@Suite struct ValidationTests {
    @Test func everyExampleIsValid() {
        #expect(exampleFiles.count >= 5)
        for f in exampleFiles {
            let r = validate(f)
            #expect(r.isValid, "\(f.lastPathComponent): \(r.diagnostics)")
            #expect(r.warnings.isEmpty, "\(f.lastPathComponent): \(r.warnings)")
        }
    }

    @Test func exampleDecodesToTheExpectedModel() throws {
        let chain = try #require(validate(repoFile("chains/multipath.json")).chain)
        #expect(chain.customer == "acme")
        #expect(chain.paths.map(\.name) == ["internet", "corporate", "guest"])
        #expect(chain.classifier?.rules.map(\.name) == ["to-hq", "guests", "p2p"])
        #expect(chain.classifier?.rules[2].target == .drop)
        #expect(chain.classifier?.rules[2].match.dport == [PortRange(6881, 6889)])
        guard case .firewall(let fw) = chain.service(named: "fw")?.kind else { Issue.record("fw"); return }
        #expect(fw.rules[0].dport == [PortRange(80), PortRange(443)])
        #expect(fw.rules[1].src == [IPPrefix("198.51.100.0/24")!])
        #expect(fw.rules[2].action == .reject)
        guard case .vpn(let vpn) = chain.service(named: "vpn")?.kind else { Issue.record("vpn"); return }
        #expect(vpn.peers[0].publicKey.count == 32)
        #expect(vpn.peers[0].endpoint?.description == "198.51.100.1:51820")
    }

    /// Each invalid fixture fails with an error at the place its name describes.
    @Test(arguments: [
        ("unknown-key", "/lan/mtu"), ("port-out-of-range", "/services/fw/rules/3/dport"),
        ("customer-name", "/customer"), ("missing-wan", "/"), ("string-for-number", "/services/vpn/wireguard/listenPort"),
        ("unknown-proto", "/services/fw/rules/0/proto"), ("path-and-action", "/classifier/rules/0/action"),
        ("path-name-too-long", "/paths/internet-access"), ("ports-without-tcp-udp", "/services/fw/rules/0/dport"),
        ("bad-default", "/services/fw/default"), ("bad-public-key", "/services/vpn/wireguard/peers/0/publicKey"),
        ("reserved-service-name", "/services/lan"), ("bad-forward-target", "/services/rt/portForwards/0/to"),
        ("truncated", "/services/fw/rules/0"), ("comment", "/"), ("yaml", "/"), ("duplicate-key", "/customer"),
        ("trailing-comma", "/lan"), ("own-interface-name", "/lan/attach/1"), ("too-many-paths", "/paths"),
    ])
    func invalidFixture(name: String, pointer: String) {
        let r = validate(repoFile("chains/invalid/\(name).json"))
        #expect(!r.isValid)
        #expect(r.errors.map(\.pointer.description).contains(pointer), "\(r.errors)")
    }

    @Test func everyInvalidFixtureIsListed() {
        #expect(invalidFixtures.count == 20)
    }

    private func errors(_ text: String) -> [String] {
        ChainDecoder.validate(text).errors.map { "\($0.pointer) \($0.message)" }
    }

    @Test func semanticChecks() {
        let cases: [(String, String, String)] = [
            (chainText(lan: #"{ "subnet": "192.168.1.7/24", "gateway": "192.168.1.1" }"#), "/lan/subnet", "did you mean \"192.168.1.0/24\""),
            (chainText(lan: #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.2.1" }"#), "/lan/gateway", "inside 192.168.1.0/24"),
            (chainText(lan: #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.1.255" }"#), "/lan/gateway", "broadcast"),
            (chainText(wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.114.1", "segment": "wan0" }"#), "/wan/gateway", "inside"),
            (chainText(wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.10", "segment": "wan0" }"#), "/wan/gateway", "WAN address itself"),
            (chainText(wan: #"{ "address": "192.168.1.10/16", "gateway": "192.168.0.1", "segment": "wan0" }"#), "/wan/address", "overlaps the LAN subnet"),
            (chainText(lan: #"{ "subnet": "169.254.1.0/24", "gateway": "169.254.1.1" }"#), "/lan/subnet", "transit pool"),
            (chainText(wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.1", "segment": "a-very-long-bridge" }"#), "/wan/segment", "interface name"),
            (chainText(paths: #"{ "internet": ["rt", "fw"] }"#), "/paths/internet/1", "end at the router"),
            (chainText(paths: #"{ "internet": ["fw", "fw", "rt"] }"#), "/paths/internet/1", "twice"),
            (chainText(paths: #"{ "internet": ["fw", "rtt"] }"#), "/paths/internet/1", "did you mean \"rt\""),
            (chainText(paths: #"{ "a": ["fw", "rt"], "b": ["rt"] }"#), "/paths", "needs a \"classifier\""),
            (chainText(services: #"{ "fw": { "type": "firewall" } }"#, paths: #"{ "a": ["fw"] }"#), "/services", "one service of type \"router\""),
            (chainText(services: #"{ "rt": { "type": "router" }, "rt2": { "type": "router" } }"#, paths: #"{ "a": ["rt"] }"#), "/services/rt2", "exactly one router"),
            (chainText(services: #"{ "fw": { "type": "firewall", "rules": [{ "name": "x", "action": "accept", "proto": "tcp", "dport": "90-80" }] }, "rt": { "type": "router" } }"#), "/services/fw/rules/0/dport", "did you mean \"80-90\""),
            (chainText(services: #"{ "fw": { "type": "firewall", "rules": [{ "name": "x", "action": "accept" }, { "name": "x", "action": "drop" }] }, "rt": { "type": "router" } }"#), "/services/fw/rules/1", "used by rule 0"),
            (chainText(services: #"{ "fw": { "type": "firewall", "rules": [{ "name": "x", "action": "accept", "src": "10.0.0.0/8", "dst": "2001:db8::/32" }] }, "rt": { "type": "router" } }"#), "/services/fw/rules/0/dst", "IP versions"),
            (chainText(services: #"{ "fw": { "type": "firewall", "nat": "none" }, "rt": { "type": "router" } }"#), "/services/fw/nat", "does not belong to a firewall"),
            (chainText(services: #"{ "fw": { "type": "firewal" }, "rt": { "type": "router" } }"#), "/services/fw/type", "did you mean \"firewall\""),
            (chainText(services: #"{ "fw": { "type": "firewall" }, "rt": { "type": "router", "portForwards": [{ "proto": "tcp", "port": 80, "to": "10.0.0.5:80" }] } }"#), "/services/rt/portForwards/0/to", "inside 192.168.1.0/24"),
            (chainText(services: #"{ "fw": { "type": "firewall" }, "rt": { "type": "router", "portForwards": [{ "proto": "tcp", "port": "80-90", "to": "192.168.1.5" }, { "proto": "tcp", "port": 85, "to": "192.168.1.6" }] } }"#), "/services/rt/portForwards/1", "overlaps port forward 0"),
            (chainText(services: #"{ "vpn": { "type": "vpn", "wireguard": { "address": "10.99.0.2/32", "listenPort": 51820, "peers": [{ "name": "hq", "publicKey": "8QGZ+4NRWk6WInN1JEfGBFZhzq205CfY3G5HLS3fRkw=", "allowedIPs": ["10.0.0.0/8"] }] } }, "rt": { "type": "router", "portForwards": [{ "proto": "udp", "port": "51800-51900", "to": "192.168.1.5" }] } }"#, paths: #"{ "internet": ["vpn", "rt"] }"#), "/services/vpn/wireguard/listenPort", "port forward 0"),
            (chainText(extra: #""classifier": { "default": "nowhere" }"#), "/classifier/default", "no path named"),
            (chainText(extra: #""classifier": { "default": "internet", "rules": [{ "name": "a", "priority": 1, "match": {}, "path": "x" }] }"#), "/classifier/rules/0/path", "no path named"),
            (chainText(extra: #""classifier": { "default": "internet", "rules": [{ "name": "a", "priority": 1, "match": {}, "path": "internet" }, { "name": "b", "priority": 1, "match": {}, "path": "internet" }] }"#), "/classifier/rules/1", "priority 1 is used"),
            (chainText(extra: #""classifier": { "default": "internet", "rules": [{ "name": "a", "priority": 1, "match": { "dscp": 64 }, "action": "drop" }] }"#), "/classifier/rules/0/match/dscp", "0-63"),
        ]
        for (text, pointer, fragment) in cases {
            let errs = errors(text)
            #expect(errs.contains { $0.hasPrefix(pointer + " ") && $0.contains(fragment) }, "wanted \(pointer) ~ \(fragment), got \(errs)")
        }
    }

    /// A vpn service's container limits: units, ranges, and only where a process runs.
    @Test func resourcesOfAVPNService() throws {
        func vpn(_ resources: String) -> String {
            chainText(services: """
                { "vpn": { "type": "vpn", "resources": \(resources), "wireguard": { "address": "10.99.0.2/32", "listenPort": 51820, "peers": [
                    { "name": "hq", "publicKey": "8QGZ+4NRWk6WInN1JEfGBFZhzq205CfY3G5HLS3fRkw=", "allowedIPs": ["10.0.0.0/8"] } ] } },
                  "rt": { "type": "router" } }
                """, paths: #"{ "a": ["vpn", "rt"] }"#)
        }
        let chain = try #require(ChainDecoder.validate(vpn(#"{ "memory": "96MiB", "pids": 40 }"#)).chain)
        guard case .vpn(let v) = chain.service(named: "vpn")?.kind else { Issue.record("vpn"); return }
        #expect(v.resources == Resources(memoryBytes: 96 << 20, pids: 40))
        guard case .vpn(let d) = ChainDecoder.validate(vpn(#"{ "pids": 20 }"#)).chain?.service(named: "vpn")?.kind else { Issue.record("vpn"); return }
        #expect(d.resources == Resources(memoryBytes: Resources.vpnDefault.memoryBytes, pids: 20))
        for (resources, pointer, fragment) in [
            (#"{ "memory": "64MB" }"#, "/services/vpn/resources/memory", "then MiB or GiB"),
            (#"{ "memory": 67108864 }"#, "/services/vpn/resources/memory", "a size like"),
            (#"{ "memory": "8MiB" }"#, "/services/vpn/resources/memory", "from 16MiB to 64GiB"),
            (#"{ "memory": "65GiB" }"#, "/services/vpn/resources/memory", "from 16MiB to 64GiB"),
            (#"{ "memory": "99999999999999999GiB" }"#, "/services/vpn/resources/memory", "then MiB or GiB"),
            (#"{ "pids": 2 }"#, "/services/vpn/resources/pids", "out of range 8-65536"),
            (#"{ "cpu": 1 }"#, "/services/vpn/resources/cpu", "expected"),
        ] {
            let errs = errors(vpn(resources))
            #expect(errs.contains { $0.hasPrefix(pointer + " ") && $0.contains(fragment) }, "wanted \(pointer) ~ \(fragment), got \(errs)")
        }
        // A firewall is kernel configuration: no process to limit.
        let fw = errors(chainText(services: #"{ "fw": { "type": "firewall", "resources": { "pids": 10 } }, "rt": { "type": "router" } }"#))
        #expect(fw.contains { $0.hasPrefix("/services/fw/resources ") && $0.contains("does not belong to a firewall") }, "\(fw)")
    }

    @Test func allErrorsOfAFileAreReportedTogether() {
        let text = chainText(lan: #"{ "subnet": "192.168.1.7/24", "gateway": "192.168.1.1", "x": 1 }"#,
                             wan: #"{ "address": "203.0.113.10/24", "gateway": "203.0.114.1", "segment": "wan0" }"#,
                             paths: #"{ "internet": ["fw", "rtt"] }"#)
        let e = ChainDecoder.validate(text).errors.map(\.pointer.description)
        #expect(Set(e).isSuperset(of: ["/lan/subnet", "/lan/x", "/wan/gateway", "/paths/internet/1"]), "\(e)")
    }

    @Test func shadowedClassifierRuleIsAWarning() {
        let text = chainText(paths: #"{ "a": ["fw", "rt"], "b": ["rt"] }"#, extra: """
            "classifier": { "default": "a", "rules": [
              { "name": "wide", "priority": 5, "match": { "dst": "10.0.0.0/8" }, "path": "b" },
              { "name": "narrow", "priority": 9, "match": { "dst": "10.1.0.0/16", "proto": "tcp", "dport": 80 }, "path": "a" },
              { "name": "other", "priority": 7, "match": { "dst": "11.0.0.0/8" }, "path": "a" } ] }
            """)
        let r = ChainDecoder.validate(text)
        #expect(r.isValid, "\(r.diagnostics)")
        #expect(r.warnings.map(\.pointer.description) == ["/classifier/rules/1"])
        #expect(r.warnings[0].message.contains("shadowed by rule \"wide\""))
        #expect(r.chain?.classifier?.rules.map(\.name) == ["wide", "other", "narrow"])
    }

    @Test func vpnAddressMayLieInsideAllowedIPs() {
        let text = chainText(services: """
            { "vpn": { "type": "vpn", "wireguard": { "address": "10.99.0.2/32", "listenPort": 51820, "peers": [
                { "name": "hq", "publicKey": "8QGZ+4NRWk6WInN1JEfGBFZhzq205CfY3G5HLS3fRkw=", "allowedIPs": ["10.0.0.0/8"] },
                { "name": "lab", "publicKey": "swiEe0JzoNOqIiET7Y8bg01cSvwPY0YumgABqQnK0CY=", "allowedIPs": ["192.168.1.0/25"] } ] } },
              "rt": { "type": "router" } }
            """, paths: #"{ "a": ["vpn", "rt"] }"#)
        let e = ChainDecoder.validate(text).errors
        #expect(e.count == 1, "\(e)")
        #expect(e.first?.message.contains("overlaps the LAN subnet") == true)
    }

    /// A broken peer before the others must not shift where their errors point.
    @Test func peerErrorsPointAtTheirOwnPeer() {
        let text = chainText(services: """
            { "vpn": { "type": "vpn", "wireguard": { "address": "10.99.0.2/32", "listenPort": 51820, "peers": [
                { "name": "broken", "publicKey": "nope", "allowedIPs": ["172.16.0.0/12"] },
                { "name": "hq", "publicKey": "8QGZ+4NRWk6WInN1JEfGBFZhzq205CfY3G5HLS3fRkw=", "allowedIPs": ["10.0.0.0/8"] },
                { "name": "lab", "publicKey": "swiEe0JzoNOqIiET7Y8bg01cSvwPY0YumgABqQnK0CY=",
                  "allowedIPs": ["10.1.0.0/16"] } ] } },
              "rt": { "type": "router" } }
            """, paths: #"{ "a": ["vpn", "rt"] }"#)
        let e = ChainDecoder.validate(text).errors
        let overlap = e.first { $0.message.contains("overlap 10.0.0.0/8") }
        #expect(overlap?.pointer.description == "/services/vpn/wireguard/peers/2/allowedIPs", "\(e)")
        #expect(overlap?.location.line == 10, "\(e)")
    }

    @Test func derivedInterfaceNamesFitIFNAMSIZ() throws {
        for f in exampleFiles {
            let chain = try #require(validate(f).chain)
            for n in Topology.resolve(chain).interfaceNames { #expect(KernelNames.isValidInterfaceName(n), "\(n)") }
        }
        // The longest names the grammar allows still fit.
        let longest = chainText(paths: #"{ "abcdefghijk": ["fw", "rt"] }"#).replacing("\"acme\"", with: "\"abcdefghijkl\"")
        let chain = try #require(ChainDecoder.validate(longest).chain)
        #expect(Topology.resolve(chain).interfaceNames.allSatisfy { $0.utf8.count <= 15 })
    }

    @Test func addressParsing() {
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPAddress("::ffff:192.0.2.1")?.description == "::ffff:c000:201")
        #expect(IPAddress("1:0:0:2:0:0:0:3")?.description == "1:0:0:2::3")
        for bad in ["1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "12345::", "1.2.3.4.5", ""] { #expect(IPAddress(bad) == nil, "\(bad)") }
        #expect(IPPrefix("10.0.0.0/8")!.contains(IPPrefix("10.1.0.0/16")!))
        #expect(!IPPrefix("10.1.0.0/16")!.contains(IPPrefix("10.0.0.0/8")!))
        #expect(IPPrefix("2001:db8::/32")!.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(IPPrefix("0.0.0.0/0")!.contains(IPAddress("255.255.255.255")!))
        #expect(IPPrefix("10.0.0.0/33") == nil)
    }
}
