import VCPENet

/// What the controller asks of netlink in one namespace: `RouteSocket` is the kernel's;
/// tests bring a model of their own.
public protocol LinkOperations: AnyObject {
    func link(named name: String) throws -> LinkInfo?
    func setLink(_ name: String, up: Bool?, mtu: UInt32?, mac: [UInt8]?, newName: String?) throws
    func setMAC(_ name: String, _ mac: [UInt8]) throws
    func removeLink(_ name: String) throws
    func ensureBridge(_ name: String) throws -> EnsureResult
    /// Creates the pair unless `a` exists here as a veth with a peer.
    func ensureVeth(_ a: VethEnd, _ b: VethEnd, mtu: UInt32?) throws -> EnsureResult
    func enslave(_ port: String, to bridge: String) throws
    func release(_ port: String) throws
    func addresses(on interface: String) throws -> [IPPrefix]
    func ensureAddress(_ p: IPPrefix, on interface: String) throws -> EnsureResult
    func removeAddress(_ p: IPPrefix, on interface: String) throws
    func addRoute(_ route: RouteInfo, replace: Bool) throws
    func removeRoute(_ route: RouteInfo) throws
    func ensureRule(_ rule: RuleInfo, family: IPAddress.Family) throws -> EnsureResult
    func removeRule(_ rule: RuleInfo, family: IPAddress.Family) throws
}

extension LinkOperations {
    public func bringUp(_ name: String) throws { try setLink(name, up: true, mtu: nil, mac: nil, newName: nil) }
}

extension RouteSocket: LinkOperations {}
