import VCPEDescriptor
import VCPENet
import VCPENetlink

/// A policy routing rule in vcpe's priority range. `inputInterface` "" and `fwmark` 0
/// match anything.
public struct PolicyRuleObject: HostObjectKind {
    public static let kindName = "policyRule"
    public static let rank = 8
    public var namespace: String
    public var inputInterface: String
    public var fwmark: Int
    public var table: Int
    public var priority: Int

    public init(namespace: String, inputInterface: String, fwmark: Int, table: Int, priority: Int) {
        self.namespace = namespace
        self.inputInterface = inputInterface
        self.fwmark = fwmark
        self.table = table
        self.priority = priority
    }

    public var namespaceName: String? { namespace }
    public var id: String { "rule \(priority) iif \(inputInterface) fwmark \(fwmark) in \(namespace)" }
    public var summary: String {
        "rule \(priority): \(inputInterface.isEmpty ? "" : "iif \(inputInterface) ")\(fwmark == 0 ? "" : "fwmark \(fwmark) ")lookup \(table) in \(namespace)"
    }

    var info: RuleInfo {
        RuleInfo(priority: UInt32(priority), table: UInt32(table), inputInterface: inputInterface.isEmpty ? nil : inputInterface,
                 fwmark: fwmark == 0 ? nil : UInt32(fwmark))
    }

    public func create(on host: any HostKernel, _ content: Desired) throws { _ = try host.links(in: namespace).ensureRule(info, family: .v4) }
    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.links(in: namespace).removeRule(info, family: .v4) }

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        for (ns, snap) in view.snapshots {
            for r in snap.rules where DesiredState.policyRulePriorities.contains(Int(r.priority)) {
                out.insert(PolicyRuleObject(namespace: ns, inputInterface: r.inputInterface ?? "", fwmark: Int(r.fwmark ?? 0),
                                            table: Int(r.table), priority: Int(r.priority)))
            }
        }
    }
}

extension HostObject {
    public static func policyRule(namespace: String, inputInterface: String, fwmark: Int, table: Int, priority: Int) -> HostObject {
        HostObject(PolicyRuleObject(namespace: namespace, inputInterface: inputInterface, fwmark: fwmark, table: table, priority: priority))
    }
}
