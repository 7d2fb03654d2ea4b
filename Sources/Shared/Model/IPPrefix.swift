/// An address prefix (CIDR block) such as `192.0.2.0/24` or `2001:db8::/32`.
///
/// Host bits are always masked off on construction, so `192.168.1.5/24` means
/// `192.168.1.0/24` (Portsentry 2.0.7 stores it unmasked and never matches it).
public struct IPPrefix: Hashable, Sendable {
    public let network: IPAddress
    /// Prefix length in the address's own family: 0–32 for IPv4, 0–128 for IPv6.
    public let length: Int

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notAnAddress(String)
        case badLength(String, max: Int)

        public var description: String {
            switch self {
            case .notAnAddress(let t): return "'\(t)' is not an IPv4/IPv6 address or CIDR"
            case .badLength(let t, let max): return "prefix length in '\(t)' must be 0...\(max)"
            }
        }
    }

    public init(_ address: IPAddress, length: Int) {
        let maxLength = address.isIPv4 ? 32 : 128
        let clamped = min(max(length, 0), maxLength)
        self.length = clamped
        self.network = address.masked(toBits: Self.bits128(isIPv4: address.isIPv4, length: clamped))
    }

    /// A single host (/32 or /128).
    public init(host: IPAddress) {
        self.init(host, length: host.isIPv4 ? 32 : 128)
    }

    /// Parses `ADDR` or `ADDR/LEN`.
    public init(parsing text: some StringProtocol) throws(ParseError) {
        let s = String(text)
        let parts = s.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { throw .notAnAddress(s) }
        let maxLength = address.isIPv4 ? 32 : 128
        var length = maxLength
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...maxLength).contains(n), parts[1].allSatisfy(\.isASCII) else {
                throw .badLength(s, max: maxLength)
            }
            length = n
        }
        self.init(address, length: length)
    }

    /// The prefix length over the 128-bit mapped form.
    public var length128: Int { Self.bits128(isIPv4: network.isIPv4, length: length) }

    public var isHost: Bool { length == (network.isIPv4 ? 32 : 128) }

    @inline(__always)
    public func contains(_ address: IPAddress) -> Bool {
        if network.isIPv4 != address.isIPv4 { return false }
        return address.masked(toBits: length128) == network
    }

    static func bits128(isIPv4: Bool, length: Int) -> Int { isIPv4 ? 96 + length : length }
}

extension IPPrefix: CustomStringConvertible {
    public var description: String { isHost ? network.description : "\(network)/\(length)" }
}

extension IPPrefix: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(isHost ? "\(network)/\(length)" : description)
    }
}
