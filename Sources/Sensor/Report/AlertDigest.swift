import PortsentryShared

/// Gathers what happened into one message per interval, so a scan of 65,535 ports (or a
/// flood of a million spoofed sources) makes one alert, not thousands: each scanner is one
/// line however many events it caused, and the list is capped.
struct AlertDigest: Sendable {
    /// Scanners listed by name in one message; the rest are counted.
    static let maxListed = 100
    /// Notices (breaker opened, firewall failures) kept per message.
    static let maxNotices = 20

    struct Scanner: Sendable, Equatable {
        var source: IPAddress
        var firstSeen: EpochNanos
        var events: Int
        var ports: Set<UInt16>
        var kinds: Set<String>
        var blocked: Bool
    }

    private(set) var scanners: [IPAddress: Scanner] = [:]
    private(set) var order: [IPAddress] = []
    private(set) var unlisted = 0
    private(set) var notices: [String] = []
    private(set) var opened: Int64? = nil

    var isEmpty: Bool { scanners.isEmpty && notices.isEmpty && unlisted == 0 }

    mutating func note(_ e: ScanEvent, now: Int64) {
        if opened == nil { opened = now }
        if var s = scanners[e.source] {
            s.events += 1
            if s.ports.count < 64 { s.ports.insert(e.port) }
            s.kinds.insert(e.kind.label)
            s.blocked = s.blocked || e.blocked == .yes
            scanners[e.source] = s
        } else if scanners.count < Self.maxListed {
            scanners[e.source] = Scanner(source: e.source, firstSeen: e.time, events: 1, ports: [e.port],
                                         kinds: [e.kind.label], blocked: e.blocked == .yes)
            order.append(e.source)
        } else {
            unlisted += 1
        }
    }

    mutating func notice(_ text: String, now: Int64) {
        if opened == nil { opened = now }
        if notices.count < Self.maxNotices { notices.append(text) }
    }

    var subject: String {
        let blocked = scanners.values.filter(\.blocked).count
        var parts = ["\(scanners.count + unlisted) scanner\(scanners.count + unlisted == 1 ? "" : "s")"]
        if blocked > 0 { parts.append("\(blocked) blocked") }
        if !notices.isEmpty { parts.append("\(notices.count) notice\(notices.count == 1 ? "" : "s")") }
        return parts.joined(separator: ", ")
    }

    func text(host: String) -> String {
        var lines = ["portsentry on \(host): \(subject)", ""]
        for n in notices { lines.append("! \(n)") }
        if !notices.isEmpty { lines.append("") }
        for a in order {
            guard let s = scanners[a] else { continue }
            let ports = s.ports.sorted().prefix(12).map(String.init).joined(separator: ",") + (s.ports.count > 12 ? ",..." : "")
            lines.append("\(EventFormatter.isoTimestamp(s.firstSeen)) \(s.source): \(s.events) events, ports \(ports); "
                         + "\(s.kinds.sorted().joined(separator: "; "))\(s.blocked ? "; blocked" : "")")
        }
        if unlisted > 0 { lines.append("... and \(unlisted) more events from other sources") }
        return lines.joined(separator: "\n")
    }

    /// The webhook body (ALERT_WEBHOOK): the digest as JSON.
    func json(host: String) -> String {
        let items = order.compactMap { scanners[$0] }.map { s in
            WebhookAlert.Scanner(source: s.source.description, firstSeen: EventFormatter.isoTimestamp(s.firstSeen, utc: true),
                                 events: s.events, ports: s.ports.sorted(), types: s.kinds.sorted(), blocked: s.blocked)
        }
        let alert = WebhookAlert(host: host, summary: subject, scanners: items, moreEvents: unlisted, notices: notices)
        return String(decoding: WireJSON.encode(alert), as: UTF8.self)
    }
}

/// What an alert webhook receives.
struct WebhookAlert: Encodable {
    struct Scanner: Encodable {
        var source, firstSeen: String
        var events: Int
        var ports: [UInt16]
        var types: [String]
        var blocked: Bool

        enum CodingKeys: String, CodingKey {
            case source, events, ports, types, blocked
            case firstSeen = "first_seen"
        }
    }

    var sensor = "portsentry"
    var host, summary: String
    var scanners: [Scanner]
    var moreEvents: Int
    var notices: [String]

    enum CodingKeys: String, CodingKey {
        case sensor, host, summary, scanners, notices
        case moreEvents = "more_events"
    }

    init(host: String, summary: String, scanners: [Scanner], moreEvents: Int, notices: [String]) {
        (self.host, self.summary, self.scanners, self.moreEvents, self.notices) = (host, summary, scanners, moreEvents, notices)
    }

}
