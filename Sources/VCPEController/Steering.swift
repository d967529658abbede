import Foundation
import VCPEForwarder
import VCPENet
import VCPEPolicy

extension ForwarderClient {
    /// What the forwarder runs for `customer`, if it runs it (or has its file). `links`: the
    /// classifier namespace's interfaces by name with their index, when it exists; a link
    /// re-created under a name the forwarder holds shows as a different digest.
    func observe(customer: String, wanted: Bool, links: [String: Int]?, into out: inout HostState) {
        guard wanted || FileManager.default.fileExists(atPath: forwarder.paths.chain(customer)) else { return }
        let report = report()
        if let chain = report?.chains.first(where: { $0.customer == customer }) {
            let namespace = KernelNames.classifierNamespace(customer: customer)
            let stale = chain.interfaces.contains { name, index in links.map { $0[name] != index } ?? true }
            out.insert(.steering(customer: customer, namespace: namespace, rules: chain.rules.count - 1, digest: stale ? "stale links" : chain.digest))
        } else if !wanted, let left = try? forwarder.paths.config(customer) {
            // A configuration left on disk still needs removing.
            out.insert(.steering(customer: customer, namespace: left.namespace, rules: left.rules.count,
                                 digest: report == nil ? "not running" : "not loaded"))
        }
    }
}
