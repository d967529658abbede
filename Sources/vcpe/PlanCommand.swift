import VCPEPolicy
import ArgumentParser
import VCPEController
import VCPEDescriptor

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the actions `apply` would take to make the host match a descriptor."
    )

    @OptionGroup var state: StateOptions
    @Flag(name: .long, help: "Print the plan as JSON on stdout.") var json = false
    @Flag(name: .long, help: "Plan against an empty host instead of observing this one (no root needed).") var emptyHost = false
    @Argument(help: "A descriptor file.") var file: String

    func run() throws {
        let chain = try loadChains([file])[0].chain
        let plan: Plan
        if emptyHost {
            var allocator = TransitAllocator()
            plan = try Planner.plan(chain, observer: EmptyHost(), allocator: &allocator)
        } else {
            plan = try state.lockedReconciler().plan(chain)
        }
        if json { print(jsonString(plan)) } else { print(plan.text, terminator: "") }
    }
}
