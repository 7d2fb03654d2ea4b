#if canImport(Glibc)
import Glibc
#endif

/// A log file that is only ever appended to: opened with O_APPEND for each batch, so
/// logrotate can move it away at any time (no HUP needed), and never truncated
/// (Portsentry 2.x empties its history on every start).
final class AppendFile {
    let path: String
    private var lastError: String? = nil
    private(set) var failures: UInt64 = 0

    init(path: String) { self.path = path }

    /// Creates missing parent directories of `path`.
    static func makeDirectories(for path: String, mode: mode_t = 0o755) throws(TextFile.Failure) {
        var prefix = ""
        for component in path.split(separator: "/").dropLast() {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0, errno != EEXIST {
                throw TextFile.Failure(description: "\(path): cannot create \(prefix): \(errnoText())")
            }
        }
    }

    /// Creates missing parent directories (0755) and checks the file can be opened.
    func prepare() throws(TextFile.Failure) {
        try Self.makeDirectories(for: path)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw TextFile.Failure(description: "\(path): cannot open for appending: \(errnoText())") }
        close(fd)
    }

    /// Appends lines; a failure is reported once (and again when it changes), never fatal.
    func append(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { return report("cannot open: \(errnoText())") }
        defer { close(fd) }
        var data: [UInt8] = []
        for line in lines {
            data.append(contentsOf: line.utf8)
            data.append(0x0A)
        }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written != data.count { return report("write failed: \(errnoText())") }
        lastError = nil
    }

    private func report(_ message: String) {
        failures += 1
        if lastError != message {
            lastError = message
            Diagnostics.logger.error("\(path): \(message)")
        }
    }
}
