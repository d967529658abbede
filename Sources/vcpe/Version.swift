/// `vcpe --version`: BuildInfo is generated before each build by the BuildInfo plugin
/// (Plugins/BuildInfo) from VERSION and the tree's git commit.
extension BuildInfo {
    static var versionLine: String {
        guard commit != "unknown" else { return "vcpe \(version) (commit unknown)" }
        return clean ? "vcpe \(version) (commit \(commit), built from a clean tree)"
                     : "vcpe \(version) (commit \(commit)-dirty, built from a tree with uncommitted changes)"
    }
}
