import PortsentryShared

/// Parses an ignore file: one IPv4/IPv6 address or CIDR per line; `#` starts a comment
/// anywhere on a line; CRLF, upper-case hex and a missing final newline are fine (each is
/// fatal or lossy in Portsentry 2.0.7). Host bits are masked (`192.168.1.5/24` matches the /24).
enum IgnoreFile {
    /// Bound on the file: room for ~500,000 entries, far beyond a hand-kept list.
    static let maxFileBytes = 16 << 20

    static func parse(file path: String) throws(ConfigError) -> [IPPrefix] {
        let text: String
        do { text = try TextFile.read(path, limit: maxFileBytes) } catch {
            throw ConfigError(file: path, line: 0, message: error.description)
        }
        return try parse(text: text, file: path)
    }

    static func parse(text: String, file: String) throws(ConfigError) -> [IPPrefix] {
        var out: [IPPrefix] = []
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isLineBreak) {
            lineNumber += 1
            let content = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                .trimmingWhitespace()
            if content.isEmpty { continue }
            if content.contains("%") {
                throw ConfigError(file: file, line: lineNumber,
                                  message: "'\(content)': a zone id (%interface) is not supported: an ignore entry applies on every interface")
            }
            do { out.append(try IPPrefix(parsing: content)) } catch {
                throw ConfigError(file: file, line: lineNumber, message: error.description)
            }
        }
        return out
    }
}
