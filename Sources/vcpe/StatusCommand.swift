import ArgumentParser
import VCPEController

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each applied customer: services and their health, links with counters, firewall rule counters, port forwards."
    )

    @OptionGroup var state: StateOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Argument(help: "A customer (default: all applied customers).") var customer: String?

    func run() throws {
        let reconciler = try state.lockedReconciler()
        let names = customer.map { [$0] } ?? reconciler.store.customers()
        var all: [CustomerStatus] = []
        for n in names {
            guard let s = try reconciler.status(customer: n) else {
                printError("vcpe: no applied customer \"\(n)\"")
                throw ExitCode(1)
            }
            all.append(s)
        }
        if json { print(jsonString(all)) } else { for s in all { print(s.text, terminator: "") } }
    }
}
