import Foundation
import Testing
@testable import VCPEDescriptor
import VCPETestSupport

/// Hostile descriptors: numbers that are not ASCII.
@Suite struct HardeningTests {
    static let router = #"{ "fw": { "type": "firewall" }, "rt": { "type": "router" } }"#

    func expectError(_ text: String, at pointer: String, _ fragment: String = "", sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let r = ChainDecoder.validate(text)
        #expect(!r.isValid, sourceLocation: sourceLocation)
        let d = r.errors.first { $0.pointer.description == pointer }
        #expect(d != nil, "no error at \(pointer): \(r.errors)", sourceLocation: sourceLocation)
        if let d {
            #expect(d.location.line > 1 && d.location.column >= 1, "\(d)", sourceLocation: sourceLocation)
            #expect(!d.description.contains("\n"), sourceLocation: sourceLocation)
            #expect(fragment.isEmpty || d.message.contains(fragment), "\(d)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - 1. Numbers are ASCII digits

    /// "1\u0301" is one Character that sorts between "0" and "9"; it used to pass the digit
    /// check of a port forward's `to` and crash on `Int(...)!`.
    @Test func digitsWithCombiningMarksOrFromOtherScriptsAreErrorsNotCrashes() {
        let forward = { (to: String) in
            chainText(services: #"{ "fw": { "type": "firewall" }, "rt": { "type": "router", "portForwards": [{ "proto": "tcp", "port": 80, "to": "\#(to)" }] } }"#)
        }
        for to in [#"192.168.1.10:1\u0301"#, #"192.168.1.10:\u0668\u0660"#, #"192.168.1.10:+80"#, #"192.168.1.10:8\u20e30"#, "192.168.1.10:00080x"] {
            expectError(forward(to), at: "/services/rt/portForwards/0/to", "address:port")
        }
        let fwRule = { (field: String, value: String) in
            chainText(services: #"{ "fw": { "type": "firewall", "rules": [{ "name": "r", "action": "accept", "proto": "tcp", "\#(field)": "\#(value)" }] }, "rt": { "type": "router" } }"#)
        }
        for v in [#"1\u0301"#, #"8\u0301-90"#, #"80-9\u0301"#, #"\u0661\u0662"#, "+80", "-"] {
            expectError(fwRule("dport", v), at: "/services/fw/rules/0/dport")
        }
        for v in [#"10.0.0.0/8\u0301"#, #"10.0.0.0/\u0668"#, #"1\u0301.0.0.0/8"#, "10.0.0.0/+8", #"2001:db8::\u0661/64"#] {
            expectError(fwRule("src", v), at: "/services/fw/rules/0/src")
        }
        expectError(chainText(wan: #"{ "address": "203.0.113.10/2\u0301", "gateway": "203.0.113.1", "segment": "wan0" }"#), at: "/wan/address")
        let vpn = { (resources: String, endpoint: String) in
            chainText(services: #"""
                { "vpn": { "type": "vpn", "resources": \#(resources), "wireguard": { "address": "10.99.0.2/32", "listenPort": 51820, "peers": [
                    { "name": "hq", "publicKey": "8QGZ+4NRWk6WInN1JEfGBFZhzq205CfY3G5HLS3fRkw=", "endpoint": "\#(endpoint)", "allowedIPs": ["10.0.0.0/8"] } ] } },
                  "rt": { "type": "router" } }
                """#, paths: #"{ "a": ["vpn", "rt"] }"#)
        }
        for m in [#"6\u0301MiB"#, #"\u0666\u0664MiB"#, "+64MiB", " 64MiB", "64 MiB", "0x40MiB", "MiB"] {
            expectError(vpn(#"{ "memory": "\#(m)" }"#, "198.51.100.1:51820"), at: "/services/vpn/resources/memory")
        }
        for e in [#"198.51.100.1:5182\u0301"#, #"[2001:db8::1]:\u0665"#, "198.51.100.1:+51820"] {
            expectError(vpn("{}", e), at: "/services/vpn/wireguard/peers/0/endpoint")
        }
        #expect(ChainDecoder.validate(vpn(#"{ "memory": "64MiB" }"#, "198.51.100.1:51820")).isValid)
        #expect(Resources.parseMemory("64MiB") == 64 << 20)
        #expect(asciiDecimal("1\u{301}", maxDigits: 5) == nil && asciiDecimal("٣", maxDigits: 5) == nil && asciiDecimal("65535", maxDigits: 5) == 65535)
        #expect(IPAddress("1\u{301}.2.3.4") == nil && IPPrefix("10.0.0.0/1\u{301}") == nil && IPAddress("fe80::\u{661}") == nil)
    }
}
