/// `vcpe --version`: BuildInfo is generated before each build by the BuildInfo plugin
/// (Plugins/BuildInfo) from VERSION and the tree's git commit.
extension BuildInfo {
    /// The commit, "-dirty" when tracked files had uncommitted changes ("unknown" without git).
    static var commitLabel: String { clean || commit == "unknown" ? commit : commit + "-dirty" }

    static var versionLine: String {
        guard commit != "unknown" else { return "vcpe \(version) (commit unknown)" }
        return clean ? "vcpe \(version) (commit \(commitLabel), built from a clean tree)"
                     : "vcpe \(version) (commit \(commitLabel), built from a tree with uncommitted changes)"
    }
}
