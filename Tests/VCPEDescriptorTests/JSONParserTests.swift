import Testing
import VCPETestSupport
import VCPENet
@testable import VCPEDescriptor

@Suite struct JSONParserTests {
    @Test func positionsOfNestedValues() throws {
        let r = try JSONParser.parse("{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"é\": true\n}")
        guard case .object(let m) = r.root.kind else { Issue.record("not an object"); return }
        #expect(m[0].keyLocation == SourceLocation(line: 2, column: 3))
        #expect(m[0].value.location == SourceLocation(line: 2, column: 8))
        guard case .array(let items) = m[0].value.kind else { Issue.record("not an array"); return }
        #expect(items[1].location == SourceLocation(line: 2, column: 12))
        // Columns count scalars: "é" is two bytes but one column.
        #expect(m[1].key == "é")
        #expect(m[1].value.location == SourceLocation(line: 3, column: 8))
    }

    @Test func duplicateKeysAreCollectedNotFatal() throws {
        let r = try JSONParser.parse(#"{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}"#)
        #expect(r.duplicateKeys.map(\.pointer.rfcString) == ["/b/c", "/a"])
        #expect(r.duplicateKeys[1].first == SourceLocation(line: 1, column: 2))
    }

    @Test func escapesAndSurrogates() throws {
        let r = try JSONParser.parse(#"["a\"b\\c\/\n\u00e9\ud83d\ude00"]"#)
        guard case .array(let a) = r.root.kind, case .string(let s) = a[0].kind else { Issue.record("shape"); return }
        #expect(s == "a\"b\\c/\né😀")
    }

    @Test func numbersKeepTheirText() throws {
        let r = try JSONParser.parse("[0, -12, 3.5e2, 18446744073709551616]")
        guard case .array(let a) = r.root.kind else { Issue.record("shape"); return }
        #expect(a.map(\.shortText) == ["0", "-12", "3.5e2", "18446744073709551616"])
    }

    @Test(arguments: [
        ("", 1, 1, "empty"),
        ("{\"a\": 1,}", 1, 9, "trailing comma"),
        ("{\"a\": 01}", 1, 8, "leading zeros"),
        ("{\"a\" 1}", 1, 6, "expected ':'"),
        ("[1, 2", 1, 6, "truncated"),
        ("{\"a\": \"x\ny\"}", 1, 9, "line break inside a string"),
        ("{} {}", 1, 4, "after the end"),
        ("{'a': 1}", 1, 2, "double quotes"),
        ("# c\n{}", 1, 1, "comments"),
        ("{\"a\": tru}", 1, 7, "bare words"),
        ("key: value", 1, 1, "YAML"),
        ("{\"a\": \"\\x\"}", 1, 8, "invalid escape"),
    ])
    func syntaxErrorsSayWhereAndWhat(text: String, line: Int, column: Int, fragment: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed: \(text)")
        } catch {
            #expect(error.location == SourceLocation(line: line, column: column), "\(text): \(error.message)")
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test func invalidUTF8IsReportedNotCrashed() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0x80, 0x22]] {
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(bytes) }
        }
    }

    @Test func depthIsBounded() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        do {
            _ = try JSONParser.parse(deep)
            Issue.record("parsed")
        } catch {
            #expect(error.message.contains("nested"))
        }
        #expect(throws: Never.self) { try JSONParser.parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60)) }
    }

    @Test func pointerEscaping() {
        let p = JSONPointer(["a/b", "m~n", "0"])
        #expect(p.rfcString == "/a~1b/m~0n/0")
        #expect(JSONPointer.root.description == "/")
    }
}
