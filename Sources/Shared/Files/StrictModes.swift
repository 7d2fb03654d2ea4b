#if canImport(Glibc)
import Glibc
#endif

/// sshd's StrictModes for the files that drive what runs as root (configuration, ignore
/// list, KILL_* executables, keys, tokens, enrollment): when the process runs as root, such
/// a file must be owned by root and writable by nobody else, and so must every directory
/// above it (a group- or world-writable directory is accepted only with the sticky bit).
/// Otherwise any local user who can write one of them could make root run their commands
/// or trust their key. Unprivileged runs (tests, `check-config` as a user) skip the check:
/// such a process cannot be made to do anything as root.
public enum StrictModes {
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ message: String) { description = message }
    }

    /// What a refused file must be.
    public static let requirement = "it must be owned by root and writable only by root, and so must the directories above it"

    /// Whether the check applies: only when the effective user is root.
    public static var applies: Bool { geteuid() == 0 }

    /// Throws a refusal naming `what` (e.g. "config file"), the path and what is wrong.
    /// A path that does not exist passes: whoever reads it reports that.
    public static func check(_ path: String, what: String, enforce: Bool = applies) throws(Refusal) {
        if let problem = problem(path, enforce: enforce) {
            throw Refusal("refusing \(what) \(path): \(problem); \(requirement)")
        }
    }

    /// What is wrong with `path`, or nil.
    public static func problem(_ path: String, enforce: Bool = applies) -> String? {
        guard enforce else { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if let p = ownership(st, "it") { return p }
        // The directories it is reached through: the one that holds the name as given (a
        // symbolic link there could be replaced), then every one above the real file.
        var directories: [String] = []
        let given = parent(path.hasPrefix("/") ? path : currentDirectory() + "/" + path)
        directories.append(given)
        if let resolved = realpath(path, nil) {
            var dir = parent(String(cString: resolved))
            free(resolved)
            while true {
                if !directories.contains(dir) { directories.append(dir) }
                if dir == "/" { break }
                dir = parent(dir)
            }
        }
        for dir in directories {
            var d = stat()
            guard stat(dir, &d) == 0 else { continue }
            if let p = ownership(d, "its directory \(dir)", directory: true) { return p }
        }
        return nil
    }

    private static func ownership(_ st: stat, _ subject: String, directory: Bool = false) -> String? {
        let mode = st.st_mode & 0o7777
        let octal = "mode 0" + String(mode, radix: 8)
        if st.st_uid != 0 { return "\(subject) is owned by uid \(st.st_uid), not root" }
        if directory, mode & S_ISVTX != 0 { return nil }
        if mode & S_IWOTH != 0 { return "\(subject) is world-writable (\(octal))" }
        if mode & S_IWGRP != 0 { return "\(subject) is group-writable (\(octal))" }
        return nil
    }

    private static func parent(_ path: String) -> String {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        let head = String(p[..<slash])
        return head.isEmpty ? "/" : head
    }

    private static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "." }
        defer { free(cwd) }
        return String(cString: cwd)
    }
}
