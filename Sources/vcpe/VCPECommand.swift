import ArgumentParser

@main
struct VCPECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcpe",
        abstract: "Service chains for virtual CPEs: one JSON descriptor per customer, turned into namespaces, links and nftables.",
        version: BuildInfo.versionLine,
        subcommands: [AgentCommand.self, Validate.self, PlanCommand.self, Apply.self, Delete.self, StatusCommand.self, RotateKey.self, GC.self, Trust.self, Classify.self, GenerateRules.self, ForwarderCommand.self]
    )
}
