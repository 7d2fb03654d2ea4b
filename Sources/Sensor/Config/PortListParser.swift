import SensorCore

/// Parses Portsentry's port lists: `1,7,9,30-40`. Ports are 1–65535; a reversed or
/// malformed token is an error (2.0.7 silently turns it into a 0-0 entry).
enum PortListParser {
    static func parse(_ text: String) throws(ConfigProblem) -> PortSet {
        var set = PortSet()
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let token = raw.trimmingWhitespace()
            if token.isEmpty {
                if text.trimmingWhitespace().isEmpty { continue }
                throw ConfigProblem("empty entry in port list '\(text)'")
            }
            let ends = token.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2, let lo = port(ends[0]), let hi = ends.count == 2 ? port(ends[1]) : lo else {
                throw ConfigProblem("'\(token)' is not a port (1-65535) or a range like 30-40")
            }
            guard lo <= hi else { throw ConfigProblem("range '\(token)' is reversed") }
            set.insert(lo...hi)
        }
        return set
    }

    private static func port(_ s: Substring) -> UInt16? {
        let t = s.trimmingWhitespace()
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(t), (1...65535).contains(v) else {
            return nil
        }
        return UInt16(v)
    }
}

/// A problem with one value, before the parser adds the file and line.
struct ConfigProblem: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s.removeLast() }
        return String(s)
    }
}

extension Character {
    /// LF or CRLF. Swift keeps "\r\n" as one Character, so splitting on "\n" alone would
    /// leave a CRLF file as a single line.
    var isLineBreak: Bool { self == "\n" || self == "\r\n" }
}
