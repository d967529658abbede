import Foundation
import PackagePlugin

/// Compiles the eBPF programs (Sources/BPF) with the toolchain's clang for the bpf target
/// and embeds each object in the target as a base64 string, so the `vcpe` binary carries
/// them and no object file has to be found at run time.
@main
struct BPFObject: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let sources = context.package.directoryURL.appending(path: "Sources/BPF")
        let include = context.package.directoryURL.appending(path: "Sources/CDatapath/include")
        let clang = try context.tool(named: "clang").url
        let output = context.pluginWorkDirectoryURL.appending(path: "FlowCacheObject.swift")
        return [
            .buildCommand(
                displayName: "Compiling eBPF flowcache.bpf.c",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [sources.appending(path: "embed.sh").path, clang.path, sources.appending(path: "flowcache.bpf.c").path,
                            include.path, output.path, "flowCacheObject"],
                inputFiles: [sources.appending(path: "flowcache.bpf.c"), sources.appending(path: "embed.sh"),
                             include.appending(path: "flowcache.h")],
                outputFiles: [output]),
        ]
    }
}
