import Foundation
import Testing
import VCPEController

/// The log line formats, read back by an independent parser (Foundation's JSON).
@Suite struct LogLineTests {
    static let awkward = ["plain", "two words", "quote \" and \\ backslash", "key=value", "line\nbreak\ttab", "ünïcödé", "", "\u{1}\u{7F}",
                          "c1 \u{85}\u{9B}31m", "separators \u{2028}\u{2029}", "bidi \u{202E}gnp.exe\u{202C} \u{2066}x\u{2069}"]

    /// What no line may hold raw: control characters, separators, bidi controls.
    static func hasRawControl(_ line: String) -> Bool {
        line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || [0x2028, 0x2029, 0x200E, 0x200F].contains($0.value)
            || (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value) }
    }

    @Test func jsonLinesParseBackToTheirFields() throws {
        for value in Self.awkward {
            let line = LineLogHandler.line([("msg", "step"), ("object", value)], .json)
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "\(line)")
            #expect(parsed == ["msg": "step", "object": value], "\(line)")
            #expect(!Self.hasRawControl(line), "\(line.debugDescription)")
        }
    }

    @Test func logfmtValuesAreBareOrQuotedOnOneLine() throws {
        for value in Self.awkward {
            let line = LineLogHandler.line([("msg", "step"), ("object", value)], .text)
            #expect(!Self.hasRawControl(line) && line.hasPrefix("msg=step object="), "\(line.debugDescription)")
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
