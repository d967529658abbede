import ArgumentParser
import Foundation
import VCPEController
import VCPEDescriptor
import VCPENet

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove everything of a customer (namespaces, links, bridge, tables, state) and nothing else.",
        discussion: "Deleting a customer that is already gone succeeds."
    )

    @OptionGroup var state: StateOptions
    @Flag(name: .long, help: "Print the result as JSON.") var json = false
    @Argument(help: "Customer names or descriptor files.") var targets: [String]

    func run() throws {
        var customers: [String] = []
        for t in targets {
            if t.hasSuffix(".json") || FileManager.default.fileExists(atPath: t) {
                customers.append(try loadChains([t])[0].chain.customer)
            } else {
                guard KernelNames.isValidName(t, maxLength: KernelNames.maxCustomerName) else {
                    printError("vcpe: \"\(t)\" is neither a descriptor file nor a customer name")
                    throw ExitCode(1)
                }
                customers.append(t)
            }
        }
        let reconciler = try state.lockedReconciler()
        let results = try reconciler.delete(customers: customers)
        if !json {
            for r in results { print(r.removed.isEmpty ? "customer \(r.customer): nothing to delete" : "customer \(r.customer): deleted (\(r.removed.joined(separator: ", ")))") }
        }
        if json { print(jsonString(results)) }
    }
}
