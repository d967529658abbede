/// The namespace broker's protocol: one request line from the worker, one reply line back
/// with the descriptors it made (SCM_RIGHTS).
public enum BrokerRequest: LineMessage, Equatable, CustomStringConvertible {
    /// A chain's ring, link sockets and flow cache, made in its classifier namespace.
    case open(customer: String)
    /// Takes off a chain's flow cache (only one apply no longer wants).
    case detach(customer: String)

    public static let protocolVersion = 1
    /// The longest request (a 12-character customer) is about 60 bytes: the broker reads no more than this.
    public static let maxLine = 128

    public var customer: String {
        switch self {
        case .open(let c), .detach(let c): c
        }
    }

    /// The request's name on the wire.
    public var verb: String {
        switch self {
        case .open: "open"
        case .detach: "detach"
        }
    }

    public var description: String { "\(verb) \(customer)" }

    enum Keys: String, CodingKey { case request, customer }

    public init(from decoder: any Decoder) throws {
        try decoder.requireOnly(["request", "customer"])
        let c = try decoder.container(keyedBy: Keys.self)
        let verb = try c.decode(String.self, forKey: .request)
        let customer = try c.decodeCustomer(forKey: .customer)
        switch verb {
        case "open": self = .open(customer: customer)
        case "detach": self = .detach(customer: customer)
        default: throw DecodingError.dataCorruptedError(forKey: .request, in: c, debugDescription: "unknown request \(verb.debugDescription)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(verb, forKey: .request)
        try c.encodeCustomer(customer, forKey: .customer)
    }
}

/// The broker's answer: an error, or (to `open`) the chain's ports, in the order of the
/// descriptors after the ring's, and whether the flow map's descriptor comes last.
public struct BrokerReply: LineReply, Equatable {
    public var error: String?
    public var ports: [Port]?
    public var cache: Bool?
    /// Why the chain has no flow cache, when it was asked for one.
    public var problem: String?

    public struct Port: Codable, Sendable, Equatable {
        public var interface: String
        public var ifindex: Int32
        public var mac: [UInt8]
    }

    public static let protocolVersion = BrokerRequest.protocolVersion
    public static let maxLine = 1 << 20

    public init(error: String) { self.error = error }
    init(ports: [Port], cache: Bool, problem: String?) {
        self.ports = ports
        self.cache = cache
        self.problem = problem
    }
    /// `detach` done: nothing to say.
    init() {}
}
