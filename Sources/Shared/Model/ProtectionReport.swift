/// What a sensor tells the controller, in every heartbeat, about the addresses around it:
/// which must never be blocked fleet-wide (its own, its gateways and resolvers, its ignore
/// file, the peers of live admin sessions) and which have proven themselves by completing
/// real TCP connections with it (evidence that forged probes "from" them are forged).
///
/// The controller does not take these claims on faith: a sensor may be compromised. It
/// believes each kind only where it is plausible (see `ProtectedRegistry`), and every list
/// here has a bound, so one heartbeat cannot grow the controller's state without limit.
public struct ProtectionReport: Codable, Equatable, Sendable {
    /// The sensor's own interface addresses.
    public var addresses: [IPAddress] = []
    /// The networks its interfaces are on (address and prefix length).
    public var networks: [IPPrefix] = []
    public var gateways: [IPAddress] = []
    public var resolvers: [IPAddress] = []
    /// The controller's address as the sensor reaches it.
    public var controller: [IPAddress] = []
    /// The sensor's ignore-file entries.
    public var ignored: [IPPrefix] = []
    /// Peers of live sessions on PROTECT_PORTS (an admin's SSH session).
    public var sessions: [IPAddress] = []
    /// Peers of established TCP connections on any port, seen since the last heartbeat.
    public var peers: [IPAddress] = []
    /// Fleet-list entries this sensor refused to enforce because they cover something it protects.
    public var fleetSkipped: Int64 = 0

    /// Per-list bounds: far above a real host, small enough that a heartbeat stays a few kB.
    public static let maxAddresses = 256
    public static let maxGateways = 16
    public static let maxIgnored = 256
    public static let maxSessions = 256
    public static let maxPeers = 1024

    enum CodingKeys: String, CodingKey {
        case addresses, networks, gateways, resolvers, controller, ignored, sessions, peers
        case fleetSkipped = "fleet_skipped"
    }

    public init() {}

    /// Every list cut to its bound (what the sensor sends, and what the controller keeps).
    public func bounded() -> ProtectionReport {
        var r = self
        r.addresses = Array(addresses.prefix(Self.maxAddresses))
        r.networks = Array(networks.prefix(Self.maxAddresses))
        r.gateways = Array(gateways.prefix(Self.maxGateways))
        r.resolvers = Array(resolvers.prefix(Self.maxGateways))
        r.controller = Array(controller.prefix(Self.maxGateways))
        r.ignored = Array(ignored.prefix(Self.maxIgnored))
        r.sessions = Array(sessions.prefix(Self.maxSessions))
        r.peers = Array(peers.prefix(Self.maxPeers))
        return r
    }

    /// The report inside a heartbeat status body (`{"protection": {...}, ...}`); nil when the
    /// body has none or it is malformed.
    public static func fromHeartbeat(_ body: [UInt8]) -> ProtectionReport? {
        // Only this field is read: protection must not be lost to another field of a
        // heartbeat from a different version failing to decode.
        struct ProtectionOnly: Decodable { var protection: ProtectionReport? }
        return (try? WireJSON.decode(ProtectionOnly.self, from: body))?.protection?.bounded()
    }
}
