#if canImport(Glibc)
import Glibc
#endif

/// Where the sensor may write: checked when the config is loaded (start-up, SIGHUP and
/// `check-config` alike), so a path that would fail at start fails the check first.
/// - Nothing under /proc, /sys or /dev: kernel interfaces, never a log or a state file.
/// - A file the sensor appends to as root (HISTORY_FILE, BLOCKED_FILE, JSON_LOG_FILE,
///   HOSTS_DENY_FILE when KILL_HOSTS_DENY is set) is a regular file if it exists, never a symlink (whoever can write the
///   directory could point it at /etc/shadow), and its directory is one (or can be created).
/// - STATE_DIR is a directory if it exists (it is created otherwise).
enum PathRules {
    static let kernelTrees = ["/proc", "/sys", "/dev"]

    static func check(_ config: SensorConfig, file: String) throws(ConfigError) {
        func fail(_ key: String, _ path: String, _ why: String) -> ConfigError {
            ConfigError(file: file, line: 0, message: "\(key) \"\(path)\": \(why)")
        }
        func underKernelTree(_ path: String) -> Bool {
            kernelTrees.contains { path == $0 || path.hasPrefix($0 + "/") }
        }
        let written: [(String, String?)] = [("HISTORY_FILE", config.historyFile), ("BLOCKED_FILE", config.blockedFile),
                                            ("JSON_LOG_FILE", config.jsonLogFile),
                                            ("HOSTS_DENY_FILE", config.killHostsDeny == nil ? nil : config.hostsDenyFile)]
        for (key, value) in written {
            guard let path = value else { continue }
            if underKernelTree(path) { throw fail(key, path, "is under a kernel file system (/proc, /sys, /dev), not a place for a log") }
            var st = stat()
            if lstat(path, &st) == 0 {
                switch st.st_mode & S_IFMT {
                case S_IFREG: break
                case S_IFLNK: throw fail(key, path, "is a symbolic link; refused (point the setting at the real file)")
                default: throw fail(key, path, "exists and is not a regular file")
                }
            }
            // Missing directories are created at start; the nearest existing one must be a directory.
            var directory = parent(of: path)
            while stat(directory, &st) != 0, directory != "/" { directory = parent(of: directory) }
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw fail(key, path, "\(directory) is not a directory")
            }
        }
        let state = config.stateDir
        if underKernelTree(state) { throw fail("STATE_DIR", state, "is under a kernel file system (/proc, /sys, /dev)") }
        var st = stat()
        if stat(state, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
            throw fail("STATE_DIR", state, "exists and is not a directory")
        }
        if underKernelTree(config.controlSocket) {
            throw fail("CONTROL_SOCKET", config.controlSocket, "is under a kernel file system (/proc, /sys, /dev)")
        }
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
