import PortsentryShared

/// The facts of one packet that detection needs, lifted out of the raw bytes.
/// A plain value with no references: producing one allocates nothing.
struct ParsedPacket: Sendable, Equatable {
    enum Transport: Sendable, Equatable {
        case tcp
        case udp
        /// The first fragment of a TCP segment that ends before the flags byte (`nmap -f`).
        case tcpFragmentHead
        /// An ICMP/ICMPv6 port unreachable; the ports and `embeddedProtocol` describe the
        /// datagram it answers (`embeddedSource` sent to `embeddedDestination:dstPort`).
        case portUnreachable
    }

    var transport: Transport = .tcp
    var source = IPAddress.unspecified
    var destination = IPAddress.unspecified
    var sourcePort: UInt16 = 0
    var destinationPort: UInt16 = 0
    var tcpFlags = TCPFlags()
    var ipOptions: IPOptionsFlag = .notSet
    var embeddedProtocol: TransportProtocol = .udp
    var embeddedSource = IPAddress.unspecified
    var embeddedDestination = IPAddress.unspecified

    init() {}
}

/// Why a captured frame produced no `ParsedPacket`. Each is counted, never fatal.
enum ParseSkip: Int, Sendable, CaseIterable {
    case notIP
    case truncated
    case malformed
    case laterFragment
    case otherProtocol

    var name: String {
        switch self {
        case .notIP: return "not-ip"
        case .truncated: return "truncated"
        case .malformed: return "malformed"
        case .laterFragment: return "later-fragment"
        case .otherProtocol: return "other-protocol"
        }
    }
}

enum ParseResult: Sendable, Equatable {
    case packet(ParsedPacket)
    case skipped(ParseSkip)
}
