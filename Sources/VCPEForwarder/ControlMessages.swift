/// The worker's control socket: one request line from the controller, one reply line back.
public enum ControlRequest: LineMessage, Equatable, CustomStringConvertible {
    /// Puts the chain directory in service: every file, or only the customer's.
    case reload(customer: String?)
    /// The report, nothing changed.
    case stats

    public static let protocolVersion = 1
    public static let maxLine = 256

    /// As the request read before it was JSON: what errors name.
    public var description: String {
        switch self {
        case .reload(let customer?): "reload \(customer)"
        case .reload(nil): "reload"
        case .stats: "stats"
        }
    }

    enum Keys: String, CodingKey { case request, customer }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(String.self, forKey: .request) {
        case "reload":
            try decoder.requireOnly(["request", "customer"])
            self = try .reload(customer: c.contains(.customer) ? c.decodeCustomer(forKey: .customer) : nil)
        case "stats":
            try decoder.requireOnly(["request"])
            self = .stats
        case let verb:
            throw DecodingError.dataCorruptedError(forKey: .request, in: c, debugDescription: "unknown request \(verb.debugDescription)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .reload(let customer):
            try c.encode("reload", forKey: .request)
            if let customer { try c.encodeCustomer(customer, forKey: .customer) }
        case .stats:
            try c.encode("stats", forKey: .request)
        }
    }
}

/// The worker's answer: its report after the request, or why it refused the request.
public struct ControlReply: LineReply {
    public var error: String?
    public var report: ForwarderReport?

    public static let protocolVersion = ControlRequest.protocolVersion
    /// Reports of many chains are long; the controller reads no more than this.
    public static let maxLine = 1 << 20

    public init(error: String) { self.error = error }
    public init(report: ForwarderReport) { self.report = report }
}
