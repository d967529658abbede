import VCPENet
/// A fatal syntax error: parsing cannot go on past it.
public struct JSONSyntaxError: Error, Sendable {
    public var location: SourceLocation
    /// The value being read when parsing stopped.
    public var pointer: JSONPointer
    public var message: String
}

/// A strict RFC 8259 parser that records where every value and key starts.
/// Duplicate keys are not fatal: they are collected so that all of a file's problems
/// are reported together.
public struct JSONParser {
    public static let maxDepth = 64

    public struct Result: Sendable {
        public var root: JSONNode
        /// Duplicate keys: the pointer of the repeated member and its location.
        public var duplicateKeys: [(pointer: JSONPointer, location: SourceLocation, first: SourceLocation)]
    }

    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1
    private var column = 1
    private var duplicates: [(pointer: JSONPointer, location: SourceLocation, first: SourceLocation)] = []
    private var current = JSONPointer.root

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> Result {
        var p = JSONParser(bytes)
        return try p.parseDocument()
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> Result {
        try parse(Array(text.utf8))
    }

    private var here: SourceLocation { SourceLocation(line: line, column: column) }

    private func fail(_ message: String, at loc: SourceLocation? = nil) -> JSONSyntaxError {
        JSONSyntaxError(location: loc ?? here, pointer: current, message: message)
    }

    private mutating func parseDocument() throws(JSONSyntaxError) -> Result {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { pos = 3 }
        skipWhitespace()
        guard pos < bytes.count else {
            throw fail(bytes.isEmpty ? "the file is empty; expected a JSON object"
                                     : "the file holds only white space; expected a JSON object")
        }
        let root = try parseValue(pointer: .root, depth: 0)
        skipWhitespace()
        if pos < bytes.count {
            throw fail("unexpected \(describe(bytes[pos])) after the end of the JSON value; expected end of file")
        }
        return Result(root: root, duplicateKeys: duplicates)
    }

    // MARK: - Bytes and positions

    private mutating func advance() {
        let b = bytes[pos]
        pos += 1
        if b == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if b & 0xC0 != 0x80 {
            column += 1  // count scalars, not continuation bytes
        }
    }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: advance()
            default: return
            }
        }
    }

    private func describe(_ b: UInt8) -> String {
        switch b {
        case 0x20...0x7E: "'\(Character(Unicode.Scalar(b)))'"
        default: "byte 0x" + zeroPaddedHex(b, width: 2).uppercased()
        }
    }

    // MARK: - Values

    private mutating func parseValue(pointer: JSONPointer, depth: Int) throws(JSONSyntaxError) -> JSONNode {
        let outer = current
        current = pointer
        defer { current = outer }
        guard depth <= Self.maxDepth else {
            throw fail("values are nested more than \(Self.maxDepth) deep")
        }
        skipWhitespace()
        guard pos < bytes.count else {
            throw fail("unexpected end of file; expected a value (the file looks truncated)")
        }
        let start = here
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(pointer: pointer, depth: depth)
        case UInt8(ascii: "["): return try parseArray(pointer: pointer, depth: depth)
        case UInt8(ascii: "\""): return JSONNode(kind: .string(try parseString()), location: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return JSONNode(kind: .number(try parseNumber()), location: start)
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            if let node = try parseLiteral(start: start) { return node }
            throw notAValue()
        default:
            throw notAValue()
        }
    }

    private func notAValue() -> JSONSyntaxError {
        let b = bytes[pos]
        if b == UInt8(ascii: "/") { return fail("comments are not allowed in JSON") }
        if b == UInt8(ascii: "#") { return fail("comments are not allowed in JSON ('#' is YAML; descriptors are JSON only)") }
        if b == UInt8(ascii: "'") { return fail("strings take double quotes in JSON, not single quotes") }
        if pos == firstContentOffset, isLetter(b) || b == UInt8(ascii: "-") {
            return fail("expected a JSON object; this looks like YAML or plain text, and descriptors are JSON only")
        }
        if isLetter(b) { return fail("expected a value; bare words need double quotes in JSON") }
        return fail("unexpected \(describe(b)); expected a value (object, array, string, number, true, false or null)")
    }

    private var firstContentOffset: Int {
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        return i
    }

    private func isLetter(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b | 0x20)
    }

    private mutating func parseLiteral(start: SourceLocation) throws(JSONSyntaxError) -> JSONNode? {
        for (word, kind) in [("true", JSONNode.Kind.bool(true)), ("false", .bool(false)), ("null", .null)] {
            let w = Array(word.utf8)
            if bytes.count - pos >= w.count, Array(bytes[pos..<pos + w.count]) == w {
                let end = pos + w.count
                if end < bytes.count, isLetter(bytes[end]) { return nil }
                for _ in 0..<w.count { advance() }
                return JSONNode(kind: kind, location: start)
            }
        }
        return nil
    }

    private mutating func parseObject(pointer: JSONPointer, depth: Int) throws(JSONSyntaxError) -> JSONNode {
        let open = here
        advance()
        var members: [JSONMember] = []
        var seen: [String: SourceLocation] = [:]
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
            advance()
            return JSONNode(kind: .object([]), location: open)
        }
        while true {
            skipWhitespace()
            guard pos < bytes.count else {
                throw fail("unexpected end of file; expected '}' to close the object opened at \(open) (the file looks truncated)")
            }
            guard bytes[pos] == UInt8(ascii: "\"") else {
                if bytes[pos] == UInt8(ascii: "}") { throw fail("trailing comma before '}' is not allowed in JSON") }
                if bytes[pos] == UInt8(ascii: "/") || bytes[pos] == UInt8(ascii: "#") { throw notAValue() }
                throw fail("unexpected \(describe(bytes[pos])); expected a key in double quotes")
            }
            let keyLoc = here
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count else {
                throw fail("unexpected end of file; expected ':' after key \"\(key)\" (the file looks truncated)")
            }
            guard bytes[pos] == UInt8(ascii: ":") else {
                throw fail("unexpected \(describe(bytes[pos])); expected ':' after key \"\(key)\"")
            }
            advance()
            let value = try parseValue(pointer: pointer / key, depth: depth + 1)
            if let first = seen[key] {
                duplicates.append((pointer / key, keyLoc, first))
            } else {
                seen[key] = keyLoc
                members.append(JSONMember(key: key, keyLocation: keyLoc, value: value))
            }
            skipWhitespace()
            guard pos < bytes.count else {
                throw fail("unexpected end of file; expected ',' or '}' to close the object opened at \(open) (the file looks truncated)")
            }
            switch bytes[pos] {
            case UInt8(ascii: ","): advance()
            case UInt8(ascii: "}"):
                advance()
                return JSONNode(kind: .object(members), location: open)
            case UInt8(ascii: "/"), UInt8(ascii: "#"): throw notAValue()
            default: throw fail("unexpected \(describe(bytes[pos])); expected ',' or '}' in the object opened at \(open)")
            }
        }
    }

    private mutating func parseArray(pointer: JSONPointer, depth: Int) throws(JSONSyntaxError) -> JSONNode {
        let open = here
        advance()
        var items: [JSONNode] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
            advance()
            return JSONNode(kind: .array([]), location: open)
        }
        while true {
            skipWhitespace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
                throw fail("trailing comma before ']' is not allowed in JSON")
            }
            items.append(try parseValue(pointer: pointer / items.count, depth: depth + 1))
            skipWhitespace()
            guard pos < bytes.count else {
                throw fail("unexpected end of file; expected ',' or ']' to close the array opened at \(open) (the file looks truncated)")
            }
            switch bytes[pos] {
            case UInt8(ascii: ","): advance()
            case UInt8(ascii: "]"):
                advance()
                return JSONNode(kind: .array(items), location: open)
            case UInt8(ascii: "/"), UInt8(ascii: "#"): throw notAValue()
            default: throw fail("unexpected \(describe(bytes[pos])); expected ',' or ']' in the array opened at \(open)")
            }
        }
    }

    // MARK: - Strings

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        let open = here
        advance()  // opening quote
        var scalars = String.UnicodeScalarView()
        while true {
            guard pos < bytes.count else {
                throw fail("unexpected end of file inside the string that starts at \(open) (the file looks truncated)")
            }
            let b = bytes[pos]
            switch b {
            case UInt8(ascii: "\""):
                advance()
                return String(scalars)
            case UInt8(ascii: "\\"):
                let backslash = here
                advance()
                scalars.append(try parseEscape(backslash: backslash))
            case 0x00..<0x20:
                throw fail(b == 0x0A ? "line break inside a string (missing closing quote?)"
                                     : "control character \(describe(b)) inside a string; escape it")
            case 0x20..<0x80:
                scalars.append(Unicode.Scalar(b))
                advance()
            default:
                scalars.append(try parseUTF8Scalar())
            }
        }
    }

    private mutating func parseUTF8Scalar() throws(JSONSyntaxError) -> Unicode.Scalar {
        let b0 = bytes[pos]
        let (count, initial): (Int, UInt32) = switch b0 {
        case 0xC2...0xDF: (2, UInt32(b0 & 0x1F))
        case 0xE0...0xEF: (3, UInt32(b0 & 0x0F))
        case 0xF0...0xF4: (4, UInt32(b0 & 0x07))
        default: (0, 0)
        }
        guard count > 0, pos + count <= bytes.count else {
            throw fail("invalid UTF-8 (\(describe(b0))); descriptors are UTF-8 text")
        }
        var value = initial
        for i in 1..<count {
            let b = bytes[pos + i]
            guard b & 0xC0 == 0x80 else { throw fail("invalid UTF-8 (\(describe(b0)) followed by \(describe(b))); descriptors are UTF-8 text") }
            value = value << 6 | UInt32(b & 0x3F)
        }
        let minimum: UInt32 = [0, 0, 0x80, 0x800, 0x10000][count]
        guard value >= minimum, let scalar = Unicode.Scalar(value) else {
            throw fail("invalid UTF-8 (overlong or surrogate sequence); descriptors are UTF-8 text")
        }
        for _ in 0..<count { advance() }
        return scalar
    }

    private mutating func parseEscape(backslash: SourceLocation) throws(JSONSyntaxError) -> Unicode.Scalar {
        guard pos < bytes.count else { throw fail("unexpected end of file in an escape sequence") }
        let b = bytes[pos]
        advance()
        switch b {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let hi = try parseHex4()
            if (0xD800..<0xDC00).contains(hi) {
                guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                    throw fail("lone UTF-16 surrogate in \\u escape")
                }
                advance(); advance()
                let lo = try parseHex4()
                guard (0xDC00..<0xE000).contains(lo) else { throw fail("invalid UTF-16 surrogate pair in \\u escape") }
                return Unicode.Scalar(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))!
            }
            guard let s = Unicode.Scalar(hi) else { throw fail("lone UTF-16 surrogate in \\u escape") }
            return s
        default:
            // Point at the backslash (the escaped byte may be a line break: no arithmetic on columns).
            throw fail("invalid escape: backslash followed by \(describe(b)) in a string", at: backslash)
        }
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard pos < bytes.count, let d = hexValue(bytes[pos]) else {
                throw fail("expected four hex digits after \\u")
            }
            v = v << 4 | d
            advance()
        }
        return v
    }

    private func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    // MARK: - Numbers

    private mutating func parseNumber() throws(JSONSyntaxError) -> String {
        let start = pos
        func isDigit(_ b: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) }
        if bytes[pos] == UInt8(ascii: "-") { advance() }
        guard pos < bytes.count, isDigit(bytes[pos]) else { throw fail("expected a digit after '-'") }
        if bytes[pos] == UInt8(ascii: "0") {
            advance()
            if pos < bytes.count, isDigit(bytes[pos]) { throw fail("numbers must not have leading zeros in JSON") }
        } else {
            while pos < bytes.count, isDigit(bytes[pos]) { advance() }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            advance()
            guard pos < bytes.count, isDigit(bytes[pos]) else { throw fail("expected a digit after '.'") }
            while pos < bytes.count, isDigit(bytes[pos]) { advance() }
        }
        if pos < bytes.count, bytes[pos] | 0x20 == UInt8(ascii: "e") {
            advance()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { advance() }
            guard pos < bytes.count, isDigit(bytes[pos]) else { throw fail("expected a digit in the exponent") }
            while pos < bytes.count, isDigit(bytes[pos]) { advance() }
        }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }
}
