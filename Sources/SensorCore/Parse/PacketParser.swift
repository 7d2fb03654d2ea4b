import PortsentryShared

/// Decodes link, network and transport headers from a captured frame.
///
/// Every read is preceded by a length check against the captured length, so a truncated
/// or hostile frame can only ever produce `.skipped`, never a read past the buffer.
/// Works on the raw buffer libpcap hands us and allocates nothing.
package enum PacketParser {
    /// IPv6 extension headers walked before giving up: RFC 8200 expects at most a handful,
    /// and a long chain is itself an evasion attempt we refuse to spend time on.
    package static let maxExtensionHeaders = 8
    /// VLAN tags skipped on Ethernet: single and QinQ cover real deployments.
    package static let maxVLANTags = 2

    package static func parse(_ frame: UnsafeRawBufferPointer, linkType: LinkType) -> ParseResult {
        guard let base = frame.baseAddress else { return .skipped(.truncated) }
        let length = frame.count
        switch linkType {
        case .ethernet:
            var offset = 12
            var tags = 0
            while true {
                guard length >= offset + 2 else { return .skipped(.truncated) }
                let etherType = be16(base, offset)
                if etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
                    tags += 1
                    guard tags <= maxVLANTags else { return .skipped(.malformed) }
                    offset += 4
                    continue
                }
                return network(base + offset + 2, length - offset - 2, etherType: etherType)
            }
        case .linuxSLL:
            guard length >= 16 else { return .skipped(.truncated) }
            return network(base + 16, length - 16, etherType: be16(base, 14))
        case .linuxSLL2:
            guard length >= 20 else { return .skipped(.truncated) }
            return network(base + 20, length - 20, etherType: be16(base, 0))
        case .raw:
            guard length >= 1 else { return .skipped(.truncated) }
            switch base.load(as: UInt8.self) >> 4 {
            case 4: return ipv4(base, length)
            case 6: return ipv6(base, length)
            default: return .skipped(.notIP)
            }
        case .bsdLoopback:
            guard length >= 4 else { return .skipped(.truncated) }
            let family = base.loadUnaligned(as: UInt32.self)
            // The family was written in the capturing host's byte order (NULL) or network
            // order (LOOP); accept both. 2 is AF_INET everywhere; 10/24/28/30 are AF_INET6
            // on Linux, NetBSD/OpenBSD, FreeBSD and macOS.
            for f in [family, family.byteSwapped] {
                if f == 2 { return ipv4(base + 4, length - 4) }
                if f == 10 || f == 24 || f == 28 || f == 30 { return ipv6(base + 4, length - 4) }
            }
            return .skipped(.notIP)
        }
    }

    @inline(__always)
    package static func network(_ p: UnsafeRawPointer, _ length: Int, etherType: UInt16) -> ParseResult {
        switch etherType {
        case 0x0800: return ipv4(p, length)
        case 0x86DD: return ipv6(p, length)
        default: return .skipped(.notIP)
        }
    }

    // MARK: IPv4

    @inline(__always)
    package static func ipv4(_ p: UnsafeRawPointer, _ captured: Int) -> ParseResult {
        guard captured >= 20 else { return .skipped(.truncated) }
        let vihl = u8(p, 0)
        guard vihl >> 4 == 4 else { return .skipped(.malformed) }
        let headerLength = Int(vihl & 0x0F) * 4
        guard headerLength >= 20 else { return .skipped(.malformed) }
        let totalLength = Int(be16(p, 2))
        guard totalLength >= headerLength else { return .skipped(.malformed) }
        guard captured >= headerLength else { return .skipped(.truncated) }
        let fragment = be16(p, 6)
        if fragment & 0x1FFF != 0 { return .skipped(.laterFragment) }
        let moreFragments = fragment & 0x2000 != 0

        var packet = ParsedPacket()
        packet.source = IPAddress(ipv4Bytes: p + 12)
        packet.destination = IPAddress(ipv4Bytes: p + 16)
        packet.ipOptions = headerLength > 20 ? .set : .notSet
        // Transport bytes really present: the datagram may be shorter than the capture
        // (Ethernet padding) or longer (snaplen).
        let available = min(captured, totalLength) - headerLength
        return transport(u8(p, 9), p + headerLength, available, moreFragments: moreFragments, packet: &packet)
            ? .packet(packet) : .skipped(skipReason(u8(p, 9)))
    }

    // MARK: IPv6

    package static func ipv6(_ p: UnsafeRawPointer, _ captured: Int) -> ParseResult {
        guard captured >= 40 else { return .skipped(.truncated) }
        guard u8(p, 0) >> 4 == 6 else { return .skipped(.malformed) }
        let payloadLength = Int(be16(p, 4))
        var packet = ParsedPacket()
        packet.source = IPAddress(ipv6Bytes: p + 8)
        packet.destination = IPAddress(ipv6Bytes: p + 24)
        packet.ipOptions = .unknown  // Portsentry 2.x reports IPv6 this way
        // A zero payload length means a jumbogram; bound it by the capture then.
        let end = payloadLength == 0 ? captured : min(captured, 40 + payloadLength)
        var offset = 40
        var next = u8(p, 6)
        var moreFragments = false
        for _ in 0...maxExtensionHeaders {
            switch next {
            case 0, 43, 60, 135, 139, 140, 253, 254:
                // Hop-by-hop, routing, destination options, mobility, HIP, shim6, experimental:
                // all "next header, length in 8-octet units after the first 8".
                guard end >= offset + 2 else { return .skipped(.truncated) }
                next = u8(p, offset)
                offset += (Int(u8(p, offset + 1)) + 1) * 8
            case 44:
                guard end >= offset + 8 else { return .skipped(.truncated) }
                let fragment = be16(p, offset + 2)
                if fragment & 0xFFF8 != 0 { return .skipped(.laterFragment) }
                moreFragments = fragment & 1 != 0
                next = u8(p, offset)
                offset += 8
            case 51:
                // Authentication header: length in 4-octet units, minus 2.
                guard end >= offset + 2 else { return .skipped(.truncated) }
                next = u8(p, offset)
                offset += (Int(u8(p, offset + 1)) + 2) * 4
            default:
                guard offset <= end else { return .skipped(.truncated) }
                return transport(next, p + offset, end - offset, moreFragments: moreFragments, packet: &packet)
                    ? .packet(packet) : .skipped(skipReason(next))
            }
        }
        return .skipped(.malformed)
    }

    // MARK: transport

    /// Fills the transport part of `packet`; false means "skip" (the reason is recomputed
    /// by `skipReason`, which keeps this, the common path, free of an extra result type).
    @inline(__always)
    package static func transport(_ proto: UInt8, _ p: UnsafeRawPointer, _ available: Int, moreFragments: Bool,
                          packet: inout ParsedPacket) -> Bool {
        switch proto {
        case 6:
            if available >= 14 {
                packet.transport = .tcp
                packet.sourcePort = be16(p, 0)
                packet.destinationPort = be16(p, 2)
                packet.tcpFlags = TCPFlags(rawValue: u8(p, 13))
                return true
            }
            if moreFragments, available >= 4 {
                packet.transport = .tcpFragmentHead
                packet.sourcePort = be16(p, 0)
                packet.destinationPort = be16(p, 2)
                return true
            }
            return false
        case 17:
            guard available >= 8 else { return false }
            packet.transport = .udp
            packet.sourcePort = be16(p, 0)
            packet.destinationPort = be16(p, 2)
            return true
        case 1:
            // ICMP destination unreachable (3), port unreachable (3), quoting the datagram.
            guard available >= 8 + 20 + 4, u8(p, 0) == 3, u8(p, 1) == 3 else { return false }
            return quoted(p + 8, available - 8, isIPv6: false, packet: &packet)
        case 58:
            // ICMPv6 destination unreachable (1), port unreachable (4).
            guard available >= 8 + 40 + 4, u8(p, 0) == 1, u8(p, 1) == 4 else { return false }
            return quoted(p + 8, available - 8, isIPv6: true, packet: &packet)
        default:
            return false
        }
    }

    /// Reads the IP header and ports of the datagram an ICMP error quotes.
    package static func quoted(_ p: UnsafeRawPointer, _ available: Int, isIPv6: Bool, packet: inout ParsedPacket) -> Bool {
        var offset: Int
        var proto: UInt8
        if isIPv6 {
            guard u8(p, 0) >> 4 == 6 else { return false }
            packet.embeddedSource = IPAddress(ipv6Bytes: p + 8)
            packet.embeddedDestination = IPAddress(ipv6Bytes: p + 24)
            proto = u8(p, 6)
            offset = 40
            var walked = 0
            while proto == 0 || proto == 43 || proto == 60 || proto == 44 {
                walked += 1
                guard walked <= maxExtensionHeaders, available >= offset + 2 else { return false }
                let length = proto == 44 ? 8 : (Int(u8(p, offset + 1)) + 1) * 8
                proto = u8(p, offset)
                offset += length
            }
        } else {
            let vihl = u8(p, 0)
            guard vihl >> 4 == 4, vihl & 0x0F >= 5 else { return false }
            packet.embeddedSource = IPAddress(ipv4Bytes: p + 12)
            packet.embeddedDestination = IPAddress(ipv4Bytes: p + 16)
            proto = u8(p, 9)
            offset = Int(vihl & 0x0F) * 4
        }
        guard proto == 6 || proto == 17, available >= offset + 4 else { return false }
        packet.transport = .portUnreachable
        packet.embeddedProtocol = proto == 6 ? .tcp : .udp
        packet.sourcePort = be16(p, offset)
        packet.destinationPort = be16(p, offset + 2)
        return true
    }

    /// Why `transport` refused: only called on the skip path. TCP and UDP were too short;
    /// anything else is a protocol (or an ICMP message) detection does not use.
    package static func skipReason(_ proto: UInt8) -> ParseSkip {
        proto == 6 || proto == 17 ? .truncated : .otherProtocol
    }

    @inline(__always) package static func u8(_ p: UnsafeRawPointer, _ o: Int) -> UInt8 {
        p.load(fromByteOffset: o, as: UInt8.self)
    }

    @inline(__always) package static func be16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 {
        UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }
}
