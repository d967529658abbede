import Foundation
import Testing
import VCPEClassifier
import VCPEDatapath
@testable import VCPEForwarder
import VCPENet

/// The broker's and the control socket's messages, as bytes on the wire: what one side
/// sends the other reads back; a line of another version, too long, not JSON, with a
/// field too many or a name that is not a customer's is refused with a reason, never
/// trusted and never a crash.
@Suite struct LineMessageTests {
    static let longest = String(repeating: "a", count: KernelNames.maxCustomerName)

    static func roundTrip<M: LineMessage>(_ message: M) throws -> M {
        let line = try message.line()
        #expect(line.hasSuffix("\n") && line.filter { $0 == "\n" }.count == 1, "\(line)")
        #expect(line.utf8.count - 1 <= M.maxLine)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["version"] as? Int == M.protocolVersion, "\(line)")
        return try M.decode(line)
    }

    static func refusal<M: LineMessage>(_ type: M.Type, _ line: String) -> String? {
        do { _ = try M.decode(line); return nil } catch { return error.description }
    }

    @Test func requestsRoundTrip() throws {
        for r: BrokerRequest in [.open(customer: "acme"), .detach(customer: "a-1"), .open(customer: Self.longest), .detach(customer: Self.longest)] {
            #expect(try Self.roundTrip(r) == r)
        }
        for r: ControlRequest in [.stats, .reload(customer: nil), .reload(customer: "acme"), .reload(customer: Self.longest)] {
            #expect(try Self.roundTrip(r) == r)
        }
        #expect(ControlRequest.reload(customer: "acme").description == "reload acme")
        #expect(ControlRequest.reload(customer: nil).description == "reload" && ControlRequest.stats.description == "stats")
    }

    @Test func theWireShapeIsFlatJSON() throws {
        let line = try BrokerRequest.open(customer: "acme").line()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object.count == 3 && object["request"] as? String == "open" && object["customer"] as? String == "acme", "\(line)")
        #expect(try BrokerRequest.decode(#"{"customer":"acme","request":"detach","version":1}"#) == .detach(customer: "acme"))
        #expect(try ControlRequest.decode(#" { "version" : 1 , "request" : "stats" } "#) == .stats)
    }

    @Test func repliesRoundTrip() throws {
        let opened = BrokerReply(ports: [.init(interface: "lan", ifindex: 2, mac: [2, 0, 0, 0, 0, 1]),
                                         .init(interface: "web-out", ifindex: 7, mac: [2, 0, 0, 0, 0, 2])], cache: true, problem: nil)
        #expect(try Self.roundTrip(opened) == opened)
        #expect(try Self.roundTrip(BrokerReply(error: "refused: not the forwarder's user")).error == "refused: not the forwarder's user")
        let report = ForwarderReport(pid: 42, settings: ForwarderSettings(), chains: [], failed: ["beta": "reading: no such file\nsecond line"])
        let back = try Self.roundTrip(ControlReply(report: report))
        #expect(back.error == nil && back.report?.pid == 42 && back.report?.failed == report.failed)
        #expect(try Self.roundTrip(ControlReply(error: "bad request")).report == nil)
    }

    @Test func anotherVersionIsRefused() throws {
        for line in [#"{"version":2,"request":"open","customer":"acme"}"#, #"{"version":0,"request":"open","customer":"acme"}"#] {
            #expect(Self.refusal(BrokerRequest.self, line)?.contains("protocol version") == true, "\(line)")
        }
        for line in [#"{"request":"open","customer":"acme"}"#, #"{"version":"1","request":"open","customer":"acme"}"#,
                     #"{"version":1.5,"request":"stats"}"#, #"{"version":null,"request":"stats"}"#] {
            #expect(Self.refusal(BrokerRequest.self, line) != nil && Self.refusal(ControlRequest.self, line) != nil, "\(line)")
        }
        #expect(Self.refusal(ControlRequest.self, #"{"version":2,"request":"stats"}"#)?.contains("protocol version 2") == true)
        #expect(Self.refusal(ControlReply.self, #"{"version":2,"error":"x"}"#) != nil)
        #expect(Self.refusal(BrokerReply.self, #"{"version":2,"ports":[]}"#) != nil)
        // The protocols before these: plain words.
        for line in ["open acme", "detach acme", "reload", "reload acme", "stats", ""] {
            #expect(Self.refusal(BrokerRequest.self, line) != nil && Self.refusal(ControlRequest.self, line) != nil, "\(line)")
        }
    }

    @Test func anOversizeLineIsRefused() throws {
        let request = #"{"version":1,"request":"open","customer":"acme"}"#
        let fits = request + String(repeating: " ", count: BrokerRequest.maxLine - request.utf8.count)
        #expect(try BrokerRequest.decode(fits) == .open(customer: "acme"))
        #expect(try BrokerRequest.decode(fits + "\n") == .open(customer: "acme"))
        #expect(Self.refusal(BrokerRequest.self, fits + " ")?.contains("longer than \(BrokerRequest.maxLine) bytes") == true)
        let stats = #"{"version":1,"request":"stats"}"#
        #expect(Self.refusal(ControlRequest.self, stats + String(repeating: " ", count: ControlRequest.maxLine)) != nil)
        #expect(Self.refusal(ControlReply.self, String(repeating: "x", count: ControlReply.maxLine + 1))?.contains("longer than") == true)
        // The bound is small: the broker reads at most it, a byte at a time.
        #expect(BrokerRequest.maxLine <= 256 && ControlRequest.maxLine <= 256)
    }

    @Test func badCustomerNamesAreRefused() throws {
        let names = ["", "Acme", "../etc/passwd", "../acme", "acme/..", "vcpe-acme.fw", "acme-", "-acme", "9acme", "a b", "acme\u{0}",
                     "ac\u{e9}me", String(repeating: "a", count: KernelNames.maxCustomerName + 1)]
        for name in names {
            let quoted = String(decoding: try JSONEncoder().encode(name), as: UTF8.self)
            for verb in ["open", "detach"] {
                let r = Self.refusal(BrokerRequest.self, #"{"version":1,"request":"\#(verb)","customer":\#(quoted)}"#)
                #expect(r?.contains("not a customer name") == true, "\(verb) \(name.debugDescription): \(r ?? "accepted")")
            }
            let r = Self.refusal(ControlRequest.self, #"{"version":1,"request":"reload","customer":\#(quoted)}"#)
            #expect(r?.contains("not a customer name") == true, "reload \(name.debugDescription): \(r ?? "accepted")")
            // Nor does this side send one.
            #expect(throws: MessageRefused.self) { try BrokerRequest.open(customer: name).line() }
            #expect(throws: MessageRefused.self) { try ControlRequest.reload(customer: name).line() }
        }
    }

    @Test func unknownRequestsAndFieldsAreRefused() throws {
        let lines = [
            #"{"version":1,"request":"mount","customer":"acme"}"#,
            #"{"version":1,"request":"open"}"#,
            #"{"version":1,"customer":"acme"}"#,
            #"{"version":1,"request":"open","customer":null}"#,
            #"{"version":1,"request":"open","customer":["acme"]}"#,
            #"{"version":1,"request":"open","customer":"acme","ringFrames":99999999}"#,
            #"{"version":1,"request":"OPEN","customer":"acme"}"#,
            #"{"version":1,"request":"stats","customer":"acme"}"#,
            #"[1,"open","acme"]"#,
            #""open acme""#,
        ]
        for line in lines {
            #expect(Self.refusal(BrokerRequest.self, line) != nil, "\(line)")
        }
        #expect(Self.refusal(BrokerRequest.self, lines[5])?.contains("unknown field ringFrames") == true)
        #expect(Self.refusal(BrokerRequest.self, lines[0])?.contains("unknown request") == true)
        #expect(Self.refusal(BrokerRequest.self, lines[1]) == "missing customer")
        #expect(Self.refusal(ControlRequest.self, lines[7])?.contains("unknown field customer") == true)
        #expect(Self.refusal(ControlRequest.self, #"{"version":1,"request":"reload","customer":"acme","extra":1}"#) != nil)
    }

    @Test func garbageIsRefusedWithoutACrash() throws {
        var rng = SplitMix64(state: 0x5eed)  // the same garbage every run
        for _ in 0..<2_000 {
            let count = Int(rng.next() % 300)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let line = String(decoding: bytes, as: UTF8.self)
            #expect(Self.refusal(BrokerRequest.self, line) != nil)
            #expect(Self.refusal(ControlRequest.self, line) != nil)
            #expect(Self.refusal(ControlReply.self, line) != nil)
            #expect(Self.refusal(BrokerReply.self, line) != nil)
        }
        // Every truncation of a good line.
        let request = try BrokerRequest.open(customer: "acme").line()
        for n in 0..<(request.utf8.count - 1) {
            let cut = String(decoding: Array(request.utf8.prefix(n)), as: UTF8.self)
            #expect(Self.refusal(BrokerRequest.self, cut) != nil, "\(cut)")
        }
        let reply = try ControlReply(report: ForwarderReport(pid: 1, settings: ForwarderSettings(), chains: [], failed: [:])).line()
        for n in stride(from: 0, to: reply.utf8.count - 1, by: 7) {
            #expect(Self.refusal(ControlReply.self, String(decoding: Array(reply.utf8.prefix(n)), as: UTF8.self)) != nil)
        }
        // Deep nesting: within a request's bound, and as deep as a reply's bound allows.
        for depth in [60, 120] {
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            #expect(Self.refusal(ControlRequest.self, nested) != nil)
            #expect(Self.refusal(BrokerRequest.self, #"{"version":1,"request":"open","customer":\#(nested.prefix(60))}"#) != nil)
        }
        let deep = ControlReply.maxLine / 2 - 40
        for (open, close) in [("[", "]"), (#"{"a":"#, "}")] {
            let body = String(repeating: open, count: deep / open.utf8.count) + "1" + String(repeating: close, count: deep / open.utf8.count)
            let line = String(#"{"version":1,"report":"# + body + "}").prefix(ControlReply.maxLine)
            #expect(Self.refusal(ControlReply.self, String(line)) != nil)
        }
        #expect(Self.refusal(ControlReply.self, String(repeating: "[", count: ControlReply.maxLine)) != nil)
    }
}
