import Foundation
import Testing
import VCPETestSupport

/// What ships: `vcpe --version`, the agent's systemd unit and, once .ci/run has installed
/// dist/vcpe_*.deb and set VCPE_INSTALLED_PACKAGE=1, the installed Debian package.
@Suite struct ShippingTests {
    static let unit = repoFile("packaging/systemd/vcpe-agent.service")

    @Test func versionIsTheVersionFileAndTheCommitBuilt() throws {
        let r = try run(vcpeBinary, ["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        let version = try String(contentsOf: repoFile("VERSION"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard FileManager.default.fileExists(atPath: repoFile(".git").path) else {
            #expect(r.stdout == "vcpe \(version) (commit unknown)\n")
            return
        }
        let commit = try git(["rev-parse", "--short=7", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let clean = try run(URL(fileURLWithPath: "/usr/bin/git"), ["-C", repositoryRoot.path, "diff", "--quiet", "HEAD", "--"]).status == 0
        #expect(r.stdout == (clean ? "vcpe \(version) (commit \(commit), built from a clean tree)\n"
                                   : "vcpe \(version) (commit \(commit)-dirty, built from a tree with uncommitted changes)\n"))
    }

    /// systemd-analyze verify needs ExecStart's program to exist: a copy of the unit runs the
    /// built binary. No man page check here (the package installs it; the test below).
    @Test func agentUnitVerifies() throws {
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(text.contains("\nExecStart=/usr/bin/vcpe agent\n"))
        let r = try verify(unitText: text.replacingOccurrences(of: "\nExecStart=/usr/bin/vcpe ", with: "\nExecStart=\(vcpeBinary.path) "))
        #expect(r.status == 0 && r.stdout.isEmpty && r.stderr.isEmpty, "systemd-analyze verify: \(r.stdout)\(r.stderr)")
    }

    /// verify exits 0 on a misspelt or unparsable setting (systemd ignores it), so the tests
    /// above take any output as a failure; this proves such a unit gives some.
    @Test func verifyReportsABrokenUnit() throws {
        for broken in ["KilMode=process", "KillMode=proces", "Restart=sometimes"] {
            let r = try verify(unitText: "[Service]\nExecStart=\(vcpeBinary.path) agent\n\(broken)\n")
            #expect(!(r.stdout + r.stderr).isEmpty, "no complaint about \(broken)")
        }
    }

    /// The settings the agent cannot run with: any that gives the service its own mount
    /// namespace hides its /run/netns and bpffs mounts from the host; the killing of the
    /// whole cgroup takes the forwarder down with the agent; the rest take away what runc
    /// and the agent need (namespaces, capabilities, privileges).
    @Test func agentUnitKeepsChainsAndMountsOnTheHost() throws {
        let settings = try String(contentsOf: Self.unit, encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasPrefix("#") && $0.contains("=") }
            .map { $0.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) } }
        #expect(settings.contains(["KillMode", "process"]))
        #expect(settings.contains(["StateDirectoryMode", "0700"]))
        let forbidden: Set = ["ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts", "PrivateNetwork",
                              "PrivateUsers", "PrivateIPC", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                              "ProtectControlGroups", "ProtectHostname", "ProtectClock", "ProtectProc", "ProcSubset", "ReadWritePaths",
                              "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths", "BindPaths", "BindReadOnlyPaths",
                              "TemporaryFileSystem", "RootDirectory", "RootImage", "MountFlags", "DynamicUser", "NetworkNamespacePath",
                              "RestrictNamespaces", "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "User",
                              "SystemCallFilter", "RestrictAddressFamilies"]
        #expect(settings.filter { forbidden.contains($0[0]) }.isEmpty)
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["VCPE_INSTALLED_PACKAGE"] == "1",
                   "VCPE_INSTALLED_PACKAGE is not 1: the package is not installed here (.ci/run installs it and sets it)"))
    func installedPackage() throws {
        let installed = URL(fileURLWithPath: "/usr/bin/vcpe")
        let version = try String(contentsOf: repoFile("VERSION"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try sh("/usr/bin/dpkg-query", ["-W", "-f", "${Status} ${Version}", "vcpe"]) == "install ok installed \(version)")
        // The same commit (and tree state) as the build under test.
        let built = try run(vcpeBinary, ["--version"]), shipped = try run(installed, ["--version"])
        #expect(shipped.status == 0 && shipped.stdout == built.stdout, "installed: \(shipped.stdout) built: \(built.stdout)")
        // The Swift runtime and Foundation are inside the binary, not beside it.
        let libraries = try sh("/usr/bin/ldd", [installed.path])
        #expect(!libraries.contains("libswift") && !libraries.contains("Foundation") && !libraries.contains("libdispatch"), "\(libraries)")
        for file in ["/usr/share/man/man1/vcpe.1.gz", "/usr/share/bash-completion/completions/vcpe",
                     "/usr/share/zsh/vendor-completions/_vcpe", "/usr/share/fish/vendor_completions.d/vcpe.fish",
                     "/usr/share/doc/vcpe/copyright", "/lib/systemd/system/vcpe-agent.service"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            #expect(size > 0, "\(file) missing or empty")
        }
        #expect(try sh("/usr/bin/man", ["-w", "vcpe"]) == "/usr/share/man/man1/vcpe.1.gz\n")
        // As installed, man page check included (Documentation=man:vcpe(1)).
        let unit = try run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["verify", "/lib/systemd/system/vcpe-agent.service"])
        #expect(unit.status == 0 && unit.stdout.isEmpty && unit.stderr.isEmpty, "systemd-analyze verify: \(unit.stdout)\(unit.stderr)")
        // The installed binary does real work.
        let valid = try run(installed, ["validate", repoFile("chains/small-office.json").path])
        #expect(valid.status == 0 && valid.stdout.contains("valid (customer smalloffice)"), "\(valid.stdout)\(valid.stderr)")
        let plan = try run(installed, ["plan", "--empty-host", repoFile("chains/multipath.json").path])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.hasPrefix("customer acme: ") && plan.stdout.contains("+ namespace vcpe-acme.fw"), "\(plan.stdout)")
    }

    func git(_ args: [String]) throws -> String { try sh("/usr/bin/git", ["-C", repositoryRoot.path] + args) }

    /// `systemd-analyze verify` on a unit written to a directory of its own, without the man page check.
    func verify(unitText: String) throws -> RunResult {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("vcpe-agent.service")
        try unitText.write(to: file, atomically: true, encoding: .utf8)
        return try run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["verify", "--man=no", file.path])
    }
}
