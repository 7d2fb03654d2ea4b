/// The link-layer header types the parser understands, by libpcap DLT number.
package enum LinkType: Sendable, Equatable {
    case ethernet
    case linuxSLL
    case linuxSLL2
    /// Raw IP, version taken from the first nibble.
    case raw
    /// BSD loopback: a 4-byte address family, host byte order (NULL) or network order (LOOP).
    case bsdLoopback

    package init?(dlt: Int32) {
        switch dlt {
        case 1: self = .ethernet
        case 113: self = .linuxSLL
        case 276: self = .linuxSLL2
        // 12 is DLT_RAW on most systems, 14 on OpenBSD, 101 the file-format LINKTYPE_RAW;
        // 228/229 are raw IPv4/IPv6.
        case 12, 14, 101, 228, 229: self = .raw
        case 0, 108: self = .bsdLoopback
        default: return nil
        }
    }
}
