#if canImport(Glibc)
import Glibc
#endif

/// KILL_HOSTS_DENY: adds a line to /etc/hosts.deny the way Portsentry 2.x does: refuses a
/// symlinked or world-writable file, skips a line that is already there, and replaces the
/// file atomically. IPv6 targets are bracketed, as TCP wrappers require.
enum HostsDenyFile {
    enum Outcome: Equatable { case added, alreadyPresent }

    /// Bound on hosts.deny: refuse to rewrite something that is clearly not one.
    static let maxBytes = 16 << 20

    static func add(line: String, to path: String) throws(FirewallError) -> Outcome {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw FirewallError("\(path): \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FirewallError("\(path) is not a regular file (a symlink?); refusing to write it") }
        guard st.st_mode & S_IWOTH == 0 else { throw FirewallError("\(path) is world-writable; refusing to write it") }
        let text: String
        do { text = try TextFile.read(path, limit: maxBytes) } catch { throw FirewallError("\(path): \(error.description)") }
        if text.split(whereSeparator: \.isNewline).contains(where: { $0 == line }) { return .alreadyPresent }
        let updated = text + (text.isEmpty || text.hasSuffix("\n") ? "" : "\n") + line + "\n"
        do { try AtomicFile.write(.init(updated.utf8), to: path) } catch {
            throw FirewallError("\(path): \(error)")
        }
        _ = chmod(path, st.st_mode & 0o7777)
        return .added
    }
}
