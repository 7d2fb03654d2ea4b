#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address held in 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
///
/// One representation for both families keeps the state table, the ignore list and the
/// block list free of per-family code paths, and IPv4-mapped IPv6 sources compare equal
/// to the plain IPv4 address (the mismatch CrowdSec#3467 reports cannot happen).
/// A trivial value type: hashing, comparison and masking never allocate.
public struct IPAddress: Hashable, Comparable, Sendable {
    /// Bytes 0–7 and 8–15 of the address in network order, as big-endian integers.
    public var high: UInt64
    public var low: UInt64

    // Inlinable (not `static let`): the parser and detector build and compare addresses on
    // every packet, from another module.
    @inlinable static var mappedPrefix: UInt64 { 0x0000_FFFF_0000_0000 }

    @inlinable
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its host-order integer value (`0x7f000001` is 127.0.0.1).
    @inlinable
    public init(ipv4 value: UInt32) {
        self.init(high: 0, low: Self.mappedPrefix | UInt64(value))
    }

    /// Reads 4 (IPv4) or 16 (IPv6) bytes in network order. The caller guarantees the bounds.
    @inlinable
    public init(ipv4Bytes p: UnsafeRawPointer) {
        let v = UInt32(p.load(as: UInt8.self)) << 24 | UInt32(p.load(fromByteOffset: 1, as: UInt8.self)) << 16
            | UInt32(p.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt32(p.load(fromByteOffset: 3, as: UInt8.self))
        self.init(ipv4: v)
    }

    @inlinable
    public init(ipv6Bytes p: UnsafeRawPointer) {
        self.init(high: UInt64(bigEndian: p.loadUnaligned(as: UInt64.self)),
                  low: UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    @inlinable public static var unspecified: IPAddress { IPAddress(high: 0, low: 0) }

    @inlinable public static func == (a: IPAddress, b: IPAddress) -> Bool { a.high == b.high && a.low == b.low }

    @inlinable public var isIPv4: Bool { high == 0 && (low & 0xFFFF_FFFF_0000_0000) == Self.mappedPrefix }

    /// The IPv4 value in host order; only meaningful when `isIPv4`.
    public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    public var isLoopback: Bool {
        isIPv4 ? (ipv4Value >> 24) == 127 : (high == 0 && low == 1)
    }

    public var isUnspecified: Bool {
        isIPv4 ? ipv4Value == 0 : (high == 0 && low == 0)
    }

    /// Multicast and (IPv4) limited broadcast: never the source of a genuine unicast probe.
    public var isMulticastOrBroadcast: Bool {
        if isIPv4 { return (ipv4Value >> 28) == 0xE || ipv4Value == 0xFFFF_FFFF }
        return (high >> 56) == 0xFF
    }

    /// Keeps the first `bits` bits of the 128-bit form; bits beyond are zeroed.
    public func masked(toBits bits: Int) -> IPAddress {
        if bits >= 128 { return self }
        if bits <= 0 { return .unspecified }
        if bits >= 64 {
            let keep = bits - 64
            let mask: UInt64 = keep == 0 ? 0 : ~UInt64(0) << (64 - keep)
            return IPAddress(high: high, low: low & mask)
        }
        return IPAddress(high: high & (~UInt64(0) << (64 - bits)), low: 0)
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * i))
            out[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * i))
        }
        return out
    }

    /// Parses a numeric IPv4 or IPv6 literal (no names, no zone ids except a trailing
    /// `%zone`, which is dropped). Returns nil when the text is not an address.
    public init?(_ text: some StringProtocol) {
        var literal = String(text)
        if let percent = literal.firstIndex(of: "%") { literal = String(literal[..<percent]) }
        if literal.isEmpty || literal.count > 45 { return nil }
        var v4 = in_addr()
        if literal.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard literal.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 else { return nil }
        self = withUnsafeBytes(of: &v6) { IPAddress(ipv6Bytes: $0.baseAddress!) }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4 (also when it arrived IPv4-mapped), RFC 5952 text for IPv6.
    public var description: String {
        if isIPv4 {
            let v = ipv4Value
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { buf in
            for (i, b) in bytes.enumerated() { buf[i] = b }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension IPAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "not an IP address: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
