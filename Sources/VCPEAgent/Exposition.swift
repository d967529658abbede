import Foundation

/// Prometheus' text format (0.0.4) for what is read at scrape time: a family's HELP and
/// TYPE once, then its samples. Counters read from the kernel and the forwarder are
/// absolute values, not increments, so they are written here rather than kept in a registry.
struct Exposition {
    enum Kind: String { case counter, gauge }

    struct Family {
        let name: String
        let help: String
        let kind: Kind
        /// Label names, in the order each sample gives its values.
        let labels: [String]
        var samples: [(values: [String], value: Double)] = []

        init(_ name: String, _ kind: Kind, labels: [String], help: String) {
            (self.name, self.kind, self.labels, self.help) = (name, kind, labels, help)
        }

        mutating func add(_ values: [String], _ value: Double) {
            precondition(values.count == labels.count, "\(name): \(labels.count) labels, \(values.count) values")
            samples.append((values, value))
        }

        mutating func add(_ values: [String], _ value: UInt64) { add(values, Double(value)) }
    }

    /// Appends families to `out`. A family with no sample is still described: a dashboard
    /// tells "none" from "not exported".
    static func write(_ families: [Family], into out: inout [UInt8]) {
        for f in families {
            out += Array("# HELP \(f.name) \(escapeHelp(f.help))\n# TYPE \(f.name) \(f.kind.rawValue)\n".utf8)
            for s in f.samples {
                out += Array(f.name.utf8)
                if !f.labels.isEmpty {
                    out.append(UInt8(ascii: "{"))
                    for (i, (label, value)) in zip(f.labels, s.values).enumerated() {
                        if i > 0 { out.append(UInt8(ascii: ",")) }
                        out += Array(label.utf8)
                        out += Array("=\"".utf8)
                        escapeLabel(value, into: &out)
                        out.append(UInt8(ascii: "\""))
                    }
                    out.append(UInt8(ascii: "}"))
                }
                out.append(UInt8(ascii: " "))
                out += Array(format(s.value).utf8)
                out.append(UInt8(ascii: "\n"))
            }
        }
    }

    /// Integers without a fraction (counters are byte and packet counts), others as Swift
    /// prints a Double, which Prometheus parses.
    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// Label values: backslash, double quote and line feed escaped, as the format requires.
    static func escapeLabel(_ s: String, into out: inout [UInt8]) {
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            default: out.append(b)
            }
        }
    }

    /// HELP text: backslash and line feed escaped.
    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
