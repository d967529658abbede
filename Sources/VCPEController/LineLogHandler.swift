import Foundation
import Logging
import VCPENet

#if canImport(Glibc)
import Glibc
#endif

/// One log event a line on stderr, for journald and log shippers: logfmt
/// (`time=... level=info msg=step customer=acme ...`) or a JSON object. Bootstrapped once by
/// the command line (`VCPE_LOG_FORMAT`); metadata carries the customer, the step and the object.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable { case text, json }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let format: Format
    let write: @Sendable (String) -> Void

    public init(label: String, format: Format, write: @escaping @Sendable (String) -> Void = LineLogHandler.toStandardError) {
        self.label = label
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [("time", Self.timestamp()), ("level", event.level.rawValue), ("msg", "\(event.message)")]
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in all.keys.sorted() { fields.append((key, "\(all[key]!)")) }
        write(Self.line(fields, format) + "\n")
    }

    /// One write(2) a line, its errors ignored: a reader that went away (a closed pipe) must
    /// not stop a plan between two steps. SIGPIPE is ignored by the command line.
    public static let toStandardError: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n } else if n < 0, errno == EINTR { continue } else { return }
        }
    }

    /// The fields in `format`, on one line whatever they hold.
    public static func line(_ fields: [(String, String)], _ format: Format) -> String {
        switch format {
        case .json:
            return "{" + fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        case .text:
            return fields.map { key, value in
                let bare = !value.isEmpty && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "=" && $0 != "\\" }
                return "\(key)=" + (bare ? value : jsonString(value))
            }.joined(separator: " ")
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            // C0, DEL, C1, line and paragraph separators, bidi controls: nothing that moves a
            // terminal's cursor or reorders what a viewer shows.
            case _ where u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029
                || u.value == 0x200E || u.value == 0x200F || (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value):
                out += "\\u" + zeroPaddedHex(u.value, width: 4)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// UTC, milliseconds, as RFC 3339 (`2026-12-07T20:34:18.183Z`): from the clock and
    /// gmtime_r, with no formatter made per line.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String { zeroPadded(v, width: width) }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):"
            + "\(pad(t.tm_sec, 2)).\(zeroPadded(ts.tv_nsec / 1_000_000, width: 3))Z"
    }
}
