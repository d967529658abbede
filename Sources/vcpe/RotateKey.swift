import ArgumentParser
import VCPEController
import VCPEDescriptor
import VCPENet

struct RotateKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Give a customer's VPN a new WireGuard private key and apply it.",
        discussion: "Prints the new public key: give it to the peers, the tunnel is down until they have it. The private key stays in the state directory."
    )

    @OptionGroup var state: StateOptions
    @Argument(help: "The customer.") var customer: String

    func run() throws {
        guard KernelNames.isValidName(customer, maxLength: KernelNames.maxCustomerName) else {
            printError("vcpe: \"\(customer)\" is not a customer name")
            throw ExitCode(1)
        }
        let reconciler = try state.lockedReconciler()
        do {
            let (key, r) = try reconciler.rotateKey(customer: customer)
            print("customer \(customer): new public key \(key) (applied \(r.actions) action\(r.actions == 1 ? "" : "s"))")
        } catch {
            printError("vcpe: customer \(customer): \(error)")
            throw ExitCode(1)
        }
    }
}
