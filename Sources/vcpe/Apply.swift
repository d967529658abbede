import ArgumentParser
import VCPEController
import VCPEDescriptor

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the host match descriptors: per customer, all or nothing.",
        discussion: "Every file is validated before anything changes. Re-applying an unchanged descriptor changes nothing; a failed apply rolls that customer back."
    )

    @OptionGroup var state: StateOptions
    @Flag(name: .long, help: "Print the results as JSON.") var json = false
    @Argument(help: "Descriptor files.") var files: [String]

    func run() throws {
        let chains = try loadChains(files)
        let reconciler = try state.lockedReconciler()
        try reconciler.reserve(chains.map(\.0))
        var results: [Reconciler.ApplyResult] = []
        var failed = false
        for (chain, text) in chains {
            do {
                let r = try reconciler.apply(chain, descriptor: text)
                results.append(r)
                if !json { print(r.actions == 0 ? "customer \(r.customer): no changes" : "customer \(r.customer): applied \(r.actions) action\(r.actions == 1 ? "" : "s")") }
            } catch {
                printError("vcpe: customer \(chain.customer): \(error)")
                failed = true
            }
        }
        // Bridges a delete retired are still there if its background gc was interrupted.
        try reconciler.reapRetiredLinks()
        if json { print(jsonString(results)) }
        if failed { throw ExitCode(1) }
    }
}
