/// One finding about a descriptor: where it is and what was expected.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable { case error, warning }

    public var severity: Severity
    public var pointer: JSONPointer
    public var location: SourceLocation
    public var message: String

    public init(_ severity: Severity, _ pointer: JSONPointer, _ location: SourceLocation, _ message: String) {
        self.severity = severity
        self.pointer = pointer
        self.location = location
        self.message = message
    }

    /// `LINE:COL: error: /pointer: message`, always one line.
    public var description: String {
        "\(location): \(severity.rawValue): \(pointer.description.oneLine): \(message.oneLine)"
    }

    /// The one-line form with the file name in front, as compilers print it.
    public func formatted(file: String) -> String { "\(file):\(description)" }
}

extension String {
    /// Control characters (a newline inside a quoted value, say) would break the one-line rule.
    var oneLine: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }
}

/// The verdict on one file.
public struct ValidationResult: Sendable {
    public var chain: Chain?
    public var diagnostics: [Diagnostic]

    /// Where the values cross-file checks name are (`/customer`, `/wan/address`).
    public var places: [JSONPointer: SourceLocation] = [:]

    public init(chain: Chain?, diagnostics: [Diagnostic]) {
        self.chain = chain
        self.diagnostics = diagnostics
    }

    /// A file that could not be read at all.
    public static func unreadable(_ reason: String) -> ValidationResult {
        ValidationResult(chain: nil, diagnostics: [Diagnostic(.error, .root, .start, reason)])
    }

    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
    public var isValid: Bool { chain != nil && errors.isEmpty }
}

/// Levenshtein distance, for "did you mean" hints on unknown keys and names.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

/// A "did you mean" hint, or "". The edit distance work is bounded: words and candidates of
/// at most `Limits.suggestionNameLength` bytes, at most `Limits.suggestionCandidates`
/// candidates; otherwise no hint. (Per-file, `DiagnosticSink.suggestion` also bounds how
/// many hints are computed.)
func suggestion(for word: String, among candidates: [String]) -> String {
    guard word.utf8.count <= Limits.suggestionNameLength, candidates.count <= Limits.suggestionCandidates else { return "" }
    let best = candidates.lazy.filter { $0.utf8.count <= Limits.suggestionNameLength }
        .map { ($0, editDistance(word.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
    guard let (name, d) = best, d <= max(1, name.count / 3) else { return "" }
    return "; did you mean \"\(name)\"?"
}

func quotedList(_ words: [String]) -> String {
    switch words.count {
    case 0: return "nothing"
    case 1: return "\"\(words[0])\""
    default: return words.dropLast().map { "\"\($0)\"" }.joined(separator: ", ") + " or \"\(words.last!)\""
    }
}

/// `"a", "b", "c"`: for listing what exists, where "or" would read as a choice. At most 16
/// words, then how many more: a message is one line, and its length must not grow with the
/// file (every unknown name's message lists the names).
func listing(_ words: [String]) -> String {
    let shown = 16
    if words.isEmpty { return "none" }
    let head = words.prefix(shown).map { "\"\($0)\"" }.joined(separator: ", ")
    return words.count > shown ? head + " and \(words.count - shown) more" : head
}
