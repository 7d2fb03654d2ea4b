#if canImport(Glibc)
import Glibc
#endif
import PortsentryShared
import SensorCore

/// Renders events in the formats existing tools parse. The name field always holds the
/// address: reverse DNS names are chosen by whoever controls the scanner's PTR record, and
/// putting them in a line fail2ban parses would let a scanner inject text (`RESOLVE_HOST`
/// is accepted for compatibility; Portsentry 2.0.7 does not resolve either).
enum EventFormatter {
    /// Portsentry 2.x's stdout/syslog line.
    static func portsentry2(_ e: ScanEvent) -> String {
        let ip = e.source.description
        return "Scan from: [\(ip)] (\(ip)) protocol: [\(e.proto)] port: [\(e.port)] type: [\(e.kind.label)] "
            + "IP opts: [\(e.ipOptions)] ignored: [\(e.ignored)] triggered: [\(e.triggered)] "
            + "noblock: [\(e.noblock)] blocked: [\(e.blocked)]"
    }

    /// Portsentry 2.x's HISTORY_FILE line: the same text behind a local ISO-8601 timestamp.
    static func portsentry2History(_ e: ScanEvent) -> String {
        "\(isoTimestamp(e.time)) \(portsentry2(e))"
    }

    /// Portsentry 1.2's history line, the one fail2ban's stock `portsentry` filter matches.
    /// 1.2 writes it only for hosts it acts on; so do we.
    static func portsentry12History(_ e: ScanEvent) -> String? {
        guard e.isActionable else { return nil }
        let seconds = Int(e.time / nanosPerSecond)
        var t = tm()
        var clock = time_t(seconds)
        localtime_r(&clock, &t)
        let ip = e.source.description
        return "\(seconds) - \(pad(t.tm_mon + 1))/\(pad(t.tm_mday))/\(t.tm_year + 1900) "
            + "\(pad(t.tm_hour)):\(pad(t.tm_min)):\(pad(t.tm_sec)) Host: \(ip)/\(ip) Port: \(e.port) \(e.proto) Blocked"
    }

    /// Portsentry 1.2's syslog lines for a host it acts on: the detection line of its mode,
    /// and the IP-options warning. 1.2's NULL label has a leading space (a double space in
    /// the line); it is kept, since these lines exist to match what 1.2 wrote.
    static func portsentry12Alerts(_ e: ScanEvent) -> [String] {
        let ip = e.source.description
        let target = "from host: \(ip)/\(ip) to \(e.proto) port: \(e.port)"
        var lines: [String]
        switch e.kind {
        case .connect: lines = ["attackalert: Connect \(target)"]
        case .udp: lines = ["attackalert: UDP scan \(target)"]
        case .tcpNULL: lines = ["attackalert:  TCP NULL scan \(target)"]
        default: lines = ["attackalert: \(e.kind.label) \(target)"]
        }
        if e.ipOptions == .set {
            lines.append("attackalert: Packet from host: \(ip)/\(ip) to \(e.proto) port: \(e.port) has IP options set (detection avoidance technique).")
        }
        return lines
    }

    /// One JSON object per line, keys in a fixed order.
    static func json(_ e: ScanEvent) -> String {
        var fields: [(String, String)] = [
            ("time", quote(isoTimestamp(e.time, utc: true))),
            ("source", quote(e.source.description)),
            ("destination", quote(e.destination.description)),
            ("protocol", quote(e.proto.description)),
            ("port", "\(e.port)"),
            ("type", quote(e.kind.name)),
            ("label", quote(e.kind.label)),
            ("evidence", quote(e.kind.evidence.description)),
            ("ip_options", quote(e.ipOptions.description)),
            ("ignored", jsonBool(e.ignored)),
            ("triggered", jsonBool(e.triggered)),
            ("noblock", jsonBool(e.noblock)),
            ("blocked", jsonBool(e.blocked)),
        ]
        if case .closedPortScan(let n) = e.kind { fields.append(("ports", "\(n)")) }
        if let reason = e.ignoreReason { fields.append(("ignore_reason", quote(reason.rawValue))) }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// `2026-11-25T01:43:06.802+0000`, local time (or `...Z` in UTC for JSON).
    static func isoTimestamp(_ time: EpochNanos, utc: Bool = false) -> String {
        var clock = time_t(time / nanosPerSecond)
        let millis = Int((time % nanosPerSecond) / 1_000_000)
        var t = tm()
        if utc { gmtime_r(&clock, &t) } else { localtime_r(&clock, &t) }
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%dT%H:%M:%S", &t)
        let base = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        if utc { return "\(base).\(ms)Z" }
        let zn = strftime(&buffer, buffer.count, "%z", &t)
        return "\(base).\(ms)" + String(decoding: buffer[0..<zn].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `Wed, 25 Nov 2026 04:30:00 +0000`, for mail headers.
    static func rfc5322Date(_ seconds: Int64) -> String {
        var clock = time_t(seconds)
        var t = tm()
        localtime_r(&clock, &t)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S %z", &t)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }

    private static func jsonBool(_ t: TriState) -> String {
        switch t {
        case .yes: return "true"
        case .no: return "false"
        case .unset: return "null"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
