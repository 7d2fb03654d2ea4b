package import PortsentryShared

/// The facts of one packet that detection needs, lifted out of the raw bytes.
/// A plain value with no references: producing one allocates nothing.
package struct ParsedPacket: Sendable, Equatable {
    package enum Transport: Sendable, Equatable {
        case tcp
        case udp
        /// The first fragment of a TCP segment that ends before the flags byte (`nmap -f`).
        case tcpFragmentHead
        /// An ICMP/ICMPv6 port unreachable; the ports and `embeddedProtocol` describe the
        /// datagram it answers (`embeddedSource` sent to `embeddedDestination:dstPort`).
        case portUnreachable
    }

    package var transport: Transport = .tcp
    package var source = IPAddress.unspecified
    package var destination = IPAddress.unspecified
    package var sourcePort: UInt16 = 0
    package var destinationPort: UInt16 = 0
    package var tcpFlags = TCPFlags()
    package var ipOptions: IPOptionsFlag = .notSet
    package var embeddedProtocol: TransportProtocol = .udp
    package var embeddedSource = IPAddress.unspecified
    package var embeddedDestination = IPAddress.unspecified

    package init() {}
}

/// Why a captured frame produced no `ParsedPacket`. Each is counted, never fatal.
package enum ParseSkip: Int, Sendable, CaseIterable {
    case notIP
    case truncated
    case malformed
    case laterFragment
    case otherProtocol

    package var name: String {
        switch self {
        case .notIP: return "not-ip"
        case .truncated: return "truncated"
        case .malformed: return "malformed"
        case .laterFragment: return "later-fragment"
        case .otherProtocol: return "other-protocol"
        }
    }
}

package enum ParseResult: Sendable, Equatable {
    case packet(ParsedPacket)
    case skipped(ParseSkip)
}
