/// A set of port numbers as a 65,536-bit bitmap: membership is one load and a mask,
/// whatever the number of ranges, so a `1-65535` tripwire list costs the same as `1`.
struct PortSet: Sendable, Equatable {
    /// 65,536 bits in 1,024 words: every port number has exactly one bit.
    private var words: [UInt64]

    init() { words = [UInt64](repeating: 0, count: 1024) }

    init(_ ranges: [ClosedRange<UInt16>]) {
        self.init()
        for r in ranges { insert(r) }
    }

    @inline(__always)
    func contains(_ port: UInt16) -> Bool {
        words.withUnsafeBufferPointer { $0[Int(port &>> 6)] & (1 &<< UInt64(port & 63)) != 0 }
    }

    mutating func insert(_ port: UInt16) { words[Int(port >> 6)] |= 1 << UInt64(port & 63) }
    mutating func remove(_ port: UInt16) { words[Int(port >> 6)] &= ~(1 << UInt64(port & 63)) }

    mutating func insert(_ range: ClosedRange<UInt16>) {
        for p in range { insert(p) }
    }

    mutating func formUnion(_ other: PortSet) {
        for i in 0..<words.count { words[i] |= other.words[i] }
    }

    mutating func subtract(_ other: PortSet) {
        for i in 0..<words.count { words[i] &= ~other.words[i] }
    }

    var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The set as sorted, maximal ranges (for BPF filters and messages).
    var ranges: [ClosedRange<UInt16>] {
        var out: [ClosedRange<UInt16>] = []
        var start: Int? = nil
        for p in 0...65536 {
            let member = p <= 65535 && contains(UInt16(p))
            if member, start == nil { start = p }
            if !member, let s = start {
                out.append(UInt16(s)...UInt16(p - 1))
                start = nil
            }
        }
        return out
    }
}

extension PortSet: CustomStringConvertible {
    /// `1,7,9,30-40`: the syntax of `TCP_PORTS`.
    var description: String {
        ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }
}

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
