/// A set of port numbers as a 65,536-bit bitmap: membership is one load and a mask,
/// whatever the number of ranges, so a `1-65535` tripwire list costs the same as `1`.
package struct PortSet: Sendable, Equatable {
    /// 65,536 bits in 1,024 words: every port number has exactly one bit.
    private var words: [UInt64]

    package init() { words = [UInt64](repeating: 0, count: 1024) }

    package init(_ ranges: [ClosedRange<UInt16>]) {
        self.init()
        for r in ranges { insert(r) }
    }

    @inline(__always)
    package func contains(_ port: UInt16) -> Bool {
        words.withUnsafeBufferPointer { $0[Int(port &>> 6)] & (1 &<< UInt64(port & 63)) != 0 }
    }

    package mutating func insert(_ port: UInt16) { words[Int(port >> 6)] |= 1 << UInt64(port & 63) }
    package mutating func remove(_ port: UInt16) { words[Int(port >> 6)] &= ~(1 << UInt64(port & 63)) }

    package mutating func insert(_ range: ClosedRange<UInt16>) {
        for p in range { insert(p) }
    }

    package mutating func formUnion(_ other: PortSet) {
        for i in 0..<words.count { words[i] |= other.words[i] }
    }

    package mutating func subtract(_ other: PortSet) {
        for i in 0..<words.count { words[i] &= ~other.words[i] }
    }

    package var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
    package var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The set as sorted, maximal ranges (for BPF filters and messages).
    package var ranges: [ClosedRange<UInt16>] {
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
    package var description: String {
        ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }
}
