package import PortsentryShared

/// What detection must know about the protected host: its addresses, which ports have
/// real sockets, and which ports the kernel hands out to outgoing connections.
/// Refreshed by the daemon (addresses on change, sockets every second); a value type so a
/// refresh is one assignment.
package struct HostView: Sendable {
    package var ownAddresses = AddressSet()
    /// Replay: every destination in the capture is the protected host.
    package var acceptAllDestinations = false
    package var tcpListeners = ListenerSet()
    package var udpListeners = ListenerSet()
    /// TCP ports with a socket in any state: an ACK there may belong to a live connection.
    package var boundTCPPorts = PortSet()
    /// Linux's default `net.ipv4.ip_local_port_range`; read from /proc in live mode.
    package var ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// Portsentry's service check (`-S` turns it off): skip ports with a local listener.
    package var serviceCheck = true
    /// Replay has no socket table: a port the protected host answers with SYN+ACK has a
    /// listener, and is treated as served from then on.
    package var learnListenersFromReplies = false

    package init() {}

    @inline(__always)
    package func isProtected(_ destination: IPAddress) -> Bool {
        acceptAllDestinations || ownAddresses.contains(destination)
    }

    @inline(__always)
    package func hasListener(_ proto: TransportProtocol, _ address: IPAddress, _ port: UInt16) -> Bool {
        serviceCheck && (proto == .tcp ? tcpListeners : udpListeners).contains(address, port)
    }

    /// Could a TCP connection exist on this local port? Outgoing connections take their
    /// local port from the ephemeral range, and any bound socket may have connections.
    @inline(__always)
    package func connectionPossible(_ port: UInt16) -> Bool {
        ephemeralPorts.contains(port) || boundTCPPorts.contains(port)
    }
}

/// Local sockets that own a port: bound to every address, or to one address.
package struct ListenerSet: Sendable, Equatable {
    package var anyAddress = PortSet()
    package var specific: Set<AddressPort> = []

    package init() {}

    @inline(__always)
    package func contains(_ address: IPAddress, _ port: UInt16) -> Bool {
        anyAddress.contains(port) || (!specific.isEmpty && specific.contains(AddressPort(address: address, port: port)))
    }
}

package struct AddressPort: Hashable, Sendable {
    package var address: IPAddress
    package var port: UInt16

    package init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
}
