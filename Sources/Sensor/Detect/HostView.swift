import PortsentryShared

/// What detection must know about the protected host: its addresses, which ports have
/// real sockets, and which ports the kernel hands out to outgoing connections.
/// Refreshed by the daemon (addresses on change, sockets every second); a value type so a
/// refresh is one assignment.
struct HostView: Sendable {
    var ownAddresses = AddressSet()
    /// Replay: every destination in the capture is the protected host.
    var acceptAllDestinations = false
    var tcpListeners = ListenerSet()
    var udpListeners = ListenerSet()
    /// TCP ports with a socket in any state: an ACK there may belong to a live connection.
    var boundTCPPorts = PortSet()
    /// Linux's default `net.ipv4.ip_local_port_range`; read from /proc in live mode.
    var ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// Portsentry's service check (`-S` turns it off): skip ports with a local listener.
    var serviceCheck = true
    /// Replay has no socket table: a port the protected host answers with SYN+ACK has a
    /// listener, and is treated as served from then on.
    var learnListenersFromReplies = false

    init() {}

    @inline(__always)
    func isProtected(_ destination: IPAddress) -> Bool {
        acceptAllDestinations || ownAddresses.contains(destination)
    }

    @inline(__always)
    func hasListener(_ proto: TransportProtocol, _ address: IPAddress, _ port: UInt16) -> Bool {
        serviceCheck && (proto == .tcp ? tcpListeners : udpListeners).contains(address, port)
    }

    /// Could a TCP connection exist on this local port? Outgoing connections take their
    /// local port from the ephemeral range, and any bound socket may have connections.
    @inline(__always)
    func connectionPossible(_ port: UInt16) -> Bool {
        ephemeralPorts.contains(port) || boundTCPPorts.contains(port)
    }
}

/// Local sockets that own a port: bound to every address, or to one address.
struct ListenerSet: Sendable, Equatable {
    var anyAddress = PortSet()
    var specific: Set<AddressPort> = []

    init() {}

    @inline(__always)
    func contains(_ address: IPAddress, _ port: UInt16) -> Bool {
        anyAddress.contains(port) || (!specific.isEmpty && specific.contains(AddressPort(address: address, port: port)))
    }
}

struct AddressPort: Hashable, Sendable {
    var address: IPAddress
    var port: UInt16
}
