import VCPENet
/// Collects diagnostics while a document is read, so that all of them are reported at once.
final class DiagnosticSink {
    private(set) var items: [Diagnostic] = []

    func error(_ v: Value, _ message: String) { items.append(Diagnostic(.error, v.pointer, v.node.location, message)) }
    func warning(_ v: Value, _ message: String) { items.append(Diagnostic(.warning, v.pointer, v.node.location, message)) }
    func add(_ d: Diagnostic) { items.append(d) }

    var errorCount: Int { items.lazy.filter { $0.severity == .error }.count }

    /// "Did you mean" hints for the first `Limits.suggestions` unknown names of the file;
    /// none after that, so a file of many unknown names costs no edit distance work.
    private var suggestionsLeft = Limits.suggestions
    func suggestion(for word: String, among candidates: [String]) -> String {
        guard suggestionsLeft > 0 else { return "" }
        suggestionsLeft -= 1
        return VCPEDescriptor.suggestion(for: word, among: candidates)
    }
}

/// A node with its pointer, read through typed accessors that report what they expected.
struct Value {
    let node: JSONNode
    let pointer: JSONPointer
    let sink: DiagnosticSink

    func error(_ message: String) { sink.error(self, message) }
    func warning(_ message: String) { sink.warning(self, message) }

    /// An object whose keys must all be in `keys`; unknown keys are reported here.
    func object(keys: [String]) -> ObjectReader? {
        guard case .object(let members) = node.kind else {
            error("expected an object, got \(node.shortText)")
            return nil
        }
        for m in members where !keys.contains(m.key) {
            sink.add(Diagnostic(.error, pointer / m.key, m.keyLocation,
                                "unknown key \"\(m.key)\"\(sink.suggestion(for: m.key, among: keys)); expected \(quotedList(keys))"))
        }
        return ObjectReader(value: self, members: members)
    }

    /// Any object, for maps keyed by operator-chosen names (services, paths).
    func map() -> [(key: String, keyLocation: SourceLocation, value: Value)]? {
        guard case .object(let members) = node.kind else {
            error("expected an object, got \(node.shortText)")
            return nil
        }
        return members.map { ($0.key, $0.keyLocation, Value(node: $0.value, pointer: pointer / $0.key, sink: sink)) }
    }

    func array() -> [Value]? {
        guard case .array(let items) = node.kind else {
            error("expected an array, got \(node.shortText)")
            return nil
        }
        return items.enumerated().map { Value(node: $1, pointer: pointer / $0, sink: sink) }
    }

    /// One element or an array of them, as in `"dport": 22` or `"dport": [80, 443]`.
    func oneOrMany() -> [Value] {
        if case .array = node.kind { return array() ?? [] }
        return [self]
    }

    func string(_ what: String = "a string") -> String? {
        guard case .string(let s) = node.kind else {
            error("expected \(what), got \(node.shortText)")
            return nil
        }
        return s
    }

    func bool() -> Bool? {
        guard case .bool(let b) = node.kind else {
            error("expected true or false, got \(node.shortText)")
            return nil
        }
        return b
    }

    /// An integer in `range`; floats, strings and out-of-range numbers are reported.
    func integer(in range: ClosedRange<Int>, _ what: String) -> Int? {
        guard case .number(let text) = node.kind else {
            error("expected \(what), got \(node.shortText)")
            return nil
        }
        guard let n = Int(text) else {
            // JSON number text is ASCII; digits only (after a '-') but no Int is out of range.
            let digits = text.utf8.drop { $0 == UInt8(ascii: "-") }
            let whole = !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            error(whole ? "expected \(what), got \(text.count > 40 ? String(text.prefix(37)) + "..." : text) (out of range \(range.lowerBound)-\(range.upperBound))"
                        : "expected \(what) (a whole number), got \(text.count > 40 ? String(text.prefix(37)) + "..." : text)")
            return nil
        }
        guard range.contains(n) else {
            error("expected \(what), got \(text) (out of range \(range.lowerBound)-\(range.upperBound))")
            return nil
        }
        return n
    }

    /// A string from a fixed set of words.
    func word<E: RawRepresentable & CaseIterable>(_ type: E.Type) -> E? where E.RawValue == String {
        let words = E.allCases.map(\.rawValue)
        guard let s = string("one of \(quotedList(words))") else { return nil }
        guard let e = E(rawValue: s) else {
            error("expected one of \(quotedList(words)), got \"\(s)\"\(sink.suggestion(for: s, among: words))")
            return nil
        }
        return e
    }

    /// A name matching `[a-z][a-z0-9-]*` of at most `maxLength` bytes.
    func name(_ text: String, maxLength: Int, what: String) -> Bool {
        let ok = KernelNames.isValidName(text, maxLength: maxLength)
        if !ok {
            error("expected \(what): lowercase letters, digits and '-', starting with a letter, not ending with '-', at most \(maxLength) characters; got \"\(text)\"")
        }
        return ok
    }
}

/// An object being read; every member not asked for was already reported as unknown.
struct ObjectReader {
    let value: Value
    let members: [JSONMember]

    subscript(_ key: String) -> Value? {
        members.first { $0.key == key }.map { Value(node: $0.value, pointer: value.pointer / key, sink: value.sink) }
    }

    /// A member of an object value without reporting anything (the value was read already).
    static func member(_ v: Value, _ key: String) -> Value? {
        guard case .object(let members) = v.node.kind else { return nil }
        return ObjectReader(value: v, members: members)[key]
    }

    func required(_ key: String, _ what: String) -> Value? {
        if let v = self[key] { return v }
        value.error("missing required key \"\(key)\" (\(what))")
        return nil
    }
}
