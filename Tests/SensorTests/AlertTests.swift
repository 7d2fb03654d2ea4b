@testable import Sensor
import Foundation
import PortsentryShared
import Testing

@Suite struct AlertDigestTests {
    func event(_ source: String, port: UInt16, blocked: Bool = false) -> ScanEvent {
        var e = ScanEvent(time: 1_764_000_000_000_000_000, source: IPAddress(source)!, destination: IPAddress("192.0.2.10")!,
                          proto: .tcp, port: port, kind: .tcpSYN, ipOptions: .notSet)
        e.blocked = blocked ? .yes : .no
        return e
    }

    @Test func aBigScanIsOneLine() {
        var d = AlertDigest()
        for port in 1...5000 { d.note(event("198.51.100.7", port: UInt16(port), blocked: port > 1), now: Int64(port)) }
        #expect(d.subject == "1 scanner, 1 blocked")
        let text = d.text(host: "h")
        #expect(text.split(separator: "\n").count == 2)  // the summary and one scanner line
        #expect(text.contains("198.51.100.7: 5000 events, ports 1,2,3,4,5,6,7,8,9,10,11,12,...; TCP SYN/Normal scan; blocked"))
    }

    @Test func aSpoofedFloodIsCapped() throws {
        var d = AlertDigest()
        for i in 0..<10_000 { d.note(event("10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)", port: 79), now: 0) }
        d.notice("Circuit breaker open", now: 0)
        #expect(d.subject == "\(10_000) scanners, 1 notice")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(d.json(host: "h").utf8)) as? [String: Any])
        #expect((object["scanners"] as? [Any])?.count == AlertDigest.maxListed)
        #expect(object["more_events"] as? Int == 10_000 - AlertDigest.maxListed)
        #expect((object["notices"] as? [String]) == ["Circuit breaker open"])
    }

    @Test func alertKeysAreValidated() throws {
        let c = try ConfigParser.parse(text: """
            ALERT_EMAIL="root@example.org, sec@example.org"
            ALERT_SMTP_URL="smtps://mail.example.org:465"
            ALERT_WEBHOOK_URL="https://hooks.example.org/portsentry"
            ALERT_INTERVAL="5m"
            """, file: "t")
        #expect(c.alerts.emailTo == ["root@example.org", "sec@example.org"])
        #expect(c.alerts.interval == 300 && c.alerts.enabled)
        for bad in ["ALERT_EMAIL=\"root\"", "ALERT_EMAIL_FROM=\"a@b\\r\\nBcc: x@y\"", "ALERT_SMTP_URL=\"http://x.example\"",
                    "ALERT_WEBHOOK_URL=\"ftp://x.example/\""] {
            #expect(throws: ConfigError.self) { try ConfigParser.parse(text: bad, file: "t") }
        }
    }
}
