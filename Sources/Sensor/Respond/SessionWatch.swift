import PortsentryShared
import SensorCore

/// Follows the host's established TCP connections, asked of the kernel (sock_diag) every
/// `SensorDaemon.sessionScan`:
/// - peers of live sessions on PROTECT_PORTS (an admin's SSH): never blocked here, and
///   reported to the controller the moment they appear, so the fleet never blocks them either;
/// - peers of any established connection: addresses proven by a completed handshake, reported
///   in the next heartbeat so the controller weighs forged probes "from" them as such.
struct SessionWatch {
    /// Peers remembered between heartbeats: the heartbeat's own bound.
    static let maxPeers = ProtectionReport.maxPeers

    private(set) var sessions: Set<IPAddress> = []
    private var peers: Set<IPAddress> = []

    /// Re-reads the connection table; returns the session peers that are new since the last scan.
    mutating func scan(ports: PortSet, ignoring own: (IPAddress) -> Bool) -> [IPAddress] {
        var now: Set<IPAddress> = []
        if let entries = SocketDiag.established() {
            for e in entries where !e.remote.isLoopback && !own(e.remote) {
                if ports.contains(e.localPort) { now.insert(e.remote) }
                if peers.count < Self.maxPeers { peers.insert(e.remote) }
            }
        } else {
            // No sock_diag: the /proc tables, sessions only.
            now = Set(ProtectedAddresses.sessionPeers(ports: ports, procNet: "/proc/net").filter { !$0.isLoopback && !own($0) })
        }
        let fresh = now.subtracting(sessions)
        sessions = now
        return fresh.sorted()
    }

    /// The established-connection peers seen since the last call (for a heartbeat).
    mutating func takePeers() -> [IPAddress] {
        defer { peers.removeAll(keepingCapacity: true) }
        return peers.sorted()
    }
}
