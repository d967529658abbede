import Foundation
import Testing
import VCPEController

/// The log line formats, read back by an independent parser (Foundation's JSON).
@Suite struct LogLineTests {
    static let awkward = ["plain", "two words", "quote \" and \\ backslash", "key=value", "line\nbreak\ttab", "ünïcödé", "", "\u{1}\u{7F}"]

    @Test func jsonLinesParseBackToTheirFields() throws {
        for value in Self.awkward {
            let line = LineLogHandler.line([("msg", "step"), ("object", value)], .json)
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "\(line)")
            #expect(parsed == ["msg": "step", "object": value], "\(line)")
            #expect(!line.contains("\n"))
        }
    }

    @Test func logfmtValuesAreBareOrQuotedOnOneLine() throws {
        for value in Self.awkward {
            let line = LineLogHandler.line([("msg", "step"), ("object", value)], .text)
            #expect(!line.contains("\n") && line.hasPrefix("msg=step object="), "\(line)")
            let raw = String(line.dropFirst("msg=step object=".count))
            if raw.hasPrefix("\"") {
                // A quoted value is a JSON string literal: it reads back as the value.
                #expect(try JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed) as? String == value, "\(line)")
            } else {
                #expect(raw == value && !value.contains(" ") && !value.contains("="), "\(line)")
            }
        }
    }
}
