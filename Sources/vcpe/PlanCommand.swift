import ArgumentParser
import VCPEController
import VCPEDescriptor

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the actions `apply` would take to make the host match a descriptor."
    )

    @Flag(name: .long, help: "Print the plan as JSON on stdout.")
    var json = false

    @Argument(help: "A descriptor file.")
    var file: String

    func run() throws {
        let r = DescriptorFile.validate(path: file)
        for d in r.diagnostics { printError(d.formatted(file: file)) }
        guard let chain = r.chain, r.isValid else { throw ExitCode(1) }
        var allocator = TransitAllocator()
        let plan = try Planner.plan(chain, observer: EmptyHost(), allocator: &allocator)
        if json { print(jsonString(plan)) } else { print(plan.text, terminator: "") }
    }
}
