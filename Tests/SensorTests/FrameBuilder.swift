@testable import Sensor
import PortsentryShared
@testable import SensorCore

/// Builds link/IP/transport headers by hand, so parser tests state exactly what is on the wire.
enum Frame {
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    static func tcp(sport: UInt16 = 40000, dport: UInt16, flags: UInt8) -> [UInt8] {
        be16(sport) + be16(dport) + [0, 0, 0, 1] + [0, 0, 0, 0] + [0x50, flags] + be16(1024) + [0, 0, 0, 0]
    }

    static func udp(sport: UInt16 = 40000, dport: UInt16, payload: [UInt8] = []) -> [UInt8] {
        be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
    }

    static func ipv4(_ src: String, _ dst: String, proto: UInt8, _ payload: [UInt8], options: [UInt8] = [],
                     fragment: UInt16 = 0) -> [UInt8] {
        let s = IPAddress(src)!.ipv4Value, d = IPAddress(dst)!.ipv4Value
        let headerLength = 20 + options.count
        let ihl = UInt8(0x40 | (headerLength / 4))
        var h: [UInt8] = [ihl, 0] + be16(UInt16(headerLength + payload.count)) + [0, 1] + be16(fragment) + [64, proto, 0, 0]
        h += [UInt8(s >> 24), UInt8((s >> 16) & 0xFF), UInt8((s >> 8) & 0xFF), UInt8(s & 0xFF)]
        h += [UInt8(d >> 24), UInt8((d >> 16) & 0xFF), UInt8((d >> 8) & 0xFF), UInt8(d & 0xFF)]
        return h + options + payload
    }

    /// `extensions`: (next-header value of the extension, its bytes) chained in order.
    static func ipv6(_ src: String, _ dst: String, proto: UInt8, _ payload: [UInt8],
                     extensions: [(UInt8, [UInt8])] = []) -> [UInt8] {
        var chain: [UInt8] = []
        var firstNext = proto
        if !extensions.isEmpty {
            firstNext = extensions[0].0
            for (i, ext) in extensions.enumerated() {
                var bytes = ext.1
                bytes[0] = i + 1 < extensions.count ? extensions[i + 1].0 : proto
                chain += bytes
            }
        }
        let body = chain + payload
        return [0x60, 0, 0, 0] + be16(UInt16(body.count)) + [firstNext, 64] + IPAddress(src)!.bytes + IPAddress(dst)!.bytes + body
    }

    static func ethernet(_ payload: [UInt8], etherType: UInt16, vlans: Int = 0) -> [UInt8] {
        var f = [UInt8](repeating: 0xAA, count: 6) + [UInt8](repeating: 0xBB, count: 6)
        for _ in 0..<vlans { f += be16(0x8100) + be16(42) }
        return f + be16(etherType) + payload
    }

    static func parse(_ bytes: [UInt8], _ link: LinkType = .raw) -> ParseResult {
        bytes.withUnsafeBytes { PacketParser.parse($0, linkType: link) }
    }

    static func packet(_ bytes: [UInt8], _ link: LinkType = .raw) -> ParsedPacket? {
        if case .packet(let p) = parse(bytes, link) { return p }
        return nil
    }
}
